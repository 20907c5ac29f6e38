package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/certmasterfile"
	"github.com/gofunc/gofunc/overlord"
)

// countingListener counts the connections a certmaster accepts: the
// certmaster clients open one per request.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startCertmaster serves f's CA on loopback and returns its address and
// the connection counter.
func startCertmaster(t *testing.T, f *fleettest.Fleet) (string, *countingListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	svc := &ca.Service{Authority: f.CA}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(cl) }()
	t.Cleanup(func() {
		_ = svc.Close()
		<-done
	})
	return ln.Addr().String(), cl
}

// func remembers the certmaster it was given, fetches the CRL at most
// once per run and not again while it is fresh, and asks for the
// minion list only when told to or when it has none.
func TestFuncRemembersItsCertmaster(t *testing.T) {
	f, dir := fleetDir(t, 2)
	addr, conns := startCertmaster(t, f)
	if err := os.Remove(filepath.Join(dir, overlord.CacheFile)); err != nil {
		t.Fatal(err)
	}
	// Without a certmaster and without a list: what to do, not a loop.
	o := runFunc(t, "", "--dir", dir, "list_minions", "--refresh").want(t, exitUsage)
	if !strings.Contains(o.stderr, "--refresh needs a certmaster: give --certmaster HOST:PORT once") {
		t.Errorf("refresh without a certmaster: %q", o.stderr)
	}
	o = runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stderr, "run `func --certmaster HOST:PORT list_minions` once") || strings.Contains(o.stderr, "--refresh") {
		t.Errorf("no minion list: %q", o.stderr)
	}

	// The first run: the CRL and the list, one request each.
	runFunc(t, "", "--dir", dir, "--certmaster", addr, "list_minions").want(t, exitOK)
	if n := conns.n.Swap(0); n != 2 {
		t.Errorf("first run: %d requests to the certmaster, want 2 (CRL, list)", n)
	}
	saved, err := certmasterfile.Load(dir)
	if err != nil || saved.Certmaster != addr || saved.CAFingerprint != f.CA.Fingerprint() {
		t.Fatalf("certmaster.json = %+v, %v", saved, err)
	}
	// Later runs, without --certmaster: the cached list and the fresh
	// CRL, no request at all.
	for range 3 {
		runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	}
	if n := conns.n.Swap(0); n != 0 {
		t.Errorf("runs with a fresh CRL and a cached list: %d requests, want 0", n)
	}
	// --refresh uses the remembered certmaster.
	o = runFunc(t, "", "--dir", dir, "list_minions", "--refresh").want(t, exitOK)
	if strings.Count(o.stdout, "\n") != 2 {
		t.Errorf("list_minions --refresh:\n%s", o.stdout)
	}
	if n := conns.n.Swap(0); n != 1 {
		t.Errorf("--refresh: %d requests, want 1 (list)", n)
	}
	// A stale CRL is fetched once, however many times the run resolves
	// its targets.
	runFunc(t, "", "--dir", dir, "--certmaster", addr, "--crl-refresh", "0s", "*", "ping").want(t, exitOK)
	if n := conns.n.Swap(0); n != 2 {
		t.Errorf("explicit certmaster, stale CRL: %d requests, want 2", n)
	}
	// A certmaster remembered for another CA is not used.
	if err := certmasterfile.Save(dir, certmasterfile.Entry{Certmaster: addr, CAFingerprint: "sha256:00"}); err != nil {
		t.Fatal(err)
	}
	o = runFunc(t, "", "--dir", dir, "list_minions", "--refresh").want(t, exitUsage)
	if !strings.Contains(o.stderr, "another CA") {
		t.Errorf("certmaster of another CA: %q", o.stderr)
	}
}

