package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
)

// cli is funcd's command line. Every flag can also come from
// DIR/gofunc.toml or GOFUNC_<FLAG>; the flag wins.
type cli struct {
	Dir           string        `help:"Identity directory: ca.pem, cert.pem, key.pem, audit log." required:"" type:"path"`
	Certmaster    string        `help:"Certmaster HOST:PORT to enroll with (first start only)."`
	CAFingerprint string        `name:"ca-fingerprint" help:"Pin the CA: sha256:<hex> of its certificate (certmaster fingerprint)."`
	InsecureTOFU  bool          `name:"insecure-tofu" help:"Trust the CA the certmaster shows on first use, without a fingerprint. Unsafe."`
	Token         string        `help:"Enrollment token, signed at once by the certmaster." env:"GOFUNC_TOKEN"`
	Name          string        `help:"Minion name (default: host name)."`
	Listen        string        `help:"Address to serve on." default:":51234"`
	Advertise     string        `help:"HOST:PORT the overlord should dial (default: the listen address, or NAME:port)."`
	ACLDir        string        `name:"acl-dir" help:"Directory of *.acl files (default DIR/acl.d when present, else: overlords may call all but dangerous methods)." type:"path"`
	AuditLog      string        `name:"audit-log" help:"Audit log file (default DIR/audit.log)." type:"path"`
	AllowDir      []string      `name:"allow-dir" help:"Directories copyfile and getfile may touch (repeatable; default: any)."`
	CRLRefresh    time.Duration `name:"crl-refresh" help:"How often to fetch the CRL from the certmaster." default:"30s"`
	LogLevel      string        `name:"log-level" help:"trace, debug, info, warn, error." default:"info"`
	Info          bool          `help:"Print identity, CA fingerprint, modules and ACL, then exit."`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c, kong.Name("funcd"), kong.Description("The gofunc minion daemon."),
		kong.Writers(stdout, stderr), kong.Exit(func(int) {}))
	if err != nil {
		fmt.Fprintln(stderr, "funcd:", err)
		return 2
	}
	if _, err := cliconf.Parse(parser, args); err != nil {
		fmt.Fprintln(stderr, "funcd:", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "funcd", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})
	d := &daemon{cli: c, log: log, stdout: stdout}
	if err := d.run(ctx); err != nil {
		log.Error("funcd failed", "error", err)
		return 1
	}
	return 0
}

type daemon struct {
	cli
	log    hclog.Logger
	stdout io.Writer
}

func (d *daemon) run(ctx context.Context) error {
	id, err := d.identity(ctx)
	if err != nil {
		return err
	}
	trail, err := audit.Open(d.auditPath(), audit.Config{Logger: d.log.Named("audit")})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer trail.Close()
	srv := &minion.Server{Addr: d.Listen, Identity: id, Audit: trail, Logger: d.log.Named("minion")}
	if err := modules.Register(srv, modules.Config{AllowDirs: d.AllowDir, StateDir: filepath.Join(d.Dir, "state")}); err != nil {
		return err
	}
	if err := d.loadACL(srv); err != nil {
		return err
	}
	if d.Info {
		return d.printInfo(id, srv)
	}
	return d.serve(ctx, srv, id)
}

// identity loads the minion's certificate, enrolling first if it has none.
func (d *daemon) identity(ctx context.Context) (*ca.Identity, error) {
	id, err := ca.LoadIdentity(d.Dir)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("identity in %s: %w", d.Dir, err)
	}
	if d.Info {
		return nil, fmt.Errorf("no identity in %s yet: %w", d.Dir, err)
	}
	if d.Certmaster == "" {
		return nil, errors.New("no certificate yet and no --certmaster to enroll with")
	}
	if d.CAFingerprint == "" && !d.InsecureTOFU {
		return nil, errors.New("enrolling needs --ca-fingerprint (or --insecure-tofu, which trusts whatever CA answers)")
	}
	name, err := d.name()
	if err != nil {
		return nil, err
	}
	d.log.Info("enrolling", "certmaster", d.Certmaster, "name", name, "addr", d.advertise(name))
	return ca.Enroll(ctx, ca.EnrollRequest{
		Certmaster: d.Certmaster, CAFingerprint: d.CAFingerprint, InsecureTOFU: d.InsecureTOFU,
		Name: name, Addr: d.advertise(name), Token: ca.Token(d.Token), Dir: d.Dir, Logger: d.log.Named("enroll"),
	})
}

