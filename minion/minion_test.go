package minion_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
)

func TestPingOverMutualTLS(t *testing.T) {
	e := start(t, nil)
	got, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "test.ping")
	if err != nil {
		t.Fatalf("test.ping: %v", err)
	}
	if got != true {
		t.Fatalf("test.ping = %#v, want true", got)
	}
}

func TestUnknownMethodIsFault(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	for _, m := range []string{"test.nope", "nope.ping", "ping", "system.nope"} {
		got, err := e.call(c, m)
		if !errors.Is(err, gofunc.ErrNoSuchMethod) {
			t.Errorf("%s: got (%v, %v), want a no-such-method fault", m, got, err)
		}
	}
}

// A caller whom no rule would let call a name is denied it, audited,
// whether or not the method exists: the ACL also hides which modules
// and methods the minion has. Whom a rule would let call it learns that
// it does not exist.
func TestUnknownMethodDeniedToWhomTheACLRefusesIt(t *testing.T) {
	acl, err := minion.ParseACL("test", strings.NewReader("*@viewer = test.*\n*@overlord = *\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minion.Server) { s.ACL = acl })
	viewer := e.client(gofunc.RoleViewer, "alice")
	for _, m := range []string{"power.reboot", "nope.ping", "service.nope"} {
		if _, err := e.call(viewer, m); !errors.Is(err, gofunc.ErrDenied) {
			t.Errorf("viewer %s: %v, want denied", m, err)
		}
	}
	if _, err := e.call(viewer, "test.nope"); !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Errorf("viewer test.nope (test.* is granted): %v, want no such method", err)
	}
	if _, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "nope.ping"); !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Errorf("overlord nope.ping: %v, want no such method", err)
	}
	denied := 0
	for _, r := range readAudit(t, e.auditPath) {
		if r.Kind == "call.denied" && r.Caller == "alice" {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d denials of alice audited, want 3", denied)
	}
}

func TestBadArgumentsAreFaults(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err := e.call(c, "test.sleep", "soon")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Fatalf("test.sleep(\"soon\") = %v, want bad args", err)
	}
	if _, err := e.call(c, "test.ping", 1, 2); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Fatalf("test.ping(1, 2) = %v, want bad args", err)
	}
}

func TestMinionCertificateIsDeniedByDefault(t *testing.T) {
	e := start(t, nil)
	_, err := e.call(e.client(gofunc.RoleMinion, "m2.test"), "test.ping")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("a minion calling a minion: %v, want denied", err)
	}
	recs := readAudit(t, e.auditPath)
	if last := recs[len(recs)-1]; last.Kind != "call.denied" || last.Caller != "m2.test" {
		t.Fatalf("last audit record = %+v, want the denial", last)
	}
}

// A client certificate that is self-signed, or signed by another CA, is
// refused during the TLS handshake: no request is ever read.
func TestForeignClientCertificatesRefusedAtHandshake(t *testing.T) {
	e := start(t, nil)
	stranger := foreign(t, gofunc.RoleOverlord, "admin")
	roots := x509.NewCertPool()
	roots.AddCert(e.authority.Certificate())
	cases := map[string]tls.Certificate{
		"self-signed":    selfSigned(t, "admin"),
		"other CA":       *stranger.Certificate(),
		"no certificate": {},
	}
	for name, cert := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: roots, ServerName: "m1.test"}
			if cert.Certificate != nil {
				cfg.Certificates = []tls.Certificate{cert}
			}
			conn, err := tls.Dial("tcp", e.addr, cfg)
			if err == nil {
				// TLS 1.3: the client learns of the refusal on its first read.
				conn.SetDeadline(time.Now().Add(5 * time.Second))
				_, err = conn.Write([]byte("POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"))
				if err == nil {
					_, err = conn.Read(make([]byte, 1))
				}
				conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "certificate") {
				t.Fatalf("handshake with %s client cert: err = %v, want a certificate alert", name, err)
			}
		})
	}
	// Each refusal is recorded as a refused handshake, never as a call.
	eventually(t, "the refused handshakes to be audited", func() bool {
		return len(readAudit(t, e.auditPath)) == len(cases)
	})
	for _, r := range readAudit(t, e.auditPath) {
		if r.Kind != audit.KindTLSRefused || r.Caller != "" {
			t.Errorf("refused handshake recorded as %+v", r)
		}
	}
}

