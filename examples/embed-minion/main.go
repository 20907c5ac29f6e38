// Embed-minion shows an existing Go agent serving gofunc calls: it adds
// its own module ("agent") next to a few built-ins and serves them over
// mutual TLS with ACLs and an audit log, all in its own process.
//
//	go run ./examples/embed-minion --dir /etc/myagent/gofunc --listen :51234 --certmaster cm.example.org:51235
//	go run ./examples/embed-minion --demo     # a throwaway CA, serve, call itself, exit
//
// With --dir, the directory must hold an identity the CA issued (ca.pem,
// cert.pem, key.pem — for example from `funcd` enrollment or
// ca.Authority.Issue). With --certmaster, the minion server keeps that
// identity fresh by itself: it fetches the CRL (every --crl-refresh), so
// callers the CA revokes are refused, and renews its certificate; this
// program has no code of its own for either.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/modules/test"
	"github.com/gofunc/gofunc/overlord"
)

// Agent is the host program's own state, exposed as a gofunc module.
type Agent struct {
	started time.Time
	queued  atomic.Int64
}

// Status is what agent.status returns.
type Status struct {
	Version   string  `xmlrpc:"version"`
	UptimeS   float64 `xmlrpc:"uptime_s"`
	QueueSize int64   `xmlrpc:"queue_size"`
}

// Status reports the agent's health.
func (a *Agent) Status() Status {
	return Status{Version: "1.4.2", UptimeS: time.Since(a.started).Seconds(), QueueSize: a.queued.Load()}
}

// Enqueue adds n jobs to the agent's queue and returns the new size.
func (a *Agent) Enqueue(ctx context.Context, n int) (int64, error) {
	if n < 1 || n > 1000 {
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "n must be 1..1000, got %d", n)
	}
	p, _ := gofunc.PeerFromContext(ctx)
	fmt.Fprintf(os.Stderr, "agent: %s enqueued %d jobs\n", p.Name, n)
	return a.queued.Add(int64(n)), nil
}

// Doc describes the module for get_method_args.
func (a *Agent) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "The host agent's own controls.",
		Version:     "1.4.2",
		Methods: map[string]gofunc.MethodDoc{
			"Status":  {Description: "Version, uptime and queue size."},
			"Enqueue": {Description: "Queue n jobs.", Args: []gofunc.ArgDoc{{Name: "n", Type: "int", Description: "how many, 1..1000"}}},
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, out io.Writer) int {
	fs := flag.NewFlagSet("embed-minion", flag.ContinueOnError)
	dir := fs.String("dir", "", "identity directory (ca.pem, cert.pem, key.pem)")
	listen := fs.String("listen", ":51234", "address to serve on")
	demo := fs.Bool("demo", false, "make a throwaway CA, serve, call ourselves, exit")
	certmaster := fs.String("certmaster", "", "certmaster HOST:PORT to fetch the CRL and renew from")
	crlRefresh := fs.Duration("crl-refresh", 0, "how often to fetch the CRL (default 30s)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var err error
	if *demo {
		err = runDemo(ctx, out)
	} else if *dir == "" {
		fmt.Fprintln(os.Stderr, "embed-minion: --dir or --demo is required")
		return 2
	} else {
		err = serve(ctx, *dir, *listen, *certmaster, *crlRefresh)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "embed-minion:", err)
		return 1
	}
	return 0
}

// newServer is the part a real agent adds to its own main: an identity,
// an audit log, its module and some built-ins.
func newServer(id *identity.Identity, trail *audit.Log) (*minion.Server, error) {
	srv := &minion.Server{Identity: id, Audit: trail}
	for name, m := range map[string]any{
		"agent":   &Agent{started: time.Now()},
		"test":    &test.Module{},
		"command": &command.Module{},
	} {
		if err := srv.Register(name, m); err != nil {
			return nil, err
		}
	}
	return srv, nil
}

func serve(ctx context.Context, dir, listen, certmaster string, crlRefresh time.Duration) error {
	id, err := identity.Load(dir)
	if err != nil {
		return err
	}
	trail, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Config{})
	if err != nil {
		return err
	}
	defer trail.Close()
	srv, err := newServer(id, trail)
	if err != nil {
		return err
	}
	srv.Addr = listen
	srv.Certmaster, srv.CRLInterval = certmaster, crlRefresh
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); !errors.Is(err, minion.ErrServerClosed) {
		return err
	}
	return nil
}

func runDemo(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "embed-minion-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	id, err := authority.Issue(gofunc.RoleMinion, "agent1.demo", ca.IssueOptions{Addr: ln.Addr().String()})
	if err != nil {
		return err
	}
	trail, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Config{})
	if err != nil {
		return err
	}
	defer trail.Close()
	srv, err := newServer(id, trail)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-done
	}()

	admin, err := authority.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		return err
	}
	o := overlord.New(overlord.WithIdentity(admin),
		overlord.WithMinions(overlord.Static{{Name: "agent1.demo", Addr: ln.Addr().String()}}))
	defer o.Close()
	sel := o.Targets("agent1.demo")
	if _, err := sel.Call(ctx, "agent", "enqueue", 5); err != nil {
		return err
	}
	res, err := sel.Call(ctx, "agent", "status")
	if err != nil {
		return err
	}
	var st Status
	if err := res["agent1.demo"].Decode(&st); err != nil {
		return err
	}
	fmt.Fprintf(out, "agent1.demo: version %s, queue %d\n", st.Version, st.QueueSize)
	res, err = sel.Call(ctx, "agent", "list_methods")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "agent methods: %v\n", res["agent1.demo"].Value)
	return nil
}
