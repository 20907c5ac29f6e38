package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/brokerd/brokermetrics"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/certmasterfile"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/internal/version"
	"github.com/gofunc/gofunc/metrics"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// cli is funcbroker's command line. Every flag can also come from
// DIR/gofunc.toml, /etc/gofunc/funcbroker.toml or GOFUNC_<FLAG>; the
// flag wins.
type cli struct {
	Dir              string        `help:"The broker's directory: ca.pem, cert.pem, key.pem (a broker certificate), crl.pem." required:"" type:"path"`
	Listen           string        `help:"Address minions and overlords connect to (mutual TLS, gofunc certificates only)." default:":4222"`
	Cluster          string        `aliases:"cluster-listen" help:"Address other brokers of the cluster connect to (routes; NATS's port is 6222). Default: no cluster." placeholder:"ADDR:6222"`
	ClusterName      string        `name:"cluster-name" help:"The cluster's name; every broker of a cluster needs the same." default:"gofunc"`
	ClusterAdvertise string        `name:"cluster-advertise" help:"HOST[:PORT] the other brokers should dial this one at (default: --cluster's host when it is an address, else the one they see)." placeholder:"HOST[:PORT]"`
	Routes           []string      `help:"Other brokers of the cluster, nats://HOST:6222 (comma-separated or repeated); one is enough, the rest is gossiped." placeholder:"URL"`
	LeafListen       string        `name:"leaf-listen" help:"Address site brokers connect to as leaf nodes (NATS's port is 7422). Default: none." placeholder:"ADDR:7422"`
	LeafRemotes      []string      `name:"leaf-remotes" help:"The hub's brokers to connect to as a leaf node, nats://HOST:7422 (one connection, failing over among them; this broker then serves one site)." placeholder:"URL"`
	Certmaster       string        `help:"Certmaster HOST:PORT to fetch the CRL from (default: the one in DIR/certmaster.json, if any)."`
	CRLRefresh       time.Duration `name:"crl-refresh" help:"How often to fetch the CRL from the certmaster." default:"30s"`
	MonitorListen    string        `name:"monitor-listen" help:"Loopback address for nats-server's monitoring endpoints (plain HTTP: /varz, /connz, /routez, /healthz). Default: off." placeholder:"127.0.0.1:8222"`
	MetricsListen    string        `name:"metrics-listen" placeholder:"127.0.0.1:PORT" help:"Serve Prometheus /metrics without TLS on this loopback address: clients by role, routes, leaf nodes, traffic, refusals, CRL. Default: off."`
	JetStream        bool          `name:"jetstream" help:"Keep jobs for minions that are offline (func --broker --async): NATS JetStream on, with the streams GF_JOBS and GF_RESULTS."`
	StoreDir         string        `name:"store-dir" help:"JetStream's directory (default DIR/jetstream)." type:"path"`
	JobsMaxAge       time.Duration `name:"jobs-max-age" help:"How long a job waits for its minion, and its result for a collector." default:"168h"`
	JetStreamSync    time.Duration `name:"jetstream-sync" help:"How often JetStream syncs its files to disk; 0: at every message, so an acknowledged job or result survives a crash of the machine." default:"0s"`
	MaxPayload       cliconf.Size  `name:"max-payload" help:"Largest message (bytes, or with a unit: 1MiB, 8MiB); larger answers are chunked by the transport." default:"1MiB"`
	StockConfig      string        `name:"stock-config" help:"Instead of serving, write a configuration for a stock nats-server (Debian's 2.9 and later) to FILE (- for stdout): the broker's certificate from --dir, a user with funcbroker's permissions for every live certificate in --ca-dir. Write it again and reload nats-server after every sign, renew or revoke." placeholder:"FILE"`
	CADir            string        `name:"ca-dir" help:"The CA's directory, for --stock-config (run it on the certmaster's host)." type:"path"`
	LogLevel         string        `name:"log-level" help:"trace, debug, info, warn, error." default:"info" enum:"trace,debug,info,warn,error"`
	Version          version.Flag  `help:"Print the version and exit."`

	Completion clidoc.CompletionFlag `help:"Print the shell completion script for SHELL (bash, zsh, fish) and exit." placeholder:"SHELL"`
	Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit: funcbroker --man | man -l -."`
}

// Help is funcbroker's long help, with examples.
func (cli) Help() string {
	return `Examples:
  certmaster issue --dir /var/lib/gofunc/ca --role broker --dns broker1.example.org --out /var/lib/funcbroker broker1
  funcbroker --dir /var/lib/funcbroker --certmaster ca.example.org:51235
  funcbroker --dir /var/lib/funcbroker --cluster broker1.example.org:6222 --routes nats://broker2.example.org:6222,nats://broker3.example.org:6222
  funcbroker --dir /var/lib/funcbroker --leaf-remotes nats://hub.example.org:7422   # a site broker
  funcd --dir /var/lib/gofunc --broker nats://broker1.example.org:4222 --listen none`
}

