package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/events/watch"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/internal/version"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// cli is funcd's command line. Every flag can also come from
// DIR/gofunc.toml or GOFUNC_<FLAG>; the flag wins.
type cli struct {
	Dir             string        `help:"Identity directory: ca.pem, cert.pem, key.pem, audit log, jobs." required:"" type:"path"`
	Certmaster      string        `help:"Certmaster HOST:PORT to enroll with (first start), and to fetch the CRL and renew from (default: the one enrolled with, saved in DIR/certmaster.json)."`
	CAFingerprint   string        `name:"ca-fingerprint" help:"Pin the CA: sha256:<hex> of its certificate (certmaster fingerprint)."`
	InsecureTOFU    bool          `name:"insecure-tofu" help:"Trust the CA the certmaster shows on first use, without a fingerprint. Unsafe."`
	Token           string        `help:"Enrollment token, signed at once by the certmaster. Visible to every local user in ps: prefer --token-file or GOFUNC_TOKEN."`
	TokenFile       string        `name:"token-file" help:"File holding the enrollment token (keep it 0600)." type:"path"`
	Name            string        `help:"Minion name (default: host name)."`
	Listen          string        `help:"Address to serve on, or none to open no port at all (with --broker); default: the one given at an earlier start, remembered in DIR/funcd.json, else :51234."`
	Broker          []string      `placeholder:"URL" help:"Also take calls through this gofunc broker (nats://HOST:4222), dialling out to it (comma-separated or repeated: the brokers of one cluster). With --listen none, the minion is reachable through the broker only."`
	Advertise       string        `help:"HOST:PORT the overlord should dial (default: the listen address, or NAME:port)."`
	ACLDir          string        `name:"acl-dir" help:"Directory of *.acl files (default DIR/acl.d when present, else: overlords may call all but dangerous methods)." type:"path"`
	AuditLog        string        `name:"audit-log" help:"Audit log file (default DIR/audit.log)." type:"path"`
	JobDir          string        `name:"job-dir" help:"Where async jobs keep their state and results (default DIR/jobs)." type:"path"`
	JobRetention    time.Duration `name:"job-retention" help:"How long finished async jobs are kept." default:"1h"`
	MaxConcurrent   int           `name:"max-concurrent" help:"Calls in flight before callers are told to retry (CodeBusy)." default:"64"`
	MaxCallTimeout  time.Duration `name:"max-call-timeout" help:"Longest a call or async job may run." default:"1h"`
	AllowDir        []string      `name:"allow-dir" help:"Directories copyfile and getfile may touch (repeatable; default: any)."`
	CopyfileMaxSize cliconf.Size  `name:"copyfile-max-size" help:"Largest file copyfile writes (bytes, or with a unit: 512MiB, 4GiB)." default:"1GiB"`
	NagiosPluginDir string        `name:"nagios-plugin-dir" placeholder:"DIR" help:"Where nagios.run_check finds plugins (default /usr/lib/nagios/plugins, or /usr/lib64/nagios/plugins when only that exists)." type:"path"`
	NagiosAllow     []string      `name:"nagios-allow" help:"Plugins nagios.run_check may run: names or globs (repeatable; default: the stock plugins that run no command). negate, urlize, check_by_ssh and check_log never run."`
	EventsDir       string        `name:"events-dir" help:"The event journal: watcher and lifecycle events, read with events.since (default DIR/events)." type:"path"`
	EventsMax       int           `name:"events-max" help:"Most events the journal keeps; past it the oldest are dropped, and an events.dropped event says so." default:"10000"`
	MetricsListen   string        `name:"metrics-listen" placeholder:"127.0.0.1:PORT" help:"Also serve /metrics without TLS on this loopback address, for a scraper on this host (default: only on the TLS port, to monitor and overlord certificates)."`
	CRLRefresh      time.Duration `name:"crl-refresh" help:"How often to fetch the CRL from the certmaster." default:"30s"`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" help:"On SIGTERM, how long calls in flight may take to finish before they are cancelled." default:"30s"`
	LogLevel        string        `name:"log-level" help:"trace, debug, info, warn, error." default:"info" enum:"trace,debug,info,warn,error"`
	Info            bool          `help:"Print identity, CA fingerprint, CRL age, modules and ACL as JSON, then exit."`
	Renew           bool          `help:"Renew the certificate now at the certmaster (when due, or after certmaster rekey), then exit; reload a running funcd (SIGHUP) to use it."`
	Version         version.Flag  `help:"Print the version and exit."`

	Completion clidoc.CompletionFlag `help:"Print the shell completion script for SHELL (bash, zsh, fish) and exit." placeholder:"SHELL"`
	Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit: funcd --man | man -l -."`
}