// A minion the CA revoked is left out of the targets, and func says so.
func TestRevokedMinionsLeftOut(t *testing.T) {
	f, dir := fleetDir(t, 3)
	addr, _ := startCertmaster(t, f)
	runFunc(t, "", "--dir", dir, "--certmaster", addr, "list_minions").want(t, exitOK)
	if _, err := f.CA.Revoke("m2.test", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	// The certmaster no longer lists m2; func says why it left.
	o := runFunc(t, "", "--dir", dir, "--certmaster", addr, "*", "ping").want(t, exitOK)
	if !strings.Contains(o.stderr, "func: left out m2.test: its certificate was revoked on ") || !strings.Contains(o.stderr, "(keyCompromise)") {
		t.Errorf("revoked minion not reported: %q", o.stderr)
	}
	if strings.Contains(o.stdout, "m2.test") || !strings.Contains(o.stderr, "2 ok") {
		t.Errorf("revoked minion targeted:\n%s\n%s", o.stdout, o.stderr)
	}
	// From a cached list that still names it, with the CRL: left out too,
	// and only when the spec would have named it.
	list := []cachedMinion{}
	for _, m := range f.Minions() {
		list = append(list, cachedMinion{Name: m.Name, Addr: m.Addr, Serial: strings.ToLower(m.Identity.Leaf().SerialNumber.Text(16))})
	}
	if err := writeCache(filepath.Join(dir, overlord.CacheFile), list); err != nil {
		t.Fatal(err)
	}
	o = runFunc(t, "", "--dir", dir, "m1*", "ping").want(t, exitOK)
	if strings.Contains(o.stderr, "left out") {
		t.Errorf("m1* reported m2: %q", o.stderr)
	}
	o = runFunc(t, "", "--dir", dir, "m2*", "ping").want(t, exitNoMatch)
	if !strings.Contains(o.stderr, "left out m2.test: its certificate was revoked") {
		t.Errorf("m2*: %q", o.stderr)
	}
}

// An overlord whose certificate the CA revoked is told so, even though
// the certmaster now refuses it.
func TestRevokedOverlordIsTold(t *testing.T) {
	f, dir := fleetDir(t, 1)
	addr, _ := startCertmaster(t, f)
	runFunc(t, "", "--dir", dir, "--certmaster", addr, "*", "ping").want(t, exitOK)
	if _, err := f.CA.Revoke(f.Admin().Name(), ca.ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	o := runFunc(t, "", "--dir", dir, "--certmaster", addr, "*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stderr, "this overlord's certificate ("+f.Admin().Name()) || !strings.Contains(o.stderr, "was revoked on") ||
		strings.Count(o.stderr, "\n") != 1 || strings.Contains(o.stderr, "unreachable") {
		t.Errorf("revoked overlord: %q", o.stderr)
	}
}

// func renews its certificate at two thirds of its lifetime, like
// funcd, and warns when it cannot.
func TestOverlordRenewal(t *testing.T) {
	f, dir := fleetDir(t, 1)
	addr, _ := startCertmaster(t, f)
	// Two minutes of validity: the CA backdates NotBefore by its clock
	// skew allowance, so it is past two thirds at once.
	short, err := f.CA.Issue(gofunc.RoleOverlord, "shortlived", ca.IssueOptions{Validity: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := short.Save(dir); err != nil {
		t.Fatal(err)
	}
	oldSerial := serialOf(short.Leaf())
	o := runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	if !strings.Contains(o.stderr, "no certmaster is known to renew it from") {
		t.Errorf("due without a certmaster: %q", o.stderr)
	}
	o = runFunc(t, "", "--dir", dir, "--certmaster", addr, "*", "ping").want(t, exitOK)
	if !strings.Contains(o.stderr, "func: renewed this overlord's certificate: serial ") {
		t.Errorf("renewal not reported: %q", o.stderr)
	}
	o = runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	if strings.Contains(o.stderr, "renew") {
		t.Errorf("renewed twice, or still due: %q", o.stderr)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil || strings.Contains(string(b), oldSerial) {
		t.Fatal(err)
	}
	c, err := identity.ParseCertificatePEM(b)
	if err != nil || serialOf(c) == oldSerial || time.Until(c.NotAfter) < 24*time.Hour {
		t.Errorf("cert.pem after renewal: serial %s (was %s), until %v, %v", serialOf(c), oldSerial, c.NotAfter, err)
	}
}