// run parses args and serves until ctx ends; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c cli
	if exit, code := clidoc.ParseDaemon(&c, clidoc.Daemon{Name: "funcbroker", Description: "The gofunc NATS broker.",
		SeeAlso: "funcd(8), func(1), certmaster(8), nats-server(8)"}, args, stdout, stderr); exit {
		return code
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "funcbroker", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})
	do := serve
	if c.StockConfig != "" {
		do = func(_ context.Context, c cli, _ hclog.Logger) error { return writeStockConfig(c, stdout) }
	}
	if err := do(ctx, c, log); err != nil {
		log.Error("funcbroker failed", "error", err)
		if errors.Is(err, brokerd.ErrConfig) || errors.As(err, new(usageError)) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

type usageError struct{ error }

// serve runs the broker until ctx ends.
func serve(ctx context.Context, c cli, log hclog.Logger) error {
	id, err := identity.Load(c.Dir)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if id.Role() != gofunc.RoleBroker {
		return usageError{fmt.Errorf("%s holds a %s certificate; the broker needs one of role broker "+
			"(certmaster issue --role broker --dns HOST --out %s NAME)", c.Dir, id.Role(), c.Dir)}
	}
	certmaster := c.Certmaster
	if certmaster == "" {
		certmaster = savedCertmaster(c.Dir, id, log)
	}
	if certmaster == "" {
		log.Warn("no certmaster (--certmaster): the CRL is not refreshed; after installing a new DIR/crl.pem, send SIGHUP")
	}
	storeDir := c.StoreDir
	if c.JetStream && storeDir == "" {
		storeDir = filepath.Join(c.Dir, "jetstream")
	}
	if int64(c.MaxPayload) > 64<<20 || c.MaxPayload < 0 {
		return usageError{fmt.Errorf("--max-payload %d: at most 64MiB", c.MaxPayload)}
	}
	b, err := brokerd.New(brokerd.Config{
		Identity: id, Listen: c.Listen,
		ClusterListen: c.Cluster, ClusterName: c.ClusterName, ClusterAdvertise: c.ClusterAdvertise, Routes: c.Routes,
		LeafListen: c.LeafListen, LeafRemotes: c.LeafRemotes,
		Certmaster: certmaster, CRLInterval: c.CRLRefresh,
		MonitorListen: c.MonitorListen, JetStream: c.JetStream, StoreDir: storeDir, JobsMaxAge: c.JobsMaxAge, JetStreamSync: c.JetStreamSync,
		MaxPayload: int32(c.MaxPayload), Logger: log,
	})
	if err != nil {
		return err
	}
	if c.MetricsListen != "" {
		if err := metrics.CheckLoopback(c.MetricsListen); err != nil {
			return usageError{err}
		}
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	if c.MetricsListen != "" {
		mln, err := metrics.Listen(c.MetricsListen)
		if err != nil {
			b.Shutdown(context.Background())
			return usageError{err}
		}
		reg := metrics.NewRegistry()
		reg.MustRegister(brokermetrics.New(b))
		stop := metrics.Serve(mln, metrics.Handler(reg), log.Named("metrics"))
		defer stop()
	}
	log.Info("serving", "clients", b.ClientURL(), "cluster", b.ClusterURL(), "leaf", b.LeafURL(),
		"identity", id.Name(), "version", version.Read().String())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := id.Reload(); err != nil {
				log.Error("reload failed", "error", err)
				continue
			}
			log.Info("reloaded the certificate and CRL", "dir", c.Dir, "dropped", b.Recheck())
		case <-ctx.Done():
			log.Info("stopping")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			return b.Shutdown(sctx)
		}
	}
}

// writeStockConfig is --stock-config: a nats-server configuration for
// the broker identity in --dir and the live certificates of --ca-dir.
func writeStockConfig(c cli, stdout io.Writer) error {
	if c.CADir == "" {
		return usageError{errors.New("--stock-config needs --ca-dir, the CA's directory (on the certmaster's host)")}
	}
	id, err := identity.Load(c.Dir)
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if id.Role() != gofunc.RoleBroker {
		return usageError{fmt.Errorf("%s holds a %s certificate; the broker needs one of role broker", c.Dir, id.Role())}
	}
	a, err := ca.Open(ca.Config{Dir: c.CADir})
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	certs, err := brokerd.FromCA(a, time.Now())
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	conf, err := brokerd.StockConfig{Listen: c.Listen, CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
		CAFile: filepath.Join(dir, "ca.pem"), Certificates: certs, MaxPayload: int32(c.MaxPayload)}.Write()
	if err != nil {
		return err
	}
	if c.StockConfig == "-" {
		_, err = stdout.Write(conf)
		return err
	}
	// It names every certificate holder, but holds no secret: readable
	// by nats-server's group.
	return os.WriteFile(c.StockConfig, conf, 0o640)
}

// savedCertmaster is the certmaster remembered in DIR/certmaster.json
// for this identity's CA, or "".
func savedCertmaster(dir string, id *identity.Identity, log hclog.Logger) string {
	e, err := certmasterfile.Load(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ""
	case err != nil:
		log.Warn("ignoring the saved certmaster address", "error", err)
		return ""
	case e.CAFingerprint != id.CAFingerprint():
		log.Warn("ignoring the saved certmaster address: it was saved for another CA", "certmaster", e.Certmaster)
		return ""
	}
	return e.Certmaster
}
