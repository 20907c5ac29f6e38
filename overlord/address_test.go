package overlord_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/test"
	"github.com/gofunc/gofunc/overlord"
)

// countingListener accepts connections on addr, counts and drops them:
// a service on another host that a minion would like the overlord to
// connect to.
func countingListener(t *testing.T, addr string) (net.Listener, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln, &n
}

// enrollFrom enrolls name at the certmaster the way any client can,
// connecting from the local address from and asking to be listed as
// addr, and returns the identity the certmaster signed.
func enrollFrom(t *testing.T, certmaster string, caCert *x509.Certificate, name, addr, from string) *identity.Identity {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	body, err := ixmlrpc.EncodeRequest("enroll", map[string]any{"csr": string(csr), "name": name, "addr": addr})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"},
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Post("https://"+certmaster+"/RPC2", "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	v, err := ixmlrpc.DecodeResponse(resp.Body, ixmlrpc.Limits{})
	if err != nil {
		t.Fatalf("enroll %s: %v", name, err)
	}
	var ans struct{ Status, Cert, CA string }
	if err := ixmlrpc.Unmarshal(v, &ans); err != nil || ans.Status != "signed" {
		t.Fatalf("enroll %s: %+v, %v", name, ans, err)
	}
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for file, data := range map[string][]byte{"ca.pem": []byte(ans.CA), "cert.pem": []byte(ans.Cert),
		"key.pem": pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})} {
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// serveMinion runs a minion with the test module on ln.
func serveMinion(t *testing.T, id *identity.Identity, ln net.Listener) {
	t.Helper()
	trail, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := &minion.Server{Identity: id, Audit: trail}
	if err := srv.Register("test", &test.Module{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, minion.ErrServerClosed) {
			t.Errorf("minion Serve: %v", err)
		}
		trail.Close()
	})
}

// listenPair listens on host a with a free port, then on host b with
// the same port: a minion claiming a's address while it listens on b.
func listenPair(t *testing.T, a, b string) (net.Listener, *atomic.Int64, net.Listener) {
	t.Helper()
	for range 20 {
		victim, hits := countingListener(t, net.JoinHostPort(a, "0"))
		_, port, _ := net.SplitHostPort(victim.Addr().String())
		if ln, err := net.Listen("tcp", net.JoinHostPort(b, port)); err == nil {
			return victim, hits, ln
		}
	}
	t.Fatal("no port free on both addresses")
	return nil, nil, nil
}

// A minion's listed address is its own claim. The overlord dials only
// an address the CA vouches for: an IP in the minion's certificate or
// the one the certmaster saw its request come from. A minion claiming
// another host's address (by IP or by a name such as localhost) is
// dialed where it enrolled from instead, and the other host never sees
// a connection.
func TestOverlordDialsOnlyVouchedAddresses(t *testing.T) {
	t.Parallel()
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: authority, Autosign: "*"}
	cmLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(cmLn) }()
	t.Cleanup(func() { svc.Close(); <-served })
	certmaster := cmLn.Addr().String()

	// evil claims another host's IP; sly claims "localhost", a name not
	// its own; honest claims the address it enrolls from.
	victim, victimHits, evilLn := listenPair(t, "127.0.9.1", "127.0.9.2")
	_, port, _ := net.SplitHostPort(evilLn.Addr().String())
	serveMinion(t, enrollFrom(t, certmaster, authority.Certificate(), "evil.test", victim.Addr().String(), "127.0.9.2"), evilLn)
	_, localHits, slyLn := listenPair(t, "127.0.0.1", "127.0.9.3")
	_, slyPort, _ := net.SplitHostPort(slyLn.Addr().String())
	serveMinion(t, enrollFrom(t, certmaster, authority.Certificate(), "sly.test", net.JoinHostPort("localhost", slyPort), "127.0.9.3"), slyLn)
	honestLn, err := net.Listen("tcp", "127.0.9.4:0")
	if err != nil {
		t.Fatal(err)
	}
	serveMinion(t, enrollFrom(t, certmaster, authority.Certificate(), "honest.test", honestLn.Addr().String(), "127.0.9.4"), honestLn)

	admin, err := authority.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c := overlord.New(overlord.WithIdentity(admin), overlord.WithLogger(logs.logger()),
		overlord.WithMinions(overlord.Certmaster{Addr: certmaster, Identity: admin, Logger: logs.logger()}))
	t.Cleanup(func() { c.Close() })
	ms, err := c.Minions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"evil.test": net.JoinHostPort("127.0.9.2", port), "sly.test": slyLn.Addr().String(),
		"honest.test": honestLn.Addr().String()}
	for _, m := range ms {
		if m.Addr != want[m.Name] {
			t.Errorf("%s listed at %s, want %s", m.Name, m.Addr, want[m.Name])
		}
	}
	res, err := c.Targets("*").Call(t.Context(), "test", "ping")
	if err != nil {
		t.Errorf("ping: %v", err)
	}
	if len(res) != 3 {
		t.Errorf("ping answered by %v", res.Hosts())
	}
	if n := victimHits.Load() + localHits.Load(); n != 0 {
		t.Errorf("the hosts the minions claimed got %d connections from the overlord", n)
	}
	for _, name := range []string{"evil.test", "sly.test"} {
		if !strings.Contains(logs.String(), fmt.Sprintf("minion=%s", name)) {
			t.Errorf("no warning about %s's claimed address:\n%s", name, logs.String())
		}
	}
	if strings.Contains(logs.String(), "minion=honest.test") {
		t.Errorf("a warning about honest.test:\n%s", logs.String())
	}
}
