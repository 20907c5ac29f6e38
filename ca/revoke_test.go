package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// minionServer serves HTTPS with id.ServerTLSConfig and, like the minion,
// checks the caller against the CRL on every request (connections made
// before a revocation included). It answers with the caller's name.
func minionServer(t *testing.T, id *identity.Identity) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, err := identity.PeerFromConnState(*r.TLS)
			if err != nil || id.Revoked(r.TLS.PeerCertificates[0]) {
				http.Error(w, "denied", http.StatusForbidden)
				return
			}
			fmt.Fprint(w, p.Name)
		}),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(tls.NewListener(ln, id.ServerTLSConfig()))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// getOnce makes one GET and says whether it reused a connection.
func getOnce(ctx context.Context, c *http.Client, url string) (status int, reused bool, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return 0, reused, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, reused, nil
}

func TestRevokedOverlordRefusedWithinCRLInterval(t *testing.T) {
	ts := startService(t, withAutosign("*"))
	req := ts.enrollReq(t, "m1")
	req.Addr = "127.0.0.1:51234"
	minion, err := identity.Enroll(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	overlord := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	addr := minionServer(t, minion)

	const interval = 50 * time.Millisecond
	r := &identity.Refresher{Identity: minion, Certmaster: ts.addr, CRLInterval: interval}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()

	tr := &http.Transport{TLSClientConfig: overlord.ClientTLSConfig("m1")}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "https://" + addr + "/"
	if st, _, err := getOnce(testCtx(t), client, url); err != nil || st != http.StatusOK {
		t.Fatalf("call before revocation: %d %v", st, err)
	}

	if _, err := ts.Authority.Revoke("alice", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := start.Add(10 * time.Second) // generous for a loaded machine; the bound is the interval
	for {
		st, reused, err := getOnce(testCtx(t), client, url)
		if err == nil && st == http.StatusForbidden {
			if !reused {
				t.Error("the refusal was on a new connection; want the established one cut off per request")
			}
			t.Logf("revoked overlord refused %v after revocation (CRL interval %v)", time.Since(start), interval)
			break
		}
		if err != nil {
			t.Fatalf("call on the established connection failed instead of being refused: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("revoked overlord still served")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A new connection is refused at the handshake.
	tr2 := &http.Transport{TLSClientConfig: overlord.ClientTLSConfig("m1")}
	defer tr2.CloseIdleConnections()
	if _, _, err := getOnce(testCtx(t), &http.Client{Transport: tr2}, url); err == nil {
		t.Error("new connection from a revoked overlord succeeded")
	}
}

// The client side checks the CRL too: an overlord refuses a revoked
// minion.
func TestClientRefusesRevokedServer(t *testing.T) {
	ts := startService(t, withAutosign("*"))
	minion, err := identity.Enroll(testCtx(t), ts.enrollReq(t, "m1"))
	if err != nil {
		t.Fatal(err)
	}
	overlord := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	if _, err := tlsPair(t, minion.ServerTLSConfig(), overlord.ClientTLSConfig("m1")); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if _, err := ts.Authority.Revoke(serialHex(minion.Leaf().SerialNumber), ReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	if err := identity.FetchCRL(testCtx(t), overlord, ts.addr); err != nil {
		t.Fatal(err)
	}
	_, err = tlsPair(t, minion.ServerTLSConfig(), overlord.ClientTLSConfig("m1"))
	if !errors.Is(err, identity.ErrRevoked) {
		t.Errorf("handshake with a revoked minion: %v, want identity.ErrRevoked", err)
	}
}

func TestRevokeAndCRL(t *testing.T) {
	a := newTestCA(t)
	m1 := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	m2 := issue(t, a, gofunc.RoleMinion, "m2", IssueOptions{})
	id := issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})
	der1, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.SetCRL(der1); err != nil {
		t.Fatal(err)
	}
	n1 := id.CRLNumber()
	if _, err := a.Revoke("nobody", ReasonUnspecified); !errors.Is(err, ErrNotFound) {
		t.Errorf("Revoke(unknown) = %v, want ErrNotFound", err)
	}
	serial := serialHex(m1.Leaf().SerialNumber)
	got, err := a.Revoke("0X"+serial[:2]+":"+serial[2:], ReasonKeyCompromise)
	if err != nil || len(got) != 1 || got[0].Name != "m1" || got[0].Reason != ReasonKeyCompromise {
		t.Fatalf("Revoke by serial = %+v, %v", got, err)
	}
	if _, err := a.Revoke(serial, ReasonKeyCompromise); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking twice = %v, want ErrNotFound", err)
	}
	der2, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.SetCRL(der2); err != nil {
		t.Fatal(err)
	}
	if id.CRLNumber() <= n1 {
		t.Errorf("CRL number %d not above %d", id.CRLNumber(), n1)
	}
	if !id.Revoked(m1.Leaf()) || id.Revoked(m2.Leaf()) {
		t.Error("Revoked() wrong")
	}
	rl, _ := parseCRL(der2)
	if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].ReasonCode != int(ReasonKeyCompromise) ||
		time.Until(rl.NextUpdate) < 24*time.Hour {
		t.Errorf("CRL entries %+v, next update %v", rl.RevokedCertificateEntries, rl.NextUpdate)
	}
	// An old CRL cannot roll back a revocation.
	if err := id.SetCRL(der1); !errors.Is(err, identity.ErrCRLRollback) {
		t.Errorf("SetCRL(old) = %v, want identity.ErrCRLRollback", err)
	}
	// A CRL from another CA is refused.
	other := newTestCA(t)
	derOther, _ := other.CRL()
	if err := id.SetCRL(derOther); !errors.Is(err, identity.ErrNotIssuedByCA) {
		t.Errorf("SetCRL(foreign) = %v, want identity.ErrNotIssuedByCA", err)
	}
	if err := id.SetCRL([]byte("junk")); !errors.Is(err, identity.ErrBadPEM) {
		t.Errorf("SetCRL(junk) = %v, want identity.ErrBadPEM", err)
	}
	// Signed lists the revocation.
	signed, _ := a.Signed()
	for _, c := range signed {
		if (c.Serial == serial) != c.Revoked {
			t.Errorf("Signed: %s revoked=%v", c.Name, c.Revoked)
		}
	}
	for _, s := range []string{"keyCompromise", "key-compromise", "KEY_COMPROMISE", "1"} {
		if r, err := ParseReason(s); err != nil || r != ReasonKeyCompromise {
			t.Errorf("ParseReason(%q) = %v, %v", s, r, err)
		}
	}
	if _, err := ParseReason("certificateHold"); !errors.Is(err, ErrBadReason) {
		t.Errorf("ParseReason(certificateHold) = %v", err)
	}
}

func TestRenewal(t *testing.T) {
	var offset atomic.Int64 // the CA's clock runs this far behind
	offset.Store(int64(2 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }
	ts := startService(t, withAutosign("*"), withClock(clock), func(_ *Service, c *Config) { c.Validity = 3 * time.Hour })
	req := ts.enrollReq(t, "m1")
	req.Addr = "127.0.0.1:7000"
	id, err := identity.Enroll(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	old := id.Leaf()
	overlord := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{Validity: 24 * time.Hour})
	addr := minionServer(t, id)
	tr := &http.Transport{TLSClientConfig: overlord.ClientTLSConfig("m1")}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := "https://" + addr + "/"
	if st, _, err := getOnce(testCtx(t), client, url); err != nil || st != 200 {
		t.Fatalf("before renewal: %d %v", st, err)
	}

	offset.Store(0)
	renewed, err := id.RenewIfDue(testCtx(t), ts.addr)
	if err != nil || !renewed {
		t.Fatalf("RenewIfDue = %v, %v; want a renewal", renewed, err)
	}
	leaf := id.Leaf()
	if leaf.Equal(old) || leaf.Subject.CommonName != "m1" || identity.RoleOf(leaf) != gofunc.RoleMinion ||
		old.PublicKey.(*ecdsa.PublicKey).Equal(leaf.PublicKey) {
		t.Fatal("renewal did not give a new certificate for a new key, same name and role")
	}
	if len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("renewed SANs %v", leaf.IPAddresses)
	}
	// The established connection keeps working; a new one sees the new
	// certificate, with no restart of the server.
	if st, reused, err := getOnce(testCtx(t), client, url); err != nil || st != 200 || !reused {
		t.Errorf("established connection after renewal: %d reused=%v %v", st, reused, err)
	}
	cs, err := tlsDialState(addr, overlord.ClientTLSConfig("m1"))
	if err != nil {
		t.Fatal(err)
	}
	if !cs.PeerCertificates[0].Equal(leaf) {
		t.Error("new connection did not get the renewed certificate")
	}
	// Saved on disk.
	disk, err := identity.Load(req.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !disk.Leaf().Equal(leaf) {
		t.Error("renewal not saved")
	}
	if again, err := id.RenewIfDue(testCtx(t), ts.addr); err != nil || again {
		t.Errorf("second RenewIfDue = %v, %v; want nothing to do", again, err)
	}
	if n := countKind(ts.auditRecords(t), KindRenew); n != 1 {
		t.Errorf("%d ca.renew records", n)
	}
	ms, _ := ts.Authority.Minions()
	if len(ms) != 1 || ms[0].Serial != serialHex(leaf.SerialNumber) || ms[0].Addr != "127.0.0.1:7000" {
		t.Errorf("minions after renewal %+v", ms)
	}
	// A revoked certificate cannot renew.
	if _, err := ts.Authority.Revoke(serialHex(leaf.SerialNumber), ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := id.Renew(testCtx(t), ts.addr); err == nil {
		t.Error("revoked certificate renewed")
	}
}

func tlsDialState(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

func TestRefresherRenews(t *testing.T) {
	var offset atomic.Int64
	offset.Store(int64(2 * time.Hour))
	clock := func() time.Time { return time.Now().Add(-time.Duration(offset.Load())) }
	ts := startService(t, withAutosign("*"), withClock(clock), func(_ *Service, c *Config) { c.Validity = 3 * time.Hour })
	id, err := identity.Enroll(testCtx(t), ts.enrollReq(t, "m1"))
	if err != nil {
		t.Fatal(err)
	}
	old := id.Leaf()
	offset.Store(0)
	r := &identity.Refresher{Identity: id, Certmaster: ts.addr, Renew: true}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for id.Leaf().Equal(old) {
		if time.Now().After(deadline) {
			t.Fatal("the refresher did not renew a due certificate")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
