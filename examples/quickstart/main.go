// Quickstart runs a whole gofunc fleet on loopback, in a temporary
// directory: a new CA and its certmaster, three minions on 127.0.0.2,
// 127.0.0.3 and 127.0.0.4 that enroll with autosign, and an overlord
// that pings them all, runs `uname -r` on each, and prints the tail of
// one minion's audit log. It exits 0 when all of that worked.
//
//	go run ./examples/quickstart
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/overlord"
)

var minionIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err := run(ctx, os.Stdout)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "quickstart FAILED:", err)
		os.Exit(1)
	}
	fmt.Println("quickstart OK")
}

func run(ctx context.Context, out io.Writer) error {
	dir, err := os.MkdirTemp("", "gofunc-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "working in %s\n", dir)

	// 1. A new CA and its certmaster, signing every valid request.
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return fmt.Errorf("init CA: %w", err)
	}
	fmt.Fprintf(out, "CA fingerprint %s\n", authority.Fingerprint())
	cmLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	certmaster := &ca.Service{Authority: authority, Autosign: "*"}
	var g errgroup.Group
	g.Go(func() error { return ignoreClosed(certmaster.Serve(cmLn)) })
	defer func() {
		certmaster.Close()
		g.Wait()
	}()

	// 2. Three minions enroll (pinning the CA by fingerprint) and serve.
	minionDirs, err := startMinions(ctx, out, dir, cmLn.Addr().String(), authority.Fingerprint(), &g)
	if err != nil {
		return err
	}
	defer func() {
		for _, srv := range minionDirs.servers {
			srv.Close()
		}
	}()

	// 3. An overlord with its own certificate (never the CA's key), which
	// learns the minions from the certmaster.
	admin, err := authority.Issue("overlord", "admin", ca.IssueOptions{})
	if err != nil {
		return fmt.Errorf("issue overlord certificate: %w", err)
	}
	o := overlord.New(overlord.WithIdentity(admin),
		overlord.WithMinions(overlord.Certmaster{Addr: cmLn.Addr().String(), Identity: admin}),
		overlord.WithHostTimeout(10*time.Second))
	defer o.Close()

	res, err := o.Targets("*").Call(ctx, "test", "ping")
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	for _, h := range res.Hosts() {
		fmt.Fprintf(out, "ping %-22s -> %v (%v)\n", h, res[h].Value, res[h].Duration.Round(time.Millisecond))
	}
	if len(res) != len(minionIPs) {
		return fmt.Errorf("ping reached %d minions, want %d", len(res), len(minionIPs))
	}

	res, err = o.Targets("*").Call(ctx, "command", "run", []string{"uname", "-r"})
	if err != nil {
		return fmt.Errorf("command.run: %w", err)
	}
	for _, h := range res.Hosts() {
		var r command.Result // the module's own result type
		if err := res[h].Decode(&r); err != nil {
			return fmt.Errorf("%s: decode command.run result: %w", h, err)
		}
		fmt.Fprintf(out, "uname -r on %-16s -> exit %d: %s\n", h, r.ExitCode, strings.TrimSpace(r.Stdout))
		if r.ExitCode != 0 {
			return fmt.Errorf("%s: uname exited %d", h, r.ExitCode)
		}
	}

	// 4. What the first minion recorded, and proof the chain holds.
	return showAudit(out, minionDirs.auditLogs[0])
}

type fleet struct {
	servers   []*minion.Server
	auditLogs []string
}

func startMinions(ctx context.Context, out io.Writer, dir, certmaster, fingerprint string, g *errgroup.Group) (*fleet, error) {
	f := &fleet{}
	for i, ip := range minionIPs {
		name := fmt.Sprintf("minion%d.quickstart", i+1)
		mdir := filepath.Join(dir, name)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "51234"))
		if err != nil {
			// Port 51234 taken on this address (a funcd running?): any port will do.
			if ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
				return f, fmt.Errorf("listen on %s: %w", ip, err)
			}
		}
		id, err := identity.Enroll(ctx, identity.EnrollRequest{Certmaster: certmaster, CAFingerprint: fingerprint,
			Name: name, Addr: ln.Addr().String(), Dir: mdir})
		if err != nil {
			ln.Close()
			return f, fmt.Errorf("enroll %s: %w", name, err)
		}
		logPath := filepath.Join(mdir, "audit.log")
		trail, err := audit.Open(logPath, audit.Config{})
		if err != nil {
			ln.Close()
			return f, err
		}
		srv := &minion.Server{Identity: id, Audit: trail}
		if err := modules.Register(srv, modules.Config{StateDir: filepath.Join(mdir, "state")}); err != nil {
			ln.Close()
			return f, err
		}
		f.servers = append(f.servers, srv)
		f.auditLogs = append(f.auditLogs, logPath)
		g.Go(func() error {
			defer trail.Close()
			return ignoreClosed(srv.Serve(ln))
		})
		fmt.Fprintf(out, "minion %s enrolled, serving on %s\n", name, ln.Addr())
	}
	return f, nil
}

func showAudit(out io.Writer, path string) error {
	sum, err := audit.Verify(path)
	if err != nil {
		return fmt.Errorf("audit log %s does not verify: %w", path, err)
	}
	lines, err := tail(path, 4)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "last %d records of %s (chain verified: %s):\n", len(lines), filepath.Base(filepath.Dir(path)), sum)
	for _, l := range lines {
		fmt.Fprintln(out, "  "+l)
	}
	return nil
}

func tail(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = slices.Delete(lines, 0, 1)
		}
	}
	return lines, sc.Err()
}

func ignoreClosed(err error) error {
	if errors.Is(err, minion.ErrServerClosed) || errors.Is(err, net.ErrClosed) || errors.Is(err, ca.ErrServerClosed) {
		return nil
	}
	return err
}
