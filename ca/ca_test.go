package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/pki"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain())
	}
	goleak.VerifyTestMain(m)
}

func newTestCA(t testing.TB) *Authority {
	t.Helper()
	a, err := Init(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return a
}

func issue(t testing.TB, a *Authority, role gofunc.Role, name string, opts IssueOptions) *identity.Identity {
	t.Helper()
	id, err := a.Issue(role, name, opts)
	if err != nil {
		t.Fatalf("Issue(%s, %s): %v", role, name, err)
	}
	return id
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func TestInitOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	a, err := Init(Config{Dir: dir, Name: "test CA"})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(a.Fingerprint()) {
		t.Errorf("Fingerprint = %q", a.Fingerprint())
	}
	if cn := a.Certificate().Subject.CommonName; cn != "test CA" {
		t.Errorf("CA CN = %q", cn)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, fileCAKey), 0o600)
	if _, err := os.Stat(filepath.Join(dir, fileCRL)); err != nil {
		t.Errorf("no initial CRL: %v", err)
	}
	if _, err := Init(Config{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Errorf("second Init: %v, want ErrExists", err)
	}
	b, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if b.Fingerprint() != a.Fingerprint() {
		t.Errorf("Open fingerprint %s != Init fingerprint %s", b.Fingerprint(), a.Fingerprint())
	}
	if _, err := Open(Config{Dir: t.TempDir()}); !errors.Is(err, ErrNoCA) {
		t.Errorf("Open(empty dir) = %v, want ErrNoCA", err)
	}
	if err := os.Chmod(filepath.Join(dir, fileCAKey), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{Dir: dir}); !errors.Is(err, identity.ErrKeyPermissions) {
		t.Errorf("Open with a 0644 key = %v, want identity.ErrKeyPermissions", err)
	}
}

func TestIssueRoles(t *testing.T) {
	a := newTestCA(t)
	tests := []struct {
		role   gofunc.Role
		name   string
		opts   IssueOptions
		ekus   []x509.ExtKeyUsage
		dns    []string
		nIPs   int
		ouWant string
	}{
		{gofunc.RoleMinion, "Web1.Example.com", IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 2)}, DNSNames: []string{"web1"}},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"web1.example.com", "web1"}, 1, "gofunc-minion"},
		{gofunc.RoleOverlord, "alice", IssueOptions{},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, 0, "gofunc-overlord"},
		{gofunc.RoleCertmaster, "cm", IssueOptions{DNSNames: []string{"localhost"}},
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []string{"cm", "localhost"}, 0, "gofunc-certmaster"},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			id := issue(t, a, tt.role, tt.name, tt.opts)
			leaf := id.Leaf()
			if got := identity.RoleOf(leaf); got != tt.role {
				t.Errorf("RoleOf = %q, want %q", got, tt.role)
			}
			if id.Role() != tt.role || id.Name() != strings.ToLower(tt.name) {
				t.Errorf("Role/Name = %q/%q", id.Role(), id.Name())
			}
			if !slices.Equal(leaf.ExtKeyUsage, tt.ekus) {
				t.Errorf("EKU = %v, want %v", leaf.ExtKeyUsage, tt.ekus)
			}
			if !slices.Equal(leaf.DNSNames, tt.dns) || len(leaf.IPAddresses) != tt.nIPs {
				t.Errorf("SANs = %v %v", leaf.DNSNames, leaf.IPAddresses)
			}
			if ou := leaf.Subject.OrganizationalUnit; len(ou) != 1 || ou[0] != tt.ouWant {
				t.Errorf("OU = %v", ou)
			}
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d < DefaultValidity || d > DefaultValidity+time.Hour {
				t.Errorf("validity %v, want about %v", d, DefaultValidity)
			}
			if leaf.SerialNumber.BitLen() < 64 {
				t.Errorf("serial %x looks too short for a random 128-bit serial", leaf.SerialNumber)
			}
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: id.Roots(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	signed, err := a.Signed()
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) != len(tests) {
		t.Errorf("Signed lists %d certificates, want %d", len(signed), len(tests))
	}
	if _, err := a.Issue(gofunc.RoleOverlord, "bob", IssueOptions{DNSNames: []string{"x"}}); err == nil {
		t.Error("overlord with a DNS SAN was issued")
	}
	if _, err := a.Issue("root", "bob", IssueOptions{}); err == nil {
		t.Error("unknown role was issued")
	}
	if _, err := a.Issue(gofunc.RoleMinion, "../etc", IssueOptions{}); !errors.Is(err, identity.ErrBadName) {
		t.Errorf("bad name: %v, want identity.ErrBadName", err)
	}
}

