package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
)

// sanOK reports whether leaf verifies for host against a's CA.
func sanOK(a *Authority, leaf *x509.Certificate, host string) bool {
	roots := x509.NewCertPool()
	roots.AddCert(a.cert)
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}

// The reviewer's finding: minion "evil" enrolled with addr "m2:41234" got
// the DNS SAN m2 and answered an overlord that dialled m2.
func TestRequestedAddrNeverNamesAnotherMinion(t *testing.T) {
	ts := startService(t, withAutosign("*"))
	m2req := ts.enrollReq(t, "m2")
	m2req.Addr = "127.0.0.1:7002"
	if _, err := identity.Enroll(testCtx(t), m2req); err != nil {
		t.Fatal(err)
	}

	evilReq := ts.enrollReq(t, "evil")
	evilReq.Addr = "m2:41234"
	evil, err := identity.Enroll(testCtx(t), evilReq)
	if err != nil {
		t.Fatal(err)
	}
	leaf := evil.Leaf()
	if !slices.Equal(leaf.DNSNames, []string{"evil"}) || len(leaf.IPAddresses) != 0 {
		t.Errorf("evil's SANs = %v %v, want [evil] and no IPs", leaf.DNSNames, leaf.IPAddresses)
	}
	if sanOK(ts.Authority, leaf, "m2") {
		t.Error("evil's certificate verifies for m2")
	}
	// The address is still recorded, for list_minions.
	ms, err := ts.Authority.Minions()
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(ms, func(m identity.MinionInfo) bool { return m.Name == "evil" }); i < 0 || ms[i].Addr != "m2:41234" {
		t.Errorf("minions = %+v, want evil at m2:41234", ms)
	}

	// End to end: an overlord that dials m2 and reaches evil refuses it.
	ov := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	addr := minionServer(t, evil)
	if _, err := tlsDialState(addr, ov.ClientTLSConfig("m2")); err == nil {
		t.Error("overlord dialling m2 accepted evil's certificate")
	}
	if _, err := tlsDialState(addr, ov.ClientTLSConfig("evil")); err != nil {
		t.Errorf("overlord dialling evil: %v", err)
	}
}

func TestRequestedIPGrantedOnlyFromItsSource(t *testing.T) {
	ts := startService(t, withAutosign("*"))
	ov := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})

	// Enroll asks from the address it will listen on, so asking for
	// it is granted...
	own := ts.enrollReq(t, "own")
	own.Addr = "127.0.0.9:7001"
	id, err := identity.Enroll(testCtx(t), own)
	if err != nil {
		t.Fatal(err)
	}
	if ips := id.Leaf().IPAddresses; len(ips) != 1 || !ips[0].Equal(net.IPv4(127, 0, 0, 9)) {
		t.Errorf("own IP SANs = %v, want [127.0.0.9]", ips)
	}
	// ...asking for an address this host lacks (so the request comes
	// from 127.0.0.1) is recorded but not granted.
	other := ts.enrollReq(t, "other")
	other.Addr = "192.0.2.77:7001"
	id, err = identity.Enroll(testCtx(t), other)
	if err != nil {
		t.Fatal(err)
	}
	if ips := id.Leaf().IPAddresses; len(ips) != 0 {
		t.Errorf("other's IP SANs = %v, want none", ips)
	}
	if _, err := tlsDialState(minionServer(t, id), ov.ClientTLSConfig("192.0.2.77")); err == nil {
		t.Error("a certificate for 192.0.2.77 was granted to a request from 127.0.0.1")
	}
	recs := ts.auditRecords(t)
	if !slices.ContainsFunc(recs, func(r audit.Record) bool { return r.Details["ips_not_granted"] == "192.0.2.77" }) {
		t.Error("the refused IP SAN is not in the audit log")
	}
}

