package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

func startCertmaster(t *testing.T, autosign string) (*ca.Authority, string) {
	t.Helper()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: a, Autosign: autosign}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.Serve(ln)
	t.Cleanup(func() { svc.Close() })
	return a, ln.Addr().String()
}

// While its request is pending, funcd prints its key's fingerprint, the
// one `certmaster list` shows, so the admin can compare before signing
// (issue 12 §5). --renew renews only when the certmaster allows it: when
// due, or after certmaster rekey (issue 11 item 7).
func TestPendingFingerprintAndRenew(t *testing.T) {
	a, certmaster := startCertmaster(t, "")
	dir := filepath.Join(t.TempDir(), "m8")
	p := startFuncd(t, "--dir", dir, "--certmaster", certmaster, "--ca-fingerprint", a.Fingerprint(),
		"--name", "m8.test", "--listen", freeAddr(t))
	var fp string
	eventually(t, "m8.test's request to be pending", func() bool {
		reqs, _ := a.Pending()
		if len(reqs) == 1 {
			fp = reqs[0].KeyFingerprint
		}
		return fp != ""
	})
	eventually(t, "funcd to print the key fingerprint", func() bool {
		return strings.Contains(p.stderr.String(), "key_fingerprint="+fp)
	})
	if _, err := a.Sign("m8.test"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "funcd to enroll", func() bool {
		_, err := identity.Load(dir)
		return err == nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait()
	before, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	early := startFuncd(t, "--dir", dir, "--renew")
	if err := early.wait(); err == nil || !strings.Contains(early.stderr.String(), "not due") {
		t.Errorf("--renew of a fresh certificate: %v, want refused as not due\n%s", err, early.stderr.String())
	}
	if err := a.AllowRekey("m8.test", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	renew := startFuncd(t, "--dir", dir, "--renew")
	if err := renew.wait(); err != nil {
		t.Fatalf("--renew after rekey: %v\n%s", err, renew.stderr.String())
	}
	after, err := identity.Load(dir)
	if err != nil || after.Leaf().Equal(before.Leaf()) {
		t.Errorf("--renew did not save a new certificate (%v)", err)
	}
}

// The token comes from a file (or GOFUNC_TOKEN) rather than the command
// line, where ps shows it; on the command line it still works, with a
// warning (issue 11 item 13).
func TestTokenFile(t *testing.T) {
	a, certmaster := startCertmaster(t, "")
	tok, _, err := a.CreateToken(ca.TokenOptions{Uses: 3})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(tok.Reveal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	enroll := func(name string, args ...string) *proc {
		dir := filepath.Join(t.TempDir(), name)
		p := startFuncd(t, append([]string{"--dir", dir, "--certmaster", certmaster, "--ca-fingerprint", a.Fingerprint(),
			"--name", name, "--listen", freeAddr(t)}, args...)...)
		eventually(t, name+" to enroll with the token", func() bool {
			_, err := identity.Load(dir)
			return err == nil
		})
		return p
	}
	p := enroll("t1.test", "--token-file", file)
	if strings.Contains(p.stderr.String(), "command line") {
		t.Errorf("--token-file warned about the command line:\n%s", p.stderr.String())
	}
	t.Setenv("GOFUNC_TOKEN", tok.Reveal())
	enroll("t2.test")
	os.Unsetenv("GOFUNC_TOKEN")
	p = enroll("t3.test", "--token", tok.Reveal())
	eventually(t, "the command-line warning", func() bool { return strings.Contains(p.stderr.String(), "--token-file or GOFUNC_TOKEN") })
	if strings.Contains(p.stderr.String(), tok.Reveal()) {
		t.Error("funcd logged the token")
	}
}