func selfSigned(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{"gofunc-overlord"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// Every call, whatever its outcome, appears in the audit log, the start
// record before the method ran, and the chain links every line.
func TestEveryCallIsAudited(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	calls := []struct {
		method string
		params []any
	}{
		{"test.ping", nil},
		{"test.add", []any{2, 3}},
		{"test.nope", nil},
		{"test.echo", []any{"hello"}},
	}
	for _, cl := range calls {
		e.call(c, cl.method, cl.params...)
	}
	recs := readAudit(t, e.auditPath)
	seen := map[string][]string{}
	for _, r := range recs {
		seen[r.Method] = append(seen[r.Method], r.Kind)
		if r.Caller != "admin" || r.Role != "overlord" || r.Serial == "" || r.Remote == "" {
			t.Errorf("record %d lacks the caller: %+v", r.Seq, r)
		}
	}
	for _, m := range []string{"test.ping", "test.add", "test.echo"} {
		if got := strings.Join(seen[m], ","); got != "call.start,call.end" {
			t.Errorf("%s records = %q, want call.start,call.end", m, got)
		}
	}
	if got := strings.Join(seen["test.nope"], ","); got != "call.rejected" {
		t.Errorf("test.nope records = %q, want call.rejected", got)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].Prev != recs[i-1].Hash || recs[i].Seq != recs[i-1].Seq+1 {
			t.Fatalf("record %d does not link to record %d", recs[i].Seq, recs[i-1].Seq)
		}
	}
	if _, err := audit.Verify(e.auditPath); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}

// The start record is on disk before the method runs.
func TestStartRecordWrittenBeforeMethodRuns(t *testing.T) {
	var e *env
	probe := &auditProbe{}
	e = start(t, func(s *minion.Server) {
		if err := s.Register("probe", probe); err != nil {
			t.Fatal(err)
		}
	})
	probe.path = e.auditPath
	if _, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "probe.look"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(probe.seen, `"probe.look"`) || !strings.Contains(probe.seen, `"call.start"`) {
		t.Fatalf("while probe.look ran, the audit log held:\n%s", probe.seen)
	}
}

type auditProbe struct {
	path string
	seen string
}

func (p *auditProbe) Look() (bool, error) {
	b, err := os.ReadFile(p.path)
	p.seen = string(b)
	return err == nil, err
}

func TestServerWithoutIdentityOrAuditRefuses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := (&minion.Server{}).Serve(ln); !errors.Is(err, minion.ErrNoIdentity) {
		t.Fatalf("Serve without identity = %v", err)
	}
}

func TestFaultsFromModulesKeepTheirCode(t *testing.T) {
	e := start(t, func(s *minion.Server) {
		if err := s.Register("flaky", &flaky{}); err != nil {
			t.Fatal(err)
		}
	})
	c := e.client(gofunc.RoleOverlord, "admin")
	if _, err := e.call(c, "flaky.missing"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("flaky.missing = %v, want not found", err)
	}
	_, err := e.call(c, "flaky.plain")
	var f *gofunc.Fault
	if !errors.As(err, &f) || f.Code != gofunc.CodeModule || !strings.Contains(f.Message, "disk on fire") {
		t.Errorf("flaky.plain = %v, want a module fault with the text", err)
	}
	_, err = e.call(c, "flaky.boom", 5)
	if !errors.Is(err, gofunc.ErrInternal) || strings.Contains(err.Error(), "index out of range") {
		t.Errorf("flaky.boom = %v, want an internal fault that hides the panic", err)
	}
	if got, err := e.call(c, "test.ping"); err != nil || got != true {
		t.Errorf("after a panic, test.ping = %v, %v", got, err)
	}
}

type flaky struct{}

func (*flaky) Missing() error { return gofunc.Errorf(gofunc.CodeNotFound, "no such job") }
func (*flaky) Plain() error   { return errors.New("disk on fire") }
func (*flaky) Boom(i int) int {
	xs := []int{1} // a runtime error, as a module bug would make one
	return xs[i]
}

// A module that holds resources is closed when the server stops; Close
// is never callable over the wire.
func TestModulesClosedOnShutdown(t *testing.T) {
	c := &closer{}
	e := start(t, func(s *minion.Server) {
		if err := s.Register("res", c); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "res.close"); !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Fatalf("res.close over the wire = %v, want no such method", err)
	}
	if err := e.srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.closed.Load() != 1 {
		t.Fatalf("Close called %d times, want 1", c.closed.Load())
	}
}

type closer struct{ closed atomic.Int32 }

func (c *closer) Ping() bool   { return true }
func (c *closer) Close() error { c.closed.Add(1); return nil }
