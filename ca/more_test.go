package ca

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

func TestServerIdentityReuseAndReissue(t *testing.T) {
	a := newTestCA(t)
	first, err := a.ServerIdentity([]string{"cm.example"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if first.Role() != gofunc.RoleCertmaster || first.Name() != "cm.example" {
		t.Fatalf("%s/%s", first.Name(), first.Role())
	}
	again, err := a.ServerIdentity([]string{"cm.example"}, nil)
	if err != nil || !again.Leaf().Equal(first.Leaf()) {
		t.Errorf("second ServerIdentity issued anew (%v)", err)
	}
	// New names, or a revocation, get a new certificate.
	other, err := a.ServerIdentity([]string{"cm.example", "cm2.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil || other.Leaf().Equal(first.Leaf()) {
		t.Errorf("ServerIdentity with another name reused the old certificate (%v)", err)
	}
	if _, err := a.Revoke(serialHex(other.Leaf().SerialNumber), ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	fresh, err := a.ServerIdentity([]string{"cm.example", "cm2.example"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil || fresh.Leaf().Equal(other.Leaf()) {
		t.Errorf("revoked server certificate reused (%v)", err)
	}
	if _, err := a.ServerIdentity([]string{"bad name"}, nil); err == nil {
		t.Error("bad server name accepted")
	}

	// Service.Reload swaps in the certificate on disk.
	s := &Service{Authority: a, ServerNames: []string{"cm.example", "cm2.example"}, ServerIPs: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if err := s.init(); err != nil {
		t.Fatal(err)
	}
	before := s.certChain().Leaf
	if _, err := a.Revoke(serialHex(before.SerialNumber), ReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	after := s.certChain()
	if after.Leaf.Equal(before) || len(after.Certificate) != 2 {
		t.Error("Reload kept a revoked certificate, or the chain lacks the CA")
	}
}

func TestTokenRedactsEverywhere(t *testing.T) {
	a := newTestCA(t)
	tok, _, err := a.CreateToken(TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secret := tok.Reveal()
	if !strings.HasPrefix(secret, tokenPrefix) || len(secret) < 40 {
		t.Fatalf("token %q too short", secret)
	}
	js, _ := json.Marshal(struct{ T identity.Token }{tok})
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "token", tok)
	hclogTo(&buf).Info("x", "token", tok)
	for _, s := range []string{tok.String(), tok.GoString(), string(js), buf.String()} {
		if strings.Contains(s, secret) || !strings.Contains(s, "[redacted]") {
			t.Errorf("leak or no redaction: %q", s)
		}
	}
}

func TestCRLRefreshedWhenStale(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a, err := Init(Config{Dir: t.TempDir(), Now: clock, CRLValidity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	id := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	der, _ := a.CRL()
	if err := id.SetCRL(der); err != nil {
		t.Fatal(err)
	}
	n := id.CRLNumber()
	again, _ := a.CRL()
	if !bytes.Equal(again, der) {
		t.Error("a fresh CRL was remade")
	}
	offset.Store(int64(31 * time.Minute)) // past half of CRLValidity
	stale, _ := a.CRL()
	if err := id.SetCRL(stale); err != nil {
		t.Fatal(err)
	}
	rl, _ := parseCRL(stale)
	if id.CRLNumber() != n+1 || rl.NextUpdate.Before(clock().Add(50*time.Minute)) {
		t.Errorf("stale CRL not remade: number %d (was %d), next update %v", id.CRLNumber(), n, rl.NextUpdate)
	}
}

func TestLegacyAddressFromCSR(t *testing.T) {
	a := newTestCA(t)
	key, _ := newKey()
	der, err := x509CreateCSR(key, "legacy", []net.IP{net.IPv4(10, 1, 2, 3), net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Submit(context.Background(), Request{CSR: der, Source: "10.1.2.3:999"}, "*")
	if err != nil || res.Status != StatusSigned {
		t.Fatalf("Submit = %+v, %v", res, err)
	}
	cert, _ := identity.ParseCertificatePEM(res.CertPEM)
	// Autosigned: only the address the request came from is granted.
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(10, 1, 2, 3)) ||
		!equalStrings(cert.DNSNames, []string{"legacy"}) {
		t.Errorf("SANs %v %v", cert.DNSNames, cert.IPAddresses)
	}
	ms, _ := a.Minions()
	if len(ms) != 1 || ms[0].Addr != "10.1.2.3:51234" {
		t.Errorf("minions %+v", ms)
	}
	bad, _ := x509CreateCSR(key, "legacy2", []net.IP{net.IPv4zero})
	if _, err := a.Submit(context.Background(), Request{CSR: bad}, "*"); err == nil {
		t.Error("unspecified address accepted")
	}
}