func (d *daemon) name() (string, error) {
	if d.Name != "" {
		return d.Name, nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("no --name and no host name: %w", err)
	}
	return h, nil
}

// advertise is the address the overlord should dial: --advertise, the
// listen address when it names a host, else the minion's name.
func (d *daemon) advertise(name string) string {
	if d.Advertise != "" {
		return d.Advertise
	}
	host, port, err := net.SplitHostPort(d.Listen)
	if err != nil {
		return d.Listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = name
	}
	if port == "" {
		port = strconv.Itoa(gofunc.DefaultMinionPort)
	}
	return net.JoinHostPort(host, port)
}

func (d *daemon) auditPath() string {
	if d.AuditLog != "" {
		return d.AuditLog
	}
	return filepath.Join(d.Dir, "audit.log")
}

func (d *daemon) aclDir() string {
	if d.ACLDir != "" {
		return d.ACLDir
	}
	if st, err := os.Stat(filepath.Join(d.Dir, "acl.d")); err == nil && st.IsDir() {
		return filepath.Join(d.Dir, "acl.d")
	}
	return ""
}

func (d *daemon) loadACL(srv *minion.Server) error {
	dir := d.aclDir()
	if dir == "" {
		srv.SetACL(minion.DefaultACL)
		return nil
	}
	acl, err := minion.LoadACLDir(dir)
	if err != nil {
		return err
	}
	srv.SetACL(acl)
	d.log.Info("acl loaded", "dir", dir, "rules", len(acl.Rules))
	return nil
}

// serve runs the server until ctx ends (SIGTERM), draining calls in
// flight; SIGHUP reloads the certificate, CRL and ACL.
func (d *daemon) serve(ctx context.Context, srv *minion.Server, id *ca.Identity) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	bg := d.background(ctx, id)
	d.log.Info("serving", "listen", d.Listen, "name", id.Name(), "ca", ca.CertFingerprint(id.CACert()))
	for {
		select {
		case err := <-errc:
			cancel()
			bg()
			return err
		case <-hup:
			d.reload(srv, id)
		case <-ctx.Done():
			d.log.Info("shutting down; draining calls in flight")
			sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := srv.Shutdown(sctx)
			scancel()
			<-errc
			cancel()
			bg()
			return err
		}
	}
}

// background starts the CRL refresher and the renewal loop when the
// minion knows its certmaster; the returned func waits for them.
func (d *daemon) background(ctx context.Context, id *ca.Identity) (wait func()) {
	if d.Certmaster == "" {
		return func() {}
	}
	done := make(chan struct{}, 2)
	go func() { ca.CRLLoop(ctx, id, d.Certmaster, d.CRLRefresh, d.log.Named("crl")); done <- struct{}{} }()
	go func() { ca.RenewLoop(ctx, id, d.Certmaster, d.log.Named("renew")); done <- struct{}{} }()
	return func() { <-done; <-done }
}

func (d *daemon) reload(srv *minion.Server, id *ca.Identity) {
	if err := id.Reload(); err != nil {
		d.log.Error("reload identity", "error", err)
	}
	if err := d.loadACL(srv); err != nil {
		d.log.Error("reload acl; keeping the old rules", "error", err)
	}
	d.log.Info("reloaded")
}

func (d *daemon) printInfo(id *ca.Identity, srv *minion.Server) error {
	info := map[string]any{
		"name":           id.Name(),
		"role":           id.Role(),
		"serial":         fmt.Sprintf("%x", id.Leaf().SerialNumber),
		"not_after":      id.Leaf().NotAfter,
		"ca_fingerprint": ca.CertFingerprint(id.CACert()),
		"listen":         d.Listen,
		"audit_log":      d.auditPath(),
		"modules":        srv.Modules(),
		"acl":            srv.CurrentACL().Rules,
	}
	enc := json.NewEncoder(d.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(info)
}