func TestAdminSignGrantsRequestedIPs(t *testing.T) {
	a := newTestCA(t)
	key, _ := newKey()
	csr, err := makeCSR(key, "m5")
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Submit(context.Background(), Request{CSR: csr, Name: "m5", Addr: "10.9.9.8:51234", Source: "192.0.2.1:4000"}, "")
	if err != nil || res.Status != StatusPending {
		t.Fatalf("Submit = %+v, %v", res, err)
	}
	pend, _ := a.Pending()
	if len(pend) != 1 || !slices.Equal(pend[0].IPs, []string{"10.9.9.8"}) {
		t.Fatalf("pending = %+v, want the requested IP shown to the admin", pend)
	}
	if _, err := a.Sign("m5"); err != nil {
		t.Fatal(err)
	}
	res, err = a.Submit(context.Background(), Request{CSR: csr, Name: "m5", Addr: "10.9.9.8:51234", Source: "192.0.2.1:4000"}, "")
	if err != nil || res.Status != StatusSigned {
		t.Fatalf("Submit after Sign = %+v, %v", res, err)
	}
	cert, _ := identity.ParseCertificatePEM(res.CertPEM)
	if !slices.Equal(cert.DNSNames, []string{"m5"}) || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.9.9.8")) {
		t.Errorf("SANs = %v %v, want [m5] [10.9.9.8]", cert.DNSNames, cert.IPAddresses)
	}
}

// A legacy wait_for_cert CSR's DNS SANs are never copied.
func TestLegacyCSRDNSNamesIgnored(t *testing.T) {
	a := newTestCA(t)
	issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{})
	key, _ := newKey()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "sneaky"}, DNSNames: []string{"m2", "sneaky"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Submit(context.Background(), Request{CSR: encodePEM(pemCSR, der), Source: "127.0.0.1:1"}, "*")
	if err != nil || res.Status != StatusSigned {
		t.Fatalf("Submit = %+v, %v", res, err)
	}
	cert, _ := identity.ParseCertificatePEM(res.CertPEM)
	if !slices.Equal(cert.DNSNames, []string{"sneaky"}) || sanOK(a, cert, "m2") {
		t.Errorf("SANs = %v, want [sneaky] only", cert.DNSNames)
	}
}

// A certificate issued before the fix, carrying another minion's name,
// loses that name at renewal (and keeps its admin-given extra names).
func TestRenewDropsOtherMinionsNames(t *testing.T) {
	a := newTestCA(t)
	issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{})
	old := issue(t, a, gofunc.RoleMinion, "old", IssueOptions{DNSNames: []string{"m2", "old.example"}})
	key, _ := newKey()
	csr, err := makeCSR(key, "old")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AllowRekey("old", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	pemCert, err := a.Renew(context.Background(), old.Leaf(), csr, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := identity.ParseCertificatePEM(pemCert)
	if !slices.Equal(cert.DNSNames, []string{"old", "old.example"}) {
		t.Errorf("renewed SANs = %v, want [old old.example]", cert.DNSNames)
	}
}

// A certificate whose SANs name another host (an admin's extra name, or
// one issued before the fix) still cannot answer for that host: the
// client also wants the CN to be the name it dialled.
func TestClientWantsCNOfDialledName(t *testing.T) {
	a := newTestCA(t)
	m1 := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{DNSNames: []string{"m2"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	ov := issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})
	addr := minionServer(t, m1)

	if _, err := tlsDialState(addr, ov.ClientTLSConfig("m2")); !errors.Is(err, identity.ErrWrongServer) {
		t.Errorf("dial m2 reaching m1: %v, want identity.ErrWrongServer", err)
	}
	for _, name := range []string{"m1", "M1", "m1."} {
		if _, err := tlsDialState(addr, ov.ClientTLSConfig(name)); err != nil {
			t.Errorf("dial %s: %v", name, err)
		}
	}
	if _, err := tlsDialState(addr, ov.ClientTLSConfig("127.0.0.1")); err != nil {
		t.Errorf("dial by IP: %v", err)
	}

	// Through net/http with ServerName "", as the overlord does: the
	// Transport fills in the URL's host per connection.
	_, port, _ := net.SplitHostPort(addr)
	tr := &http.Transport{
		TLSClientConfig: ov.ClientTLSConfig(""),
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	if status, _, err := getOnce(testCtx(t), c, "https://m1:"+port+"/"); err != nil || status != http.StatusOK {
		t.Errorf("GET m1 = %d, %v", status, err)
	}
	if _, _, err := getOnce(testCtx(t), c, "https://m2:"+port+"/"); !errors.Is(err, identity.ErrWrongServer) {
		t.Errorf("GET m2 reaching m1: %v, want identity.ErrWrongServer", err)
	}
}