// run parses args and runs funcd until ctx ends; it returns the exit
// code: 0 after a clean stop, 1 on a failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	if exit, code := clidoc.ParseDaemon(&c, clidoc.Daemon{Name: "funcd", Description: "The gofunc minion daemon.",
		SeeAlso: "func(1), certmaster(8)"}, args, stdout, stderr); exit {
		return code
	}
	if c.MetricsListen != "" {
		if err := metrics.CheckLoopback(c.MetricsListen); err != nil {
			fmt.Fprintln(stderr, "funcd: --metrics-listen:", err)
			return exitUsage
		}
	}
	if c.EventsMax < 16 {
		fmt.Fprintln(stderr, "funcd: --events-max must be at least 16")
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "funcd", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})
	d := &daemon{cli: c, log: log, stdout: stdout}
	if err := d.readToken(args); err != nil {
		fmt.Fprintln(stderr, "funcd:", err)
		return exitUsage
	}
	if err := d.run(ctx); err != nil {
		log.Error("funcd failed", "error", err)
		return exitError
	}
	return exitOK
}

type daemon struct {
	cli
	log              hclog.Logger
	stdout           io.Writer
	certmasterSource string // see resolveCertmaster
	listenSource     string // see resolveListen
}

func (d *daemon) run(ctx context.Context) error {
	d.listenSource = d.resolveListen()
	if d.Listen == listenNone && len(d.Broker) == 0 && !d.Info && !d.Renew {
		return errListenNoneNeedsBroker
	}
	id, err := d.identity(ctx)
	if err != nil {
		return err
	}
	d.certmasterSource = d.resolveCertmaster(id.CAFingerprint())
	if d.certmasterSource == certmasterNone {
		d.log.Warn(noCertmasterWarning, "dir", d.Dir, "not_after", id.Leaf().NotAfter.UTC())
	}
	if d.Info {
		return d.printInfo(id)
	}
	if d.Renew {
		return d.renew(ctx, id)
	}
	if st := id.CRLStatus(); st.Stale {
		d.log.Error("the CRL held is past its next update: revocations since are not enforced until a fetch succeeds",
			"crl_number", st.Number, "next_update", st.NextUpdate, "age", st.Age.Round(time.Second))
	}
	d.rememberListen()
	trail, err := audit.Open(d.auditPath(), audit.Config{Logger: d.log.Named("audit")})
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer trail.Close()
	watches, err := d.watchConfig()
	if err != nil {
		return err
	}
	rep, err := d.openReporting()
	if err != nil {
		return err
	}
	defer rep.close()
	srv, err := d.server(id, trail)
	if err != nil {
		return err
	}
	if err := d.attach(rep, srv); err != nil {
		return err
	}
	return d.serve(ctx, srv, trail, rep, watches)
}

// server builds the minion with the built-in modules and the ACL. Given
// the certmaster, the minion keeps its identity fresh itself (CRL every
// --crl-refresh, renewal when due).
func (d *daemon) server(id *identity.Identity, trail *audit.Log) (*minion.Server, error) {
	srv := &minion.Server{
		Addr: d.Listen, Identity: id, Audit: trail, Logger: d.log.Named("minion"),
		Certmaster: d.Certmaster, CRLInterval: d.CRLRefresh,
		JobDir: d.jobDir(), JobRetention: d.JobRetention,
		MaxConcurrent: d.MaxConcurrent, MaxCallTimeout: d.MaxCallTimeout,
	}
	if err := modules.Register(srv, d.modulesConfig()); err != nil {
		return nil, err
	}
	acl, _, err := d.loadACL()
	if err != nil {
		return nil, err
	}
	srv.SetACL(acl)
	return srv, nil
}

