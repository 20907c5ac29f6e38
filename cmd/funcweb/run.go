package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/internal/version"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/overlordmetrics"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
	"github.com/gofunc/gofunc/web"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// cli is funcweb's command line. Every flag can also come from
// DIR/gofunc.toml or GOFUNC_<FLAG>; the flag wins.
type cli struct {
	Dir        string        `help:"The dashboard's directory: ca.pem, cert.pem, key.pem (a delegate certificate), jobs.db, audit.log, web.acl." required:"" type:"path"`
	Listen     string        `help:"Address to serve HTTPS on." default:"127.0.0.1:51236"`
	Certmaster string        `help:"Certmaster HOST:PORT: the CRL is fetched from it every --crl-refresh and the minion list with it (default: DIR/minions.json)."`
	CADir      string        `name:"ca-dir" help:"CA directory on this host, for the Enrollment page to list, sign, reject and revoke (the dashboard then holds the CA's key: run it as the CA's owner, on the certmaster's host)." type:"path"`
	AuditLog   []string      `name:"audit-log" placeholder:"NAME=PATH" help:"Another audit log to search and verify (repeatable), e.g. certmaster=/var/lib/gofunc/ca/audit.log. The dashboard's own (overlord=DIR/audit.log) is always shown."`
	ACL        string        `help:"The dashboard's ACL: which methods each person may see and run, in minion ACL syntax (default DIR/web.acl when present, else everyone sees all and operators and admins run all)." type:"path"`
	CRLRefresh time.Duration `name:"crl-refresh" help:"How often to fetch the CRL from the certmaster." default:"30s"`
	Command    string        `help:"How \"copy as CLI\" spells the func command." default:"func"`
	Metrics    string        `name:"metrics-listen" placeholder:"127.0.0.1:PORT" help:"Serve the dashboard's overlord metrics (host calls by outcome, each minion's up and certificate expiry) at /metrics without TLS on this loopback address, for a scraper on this host."`
	LogLevel   string        `name:"log-level" help:"trace, debug, info, warn, error." default:"info" enum:"trace,debug,info,warn,error"`
	Version    version.Flag  `help:"Print the version and exit."`

	Completion clidoc.CompletionFlag `help:"Print the shell completion script for SHELL (bash, zsh, fish) and exit." placeholder:"SHELL"`
	Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit: funcweb --man | man -l -."`
}

// Help is funcweb's long help, with examples.
func (cli) Help() string {
	return `Examples:
  certmaster issue --dir /var/lib/gofunc/ca --role delegate --dns dash.example.org --out /etc/gofunc/web funcweb
  funcweb --dir /etc/gofunc/web --listen 0.0.0.0:51236 --certmaster ca.example.org:51235
  funcweb --dir /etc/gofunc/web --ca-dir /var/lib/gofunc/ca --audit-log certmaster=/var/lib/gofunc/ca/audit.log
  certmaster issue --dir /var/lib/gofunc/ca --role viewer --out ~/alice alice   # alice.p12 for her browser`
}

