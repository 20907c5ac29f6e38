package brokerd

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/syncbuf"
)

// natsServer is the stock nats-server binary (Debian's package), or the
// test is skipped loudly, or failed under CI=true.
func natsServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is not installed (.ci/run installs Debian's nats-server)")
		}
		t.Skip("SKIPPED: nats-server is not installed (apt-get install nats-server); the stock broker is untested")
	}
	return bin
}

// startStock writes a stock config for every live certificate of c and
// runs the real nats-server with it on ip; it returns the client URL.
func startStock(t *testing.T, c *testCA, ip string) string {
	t.Helper()
	return runStock(t, c, ip).url
}

// stockServer is a running nats-server and the way to rewrite its
// configuration.
type stockServer struct {
	url     string
	cmd     *exec.Cmd
	rewrite func() // writes the config again from the CA's certificates
}

func runStock(t *testing.T, c *testCA, ip string) *stockServer {
	t.Helper()
	bin := natsServer(t)
	dir := t.TempDir()
	if err := c.issue(gofunc.RoleBroker, "stock-"+strings.ReplaceAll(ip, ".", "-"), ip).Save(dir); err != nil {
		t.Fatal(err)
	}
	certs, err := FromCA(c.Authority, time.Now())
	must(t, err)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	must(t, err)
	addr := ln.Addr().String()
	ln.Close()
	path := filepath.Join(dir, "nats.conf")
	var conf []byte
	write := func(certs []*x509.Certificate) {
		conf, err = StockConfig{Listen: addr, CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"),
			CAFile: filepath.Join(dir, "ca.pem"), Certificates: certs}.Write()
		must(t, err)
		must(t, os.WriteFile(path, conf, 0o600))
	}
	write(certs)
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "-c", path)
	cmd.Stdout, cmd.Stderr = out, out
	must(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("nats-server log:\n%s\nconfig:\n%s", out.String(), conf)
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return &stockServer{url: "nats://" + addr, cmd: cmd, rewrite: func() {
				certs, err := FromCA(c.Authority, time.Now())
				must(t, err)
				write(certs)
			}}
		}
		select {
		case <-done:
			t.Fatalf("nats-server exited:\n%s\nconfig:\n%s", out.String(), conf)
		case <-ctx.Done():
			t.Fatalf("nats-server does not listen on %s:\n%s", addr, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Debian's nats-server with the config StockConfig writes gives every
// role the same subjects as funcbroker: what each may do works...
func TestStockRolesDoWhatTheyMay(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkRolesMay(t, c, func() string { return startStock(t, c, "127.0.0.41") })
}

// ...a minion is refused every forbidden subject...
func TestStockMinionForbiddenSubjects(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkMinionForbidden(t, c, func() string { return startStock(t, c, "127.0.0.42") })
}

// ...and so are overlords and monitors.
func TestStockOverlordForbiddenSubjects(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkOverlordForbidden(t, c, func() string { return startStock(t, c, "127.0.0.43") })
}

// The stock broker refuses what the config does not list: certificates
// issued after it was written, revoked before, roles that get nothing,
// and clients without a certificate from the CA.
func TestStockRefusals(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	revoked := c.issue(gofunc.RoleMinion, "gone.example.org")
	_, err := c.Revoke("gone.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	viewer := c.issue(gofunc.RoleViewer, "bob")
	url := startStock(t, c, "127.0.0.44")
	later := c.issue(gofunc.RoleMinion, "new.example.org")
	for name, id := range map[string]*identity.Identity{"revoked": revoked, "viewer": viewer, "issued later": later} {
		if _, err := dial(t, url, id); !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: got %v, want an authorization violation", name, err)
		}
	}
	if _, err := dial(t, url, nil); err == nil {
		t.Error("a client without a certificate was admitted")
	}
}

// Renewals share a subject: their permissions are merged into one user.
// Values nats-server's parser would read differently are refused.
func TestStockConfigWrite(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	a1 := c.issue(gofunc.RoleOverlord, "alice").Leaf()
	a2 := c.issue(gofunc.RoleOverlord, "alice").Leaf()
	m := c.issue(gofunc.RoleMonitor, "prom").Leaf()
	conf, err := StockConfig{Listen: "127.0.0.1:4222", CertFile: "/b/cert.pem", KeyFile: "/b/key.pem", CAFile: "/b/ca.pem",
		Certificates: []*x509.Certificate{a1, a2, m}}.Write()
	must(t, err)
	text := string(conf)
	if n := strings.Count(text, "user: "); n != 3 {
		t.Errorf("%d users, want 2 and the placeholder:\n%s", n, text)
	}
	for _, want := range []string{broker.ReplyInbox(a1), broker.ReplyInbox(a2), `subscribe: { allow: ["gf.v1.evt.>"] }`, `publish: { deny: [">"] }`, "verify_and_map: true"} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{`/tmp/a"b`, `/tmp/a\b`, "/tmp/$x", "/tmp/a\nb"} {
		if _, err := (StockConfig{Listen: "127.0.0.1:4222", CertFile: bad, KeyFile: "k", CAFile: "c"}).Write(); !errors.Is(err, ErrConfig) {
			t.Errorf("%q: got %v, want ErrConfig", bad, err)
		}
	}
	if _, err := (StockConfig{}).Write(); !errors.Is(err, ErrConfig) {
		t.Errorf("empty: got %v, want ErrConfig", err)
	}
}

// Revoking, writing the file again and reloading nats-server (SIGHUP)
// drops a connection that was admitted before; the others stay.
func TestStockReloadDropsRevoked(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	doomedID := c.issue(gofunc.RoleMinion, "doomed.example.org")
	staysID := c.issue(gofunc.RoleMinion, "stays.example.org")
	srv := runStock(t, c, "127.0.0.45")
	doomed := mustDial(t, srv.url, doomedID)
	closed := make(chan struct{})
	doomed.SetClosedHandler(func(*nats.Conn) { close(closed) })
	stays := mustDial(t, srv.url, staysID)
	_, err := c.Revoke("doomed.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	srv.rewrite()
	must(t, srv.cmd.Process.Signal(syscall.SIGHUP))
	select {
	case <-closed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the revoked minion is still connected after the reload")
	}
	stays.flush(t)
	if _, err := dial(t, srv.url, doomedID); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("reconnecting after revocation: got %v, want an authorization violation", err)
	}
}