func (d *daemon) modulesConfig() modules.Config {
	return modules.Config{
		AllowDirs: d.AllowDir, StateDir: filepath.Join(d.Dir, "state"),
		CopyfileMaxSize: int64(d.CopyfileMaxSize), NagiosPluginDir: d.NagiosPluginDir, NagiosAllow: d.NagiosAllow,
	}
}

// readToken takes the enrollment token from --token-file, and warns
// when it was given on the command line, where ps shows it.
func (d *daemon) readToken(args []string) error {
	if d.TokenFile != "" {
		if d.Token != "" {
			return errors.New("--token and --token-file both given")
		}
		b, err := os.ReadFile(d.TokenFile)
		if err != nil {
			return err
		}
		d.Token = strings.TrimSpace(string(b))
	}
	for _, a := range args {
		if a == "--token" || strings.HasPrefix(a, "--token=") {
			d.log.Warn("the enrollment token is on the command line, where every local user can read it: use --token-file or GOFUNC_TOKEN")
		}
	}
	return nil
}

// renew is --renew: one renewal, now, at the certmaster.
func (d *daemon) renew(ctx context.Context, id *identity.Identity) error {
	if d.Certmaster == "" {
		return errors.New("--renew needs a certmaster (--certmaster, or the one remembered in certmaster.json)")
	}
	old := serial(id)
	if err := id.Renew(ctx, d.Certmaster); err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	d.log.Info("certificate renewed; reload funcd (SIGHUP) to serve with it", "old_serial", old, "serial", serial(id),
		"not_after", id.Leaf().NotAfter.UTC())
	fmt.Fprintf(d.stdout, "renewed %s: serial %s until %s\n", id.Name(), serial(id), id.Leaf().NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// identity loads the minion's certificate, enrolling first if it has none.
func (d *daemon) identity(ctx context.Context) (*identity.Identity, error) {
	id, err := identity.Load(d.Dir)
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
		return nil, fmt.Errorf("no certificate in %s yet and no --certmaster to enroll with", d.Dir)
	}
	if d.CAFingerprint == "" && !d.InsecureTOFU {
		return nil, errors.New("enrolling needs --ca-fingerprint (or --insecure-tofu, which trusts whatever CA answers)")
	}
	name, err := d.name()
	if err != nil {
		return nil, err
	}
	d.log.Info("enrolling; waiting for the certmaster to sign", "certmaster", d.Certmaster, "name", name, "addr", d.advertise(name))
	id, err = identity.Enroll(ctx, identity.EnrollRequest{
		Certmaster: d.Certmaster, CAFingerprint: d.CAFingerprint, InsecureTOFU: d.InsecureTOFU,
		Name: name, Addr: d.advertise(name), Token: identity.Token(d.Token), Dir: d.Dir, Logger: d.log.Named("enroll"),
	})
	if err != nil {
		return nil, err
	}
	// Remembered so that later starts without --certmaster keep the CRL
	// fresh and renew; failing to save is not fatal now, but loud.
	if err := saveCertmaster(d.Dir, savedCertmaster{Certmaster: d.Certmaster, CAFingerprint: id.CAFingerprint()}); err != nil {
		d.log.Warn("could not remember the certmaster; pass --certmaster on every start", "error", err)
	}
	return id, nil
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
	if d.Listen == listenNone {
		return "" // nothing to dial: the overlord goes through the broker
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

func (d *daemon) jobDir() string {
	if d.JobDir != "" {
		return d.JobDir
	}
	return filepath.Join(d.Dir, "jobs")
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

// loadACL reads the ACL directory, or gives the default ACL when there
// is none; source says which.
func (d *daemon) loadACL() (acl *minion.ACL, source string, err error) {
	dir := d.aclDir()
	if dir == "" {
		return minion.DefaultACL, "default", nil
	}
	acl, err = minion.LoadACLDir(dir)
	if err != nil {
		return nil, dir, err
	}
	return acl, dir, nil
}

// serve runs the server until ctx ends (SIGTERM), draining calls in
// flight; SIGHUP reloads the certificate, CRL, ACL and watchers.
func (d *daemon) serve(ctx context.Context, srv *minion.Server, trail *audit.Log, rep *reporting, watches []watch.Watch) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	errc := make(chan error, 1)
	if err := srv.Start(); err != nil {
		return err
	}
	if d.Listen != listenNone {
		go func() { errc <- srv.ListenAndServe() }()
	}
	dr, err := d.openBroker(ctx, srv, trail)
	if err != nil {
		srv.Close()
		return err
	}
	id := srv.CurrentIdentity()
	pub, err := d.publishEvents(dr, rep, id.Name())
	if err != nil {
		srv.Close()
		_ = dr.Close()
		return err
	}
	if pub != nil {
		defer pub.Close() // closed before the door on shutdown; this is for the other returns
	}
	d.event(trail, "minion.start", map[string]string{"listen": d.Listen, "serial": serial(id), "pid": strconv.Itoa(os.Getpid())})
	d.log.Info("serving", "listen", d.Listen, "name", id.Name(), "ca", id.CAFingerprint(), "job_dir", d.jobDir(), "audit_log", d.auditPath(),
		"events_dir", d.eventsDir())
	if err := d.startWatchers(rep, watches); err != nil {
		d.log.Error("watchers not started", "error", err)
	}
	for {
		select {
		case err := <-errc:
			return err
		case <-hup:
			d.reload(srv, trail)
			d.reloadWatchers(rep)
		case <-ctx.Done():
			d.log.Info("shutting down; draining calls in flight", "timeout", d.ShutdownTimeout)
			sctx, scancel := context.WithTimeout(context.Background(), d.ShutdownTimeout)
			err := srv.Shutdown(sctx)
			scancel()
			if pub != nil {
				_ = pub.Close()
			}
			if dr != nil {
				_ = dr.Close() // after Shutdown: the calls it took have answered
			}
			if d.Listen != listenNone {
				<-errc
			}
			d.event(trail, "minion.stop", map[string]string{"drained": strconv.FormatBool(err == nil)})
			if errors.Is(err, context.DeadlineExceeded) {
				d.log.Warn("calls still running at the shutdown timeout were cancelled")
				err = nil
			}
			return err
		}
	}
}

// reload reads the identity directory (certificate, key, CA, crl.pem)
// and the ACL directory again. What fails to load is kept as it was.
// The server fetches the CRL for the new identity before it takes over.
func (d *daemon) reload(srv *minion.Server, trail *audit.Log) {
	details := map[string]string{}
	if id, err := identity.Load(d.Dir); err != nil {
		d.log.Error("reload identity failed; keeping the current one", "error", err)
		details["identity_error"] = err.Error()
	} else {
		cur := srv.CurrentIdentity()
		if id.CAFingerprint() != cur.CAFingerprint() {
			d.log.Warn("the reloaded identity has another CA", "was", cur.CAFingerprint(), "now", id.CAFingerprint())
		}
		_ = srv.SetIdentity(id)
		details["serial"], details["ca"] = serial(id), id.CAFingerprint()
	}
	if acl, source, err := d.loadACL(); err != nil {
		d.log.Error("reload acl failed; keeping the current rules", "error", err)
		details["acl_error"] = err.Error()
	} else {
		srv.SetACL(acl)
		sum := sha256.Sum256([]byte(acl.String()))
		details["acl"], details["acl_rules"], details["acl_digest"] = source, strconv.Itoa(len(acl.Rules)), "sha256:"+hex.EncodeToString(sum[:])
		d.log.Info("acl loaded", "source", source, "rules", len(acl.Rules))
	}
	d.event(trail, "minion.reload", details)
	d.log.Info("reloaded")
}

// event records a daemon event in the audit log, best effort: calls
// are what the log must never miss, and they are refused on failure.
func (d *daemon) event(trail *audit.Log, kind string, details map[string]string) {
	if _, err := trail.Append(audit.Record{Kind: kind, Details: details}); err != nil {
		d.log.Error("audit write failed", "kind", kind, "error", err)
	}
}

func serial(id *identity.Identity) string { return fmt.Sprintf("%x", id.Leaf().SerialNumber) }

// info is what --info prints.
type info struct {
	Name          string      `json:"name"`
	Role          gofunc.Role `json:"role"`
	Serial        string      `json:"serial"`
	NotAfter      time.Time   `json:"not_after"`
	CAFingerprint string      `json:"ca_fingerprint"`
	CRLNumber     int64       `json:"crl_number"`
	// CRL is the held CRL's number, dates, age and staleness.
	CRL    identity.CRLStatus `json:"crl"`
	Listen string             `json:"listen"`
	// ListenSource is "config", "funcd.json" or "default".
	ListenSource string `json:"listen_source"`
	// Certmaster is where the CRL and renewals come from; "" when none
	// is known, and then Warnings says that revocation and renewal are
	// off. CertmasterSource is "config", "certmaster.json" or "none".
	Certmaster       string   `json:"certmaster"`
	CertmasterSource string   `json:"certmaster_source"`
	Warnings         []string `json:"warnings,omitempty"`
	AuditLog         string   `json:"audit_log"`
	JobDir           string   `json:"job_dir"`
	EventsDir        string   `json:"events_dir"`
	// Watches are the [[watch]] tables configured: "name (type)".
	Watches      []string  `json:"watches"`
	Modules      []string  `json:"modules"`
	ModuleConfig modConfig `json:"module_config"`
	ACLSource    string    `json:"acl_source"`
	ACL          []aclRule `json:"acl"`
}

// modConfig is the built-in modules' configuration, defaults filled in.
type modConfig struct {
	AllowDirs       []string `json:"allow_dirs"` // empty: any path
	CopyfileMaxSize int64    `json:"copyfile_max_size"`
	NagiosPluginDir string   `json:"nagios_plugin_dir"`
	NagiosAllow     []string `json:"nagios_allow"`
}

type aclRule struct {
	Rule   string `json:"rule"`
	Source string `json:"source"`
}

// printInfo prints the identity, modules and ACL without opening the
// audit log, so it works while the daemon runs.
func (d *daemon) printInfo(id *identity.Identity) error {
	var reg minion.Server
	if err := modules.Register(&reg, d.modulesConfig()); err != nil {
		return err
	}
	acl, source, err := d.loadACL()
	if err != nil {
		return err
	}
	watches, err := d.watchConfig()
	if err != nil {
		return err
	}
	out := info{
		Name: id.Name(), Role: id.Role(), Serial: serial(id), NotAfter: id.Leaf().NotAfter.UTC(),
		CAFingerprint: id.CAFingerprint(), CRLNumber: id.CRLNumber(), CRL: id.CRLStatus(),
		Listen: d.Listen, ListenSource: d.listenSource, Certmaster: d.Certmaster, CertmasterSource: d.certmasterSource,
		AuditLog: d.auditPath(), JobDir: d.jobDir(), EventsDir: d.eventsDir(), Watches: []string{},
		Modules: append(reg.Modules(), "events", "jobs", "system"), ACLSource: source, ACL: []aclRule{},
	}
	mc := d.modulesConfig().Effective()
	out.ModuleConfig = modConfig{AllowDirs: mc.AllowDirs, CopyfileMaxSize: mc.CopyfileMaxSize,
		NagiosPluginDir: mc.NagiosPluginDir, NagiosAllow: mc.NagiosAllow}
	if out.ModuleConfig.AllowDirs == nil {
		out.ModuleConfig.AllowDirs = []string{}
	}
	if d.certmasterSource == certmasterNone {
		out.Warnings = append(out.Warnings, noCertmasterWarning)
	}
	if out.CRL.Stale {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the CRL held (number %d) is past its next update (%s, %s ago): revocations since are not enforced",
			out.CRL.Number, out.CRL.NextUpdate.UTC().Format(time.RFC3339), time.Since(out.CRL.NextUpdate).Round(time.Second)))
	}
	for _, w := range watches {
		out.Watches = append(out.Watches, w.Name+" ("+w.Check.Type()+")")
	}
	slices.Sort(out.Modules)
	for _, r := range acl.Rules {
		out.ACL = append(out.ACL, aclRule{Rule: r.String(), Source: r.Source})
	}
	enc := json.NewEncoder(d.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