func TestValidityConfigAndCap(t *testing.T) {
	a, err := Init(Config{Dir: t.TempDir(), Validity: 48 * time.Hour, CAValidity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	leaf := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{}).Leaf()
	if leaf.NotAfter.After(a.Certificate().NotAfter) {
		t.Errorf("leaf NotAfter %v outlives the CA's %v", leaf.NotAfter, a.Certificate().NotAfter)
	}
	leaf = issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{Validity: time.Hour}).Leaf()
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d != time.Hour+clockSkew {
		t.Errorf("validity %v, want 1h (+%v backdating)", d, clockSkew)
	}
}

func TestRoleOfNeedsEveryMark(t *testing.T) {
	a := newTestCA(t)
	good := issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{}).Leaf()
	mutate := map[string]func(c *x509.Certificate){
		"no OU":          func(c *x509.Certificate) { c.Subject.OrganizationalUnit = nil },
		"minion OU":      func(c *x509.Certificate) { c.Subject.OrganizationalUnit = []string{"gofunc-minion"} },
		"no URI":         func(c *x509.Certificate) { c.URIs = nil },
		"two URIs":       func(c *x509.Certificate) { c.URIs = append(c.URIs, pki.RoleURI(gofunc.RoleMinion)) },
		"server EKU":     func(c *x509.Certificate) { c.ExtKeyUsage = pki.RoleEKU(gofunc.RoleMinion) },
		"unknown role":   func(c *x509.Certificate) { c.URIs = []*url.URL{mustURL("urn:gofunc:role:root")} },
		"CA certificate": func(c *x509.Certificate) { c.IsCA = true },
	}
	if identity.RoleOf(good) != gofunc.RoleOverlord {
		t.Fatal("identity.RoleOf(good) wrong")
	}
	for name, f := range mutate {
		c := *good
		c.Subject.OrganizationalUnit = slices.Clone(good.Subject.OrganizationalUnit)
		c.URIs = slices.Clone(good.URIs)
		f(&c)
		if r := identity.RoleOf(&c); r != "" {
			t.Errorf("%s: RoleOf = %q, want none", name, r)
		}
	}
	if identity.RoleOf(nil) != "" {
		t.Error("identity.RoleOf(nil) has a role")
	}
}

func TestSaveLoad(t *testing.T) {
	a := newTestCA(t)
	id := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	dir := filepath.Join(t.TempDir(), "id")
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, fileKey), 0o600)
	got, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Leaf().Equal(id.Leaf()) || !got.CACert().Equal(a.Certificate()) || got.Dir() != dir {
		t.Error("loaded identity differs from the saved one")
	}
	if got.CAFingerprint() != a.Fingerprint() {
		t.Errorf("CAFingerprint %s, want %s", got.CAFingerprint(), a.Fingerprint())
	}

	// A key readable by others is refused.
	os.Chmod(filepath.Join(dir, fileKey), 0o640)
	if _, err := identity.Load(dir); !errors.Is(err, identity.ErrKeyPermissions) {
		t.Errorf("LoadIdentity with key 0640: %v, want identity.ErrKeyPermissions", err)
	}
	os.Chmod(filepath.Join(dir, fileKey), 0o600)

	// A key from another identity is refused.
	other := issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{})
	dir2 := t.TempDir()
	if err := other.Save(dir2); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(dir2, fileKey), filepath.Join(dir, fileKey))
	if _, err := identity.Load(dir); !errors.Is(err, identity.ErrKeyMismatch) {
		t.Errorf("LoadIdentity with a foreign key: %v, want identity.ErrKeyMismatch", err)
	}
}