// run parses args and serves until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	if exit, code := clidoc.ParseDaemon(&c, clidoc.Daemon{Name: "funcweb", Description: "The gofunc web dashboard.",
		SeeAlso: "func(1), funcd(8), certmaster(8)"}, args, stdout, stderr); exit {
		return code
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "funcweb", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})
	if err := serve(ctx, c, log); err != nil {
		log.Error("funcweb failed", "error", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

type usageError struct{ error }

// serve builds the dashboard from the SDK and serves it until ctx ends.
func serve(ctx context.Context, c cli, log hclog.Logger) error {
	id, err := identity.Load(c.Dir)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if id.Role() != gofunc.RoleDelegate {
		return usageError{fmt.Errorf("%s holds a %s certificate; the dashboard needs one of role delegate "+
			"(certmaster issue --role delegate --dns HOST --out %s NAME)", c.Dir, id.Role(), c.Dir)}
	}
	logs := []web.AuditLog{{Name: "overlord", Path: filepath.Join(c.Dir, "audit.log")}}
	for _, spec := range c.AuditLog {
		name, path, ok := strings.Cut(spec, "=")
		if !ok || name == "" || path == "" {
			return usageError{fmt.Errorf("--audit-log %q: want NAME=PATH", spec)}
		}
		logs = append(logs, web.AuditLog{Name: name, Path: path})
	}
	acl, err := loadACL(c)
	if err != nil {
		return usageError{err}
	}
	store := sqlitejobs.New(filepath.Join(c.Dir, sqlitejobs.FileName))
	defer store.Close()
	opts := []overlord.Option{overlord.WithIdentity(id), overlord.WithIdentityDir(c.Dir), overlord.WithJobStore(store),
		overlord.WithAudit(&audit.Shared{Path: logs[0].Path, Config: audit.Config{Logger: log.Named("audit")}}),
		overlord.WithLogger(log.Named("overlord"))}
	if c.Certmaster != "" {
		opts = append(opts, overlord.WithCertmaster(c.Certmaster), overlord.WithCRLInterval(c.CRLRefresh))
	}
	if c.Metrics != "" {
		stop, observe, err := serveMetrics(c.Metrics, log)
		if err != nil {
			return err
		}
		defer stop()
		opts = append(opts, overlord.WithObserver(observe))
	}
	client := overlord.New(opts...)
	defer client.Close()
	cfg := web.Config{Overlord: client, Jobs: store, AuditLogs: logs, ACL: acl, Command: c.Command,
		Logger: log.Named("web")}
	if c.CADir != "" {
		authority, err := ca.Open(ca.Config{Dir: c.CADir, Logger: log.Named("ca"),
			Audit: &audit.Shared{Path: filepath.Join(c.CADir, "audit.log"), Config: audit.Config{Logger: log.Named("ca-audit")}}})
		if err != nil {
			return fmt.Errorf("CA: %w", err)
		}
		cfg.CA = web.LocalCA(authority)
	}
	dash, err := web.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		dash.Close()
		return err
	}
	srv := &http.Server{Handler: dash, TLSConfig: id.ServerTLSConfig(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10, ErrorLog: log.Named("http").StandardLogger(
			&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug})}
	log.Info("serving", "addr", "https://"+ln.Addr().String(), "identity", id.Name(), "version", version.Read().String())
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case err := <-done:
			dash.Close()
			return err
		case <-hup:
			reload(id, c, log)
		case <-ctx.Done():
			log.Info("stopping")
			dash.Close() // ends the streams, so Shutdown does not wait for them
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := srv.Shutdown(sctx)
			cancel()
			<-done
			return err
		}
	}
}

// loadACL reads --acl, or DIR/web.acl when present; nil means the
// dashboard's default.
func loadACL(c cli) (*minion.ACL, error) {
	path := c.ACL
	if path == "" {
		path = filepath.Join(c.Dir, "web.acl")
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl: %w", err)
	}
	defer f.Close()
	return minion.ParseACL(filepath.Base(path), f)
}

// reload re-reads the certificate and CRL from DIR (SIGHUP). The ACL is
// read at start only: restart to change it.
func reload(id *identity.Identity, c cli, log hclog.Logger) {
	if err := id.Reload(); err != nil {
		log.Error("reload failed", "error", err)
		return
	}
	log.Info("reloaded the certificate and CRL", "dir", c.Dir)
}

// serveMetrics serves the metrics of the dashboard's overlord client
// (package overlordmetrics) on the loopback address addr, and returns
// the observer to give the client.
func serveMetrics(addr string, log hclog.Logger) (stop func(), observe func(overlord.Observation), err error) {
	ln, err := metrics.Listen(addr)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--metrics-listen: %w", err)}
	}
	m := overlordmetrics.New(overlordmetrics.Options{})
	reg := metrics.NewRegistry()
	reg.MustRegister(m)
	return metrics.Serve(ln, metrics.Handler(reg), log.Named("metrics")), m.Observe, nil
}