// A crash between the two renames of Save leaves key.pem new and
// cert.pem old; LoadIdentity finishes the job.
func TestLoadFinishesInterruptedSave(t *testing.T) {
	a := newTestCA(t)
	old := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	dir := t.TempDir()
	if err := old.Save(dir); err != nil {
		t.Fatal(err)
	}
	next := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	keyPEM, _ := marshalKeyPEM(next.Certificate().PrivateKey.(*ecdsaKey))
	os.WriteFile(filepath.Join(dir, fileKey), keyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, fileCert+".new"), encodePEM(pemCert, next.Leaf().Raw), 0o644)
	got, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Leaf().Equal(next.Leaf()) {
		t.Error("LoadIdentity did not pick the new certificate")
	}
	if _, err := os.Stat(filepath.Join(dir, fileCert+".new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("cert.pem.new still there: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// tlsPair runs one handshake between a server and a client config over
// loopback TCP and returns the server's view of the connection.
func tlsPair(t *testing.T, server, client *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		cs  tls.ConnectionState
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := tls.Server(c, server)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// Read so the client's handshake completes on TLS 1.3 (the
			// server learns of a client-side failure only here).
			tc.Write([]byte("x"))
		}
		done <- result{tc.ConnectionState(), err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		buf := make([]byte, 1)
		_, err = c.Read(buf)
		c.Close()
	}
	r := <-done
	if err != nil {
		return r.cs, err
	}
	return r.cs, r.err
}

func TestMutualTLS(t *testing.T) {
	a := newTestCA(t)
	minion := issue(t, a, gofunc.RoleMinion, "m1.test", IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	overlord := issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})

	cs, err := tlsPair(t, minion.ServerTLSConfig(), overlord.ClientTLSConfig("m1.test"))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	p, err := identity.PeerFromConnState(cs)
	if err != nil {
		t.Fatal(err)
	}
	want := gofunc.Peer{Name: "alice", Role: gofunc.RoleOverlord, Serial: serialHex(overlord.Leaf().SerialNumber)}
	if p != want {
		t.Errorf("peer = %+v, want %+v", p, want)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Errorf("TLS version %x, want 1.3", cs.Version)
	}
	// By IP SAN too.
	if _, err := tlsPair(t, minion.ServerTLSConfig(), overlord.ClientTLSConfig("127.0.0.1")); err != nil {
		t.Errorf("dial by IP SAN: %v", err)
	}

	// The overlord refuses a minion that is not the one it dialled.
	if _, err := tlsPair(t, minion.ServerTLSConfig(), overlord.ClientTLSConfig("m2.test")); err == nil {
		t.Error("handshake with the wrong server name succeeded")
	}
	// An overlord certificate cannot take a minion's name (one name, one
	// role) and cannot serve (client auth EKU only).
	if _, err := a.Issue(gofunc.RoleOverlord, "m1.test", IssueOptions{}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("overlord named like a minion: %v, want ErrNameTaken", err)
	}
	other := issue(t, a, gofunc.RoleOverlord, "ovl.test", IssueOptions{})
	if eku := other.Leaf().ExtKeyUsage; len(eku) != 1 || eku[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("overlord key usages %v, want client auth only", eku)
	}
	if _, err := tlsPair(t, other.ServerTLSConfig(), overlord.ClientTLSConfig("ovl.test")); err == nil {
		t.Error("an overlord certificate served TLS")
	}
	// A client of another CA is refused.
	b := newTestCA(t)
	stranger := issue(t, b, gofunc.RoleOverlord, "alice", IssueOptions{})
	if _, err := tlsPair(t, minion.ServerTLSConfig(), stranger.ClientTLSConfig("m1.test")); err == nil {
		t.Error("a client from another CA was accepted")
	}
	// A client without a certificate is refused.
	noCert := &tls.Config{RootCAs: minion.Roots(), ServerName: "m1.test"}
	if _, err := tlsPair(t, minion.ServerTLSConfig(), noCert); err == nil {
		t.Error("a client without a certificate was accepted")
	}
}

func TestPeerFromConnStateUnverified(t *testing.T) {
	if _, err := identity.PeerFromConnState(tls.ConnectionState{}); !errors.Is(err, identity.ErrUnverified) {
		t.Errorf("err = %v, want identity.ErrUnverified", err)
	}
}

func BenchmarkInit(b *testing.B) {
	for b.Loop() {
		if _, err := Init(Config{Dir: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssue(b *testing.B) {
	a := newTestCA(b)
	for b.Loop() {
		if _, err := a.Issue(gofunc.RoleMinion, "m1", IssueOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Reload picks up a certificate and CRL that another process wrote.
func TestIdentityReload(t *testing.T) {
	a := newTestCA(t)
	id := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	if err := id.Reload(); err == nil {
		t.Error("Reload without a directory succeeded")
	}
	dir := t.TempDir()
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	next := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	crl, _ := a.CRL()
	if err := next.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	if err := next.Save(dir); err != nil { // "another process" renewed
		t.Fatal(err)
	}
	if err := id.Reload(); err != nil {
		t.Fatal(err)
	}
	if !id.Leaf().Equal(next.Leaf()) || id.CRLNumber() < 1 {
		t.Error("Reload did not pick up the new certificate and CRL")
	}
	// A certificate for another name is refused and the old one kept.
	other := issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{})
	if err := other.Save(dir); err != nil {
		t.Fatal(err)
	}
	if err := id.Reload(); err == nil || id.Name() != "m1" {
		t.Errorf("Reload to another name: %v, name %s", err, id.Name())
	}
}

// BenchmarkSubmitAutosign: a request validated, signed and recorded
// (certificate file, index, request cleanup), each write fsynced.
func BenchmarkSubmitAutosign(b *testing.B) {
	a := newTestCA(b)
	key, _ := newKey()
	i := 0
	for b.Loop() {
		i++
		csr, _ := makeCSR(key, "m"+strconv.Itoa(i))
		if res, err := a.Submit(context.Background(), Request{CSR: csr, Source: "192.0.2.1:1"}, "*"); err != nil || res.Status != StatusSigned {
			b.Fatal(res, err)
		}
	}
}
