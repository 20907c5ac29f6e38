package ca

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Issue 11 item 4: with autosign "*" and an overlord named alice, a
// minion enrolling as "ALICE" is refused, over the real service, and
// the refusal is audited; revoking "alice" by name then touches the
// overlord alone.
func TestEnrollUnderAnOverlordsNameRefused(t *testing.T) {
	ts := startService(t, withAutosign("*"))
	alice := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	for _, name := range []string{"ALICE", "alice", "Alice"} {
		_, err := identity.Enroll(testCtx(t), ts.enrollReq(t, name))
		if !errors.Is(err, ErrNameTaken) || !errors.Is(err, gofunc.ErrConflict) {
			t.Errorf("Enroll(%s) = %v, want the name refused as an overlord's (conflict)", name, err)
		}
	}
	if reqs, _ := ts.Authority.Requests(); len(reqs) != 0 {
		t.Errorf("refused requests were stored: %+v", reqs)
	}
	denied := 0
	for _, r := range ts.auditRecords(t) {
		if r.Kind == KindRequest && r.Outcome == "denied" && r.Caller == "alice" {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d audited refusals for alice, want 3", denied)
	}
	// And the other way round: an overlord cannot take a minion's name.
	if _, err := identity.Enroll(testCtx(t), ts.enrollReq(t, "web1")); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Authority.Issue(gofunc.RoleOverlord, "WEB1", IssueOptions{}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("overlord WEB1 beside minion web1: %v, want ErrNameTaken", err)
	}
	revoked, err := ts.Authority.Revoke("alice", ReasonKeyCompromise)
	if err != nil || len(revoked) != 1 || revoked[0].Role != gofunc.RoleOverlord || revoked[0].Serial != serialHex(alice.Leaf().SerialNumber) {
		t.Errorf("Revoke(alice) = %+v, %v; want the overlord's certificate alone", revoked, err)
	}
}

// A pending minion request holds its name: the admin cannot then issue
// the name to an overlord (clean the request first).
func TestIssueRefusesNameOfPendingRequest(t *testing.T) {
	a := newTestCA(t)
	key, _ := newKey()
	csr, _ := makeCSR(key, "bob")
	if res, err := a.Submit(context.Background(), Request{CSR: csr, Source: "192.0.2.1:1"}, ""); err != nil || res.Status != StatusPending {
		t.Fatal(res, err)
	}
	if _, err := a.Issue(gofunc.RoleOverlord, "bob", IssueOptions{}); !errors.Is(err, ErrNameTaken) {
		t.Errorf("Issue(overlord bob) with bob's minion request pending: %v, want ErrNameTaken", err)
	}
	if _, err := a.Clean("bob"); err != nil {
		t.Fatal(err)
	}
	issue(t, a, gofunc.RoleOverlord, "bob", IssueOptions{})
}

// A name that holds certificates of two roles (issued before the rule)
// is revoked by name only with its role.
func TestRevokeAmbiguousNameNeedsRole(t *testing.T) {
	a := newTestCA(t)
	m := issue(t, a, gofunc.RoleMinion, "dual", IssueOptions{})
	// Forge the legacy state: an overlord certificate of the same name,
	// recorded as the first version recorded it.
	o := issue(t, a, gofunc.RoleOverlord, "dual-o", IssueOptions{})
	if err := a.update(context.Background(), func(tx *txn) error {
		rec := *tx.ix.find(serialHex(o.Leaf().SerialNumber))
		rec.Serial, rec.Name = "0badc0de", "dual"
		return tx.record(entry{Op: opCert, Cert: &rec, DER: o.Leaf().Raw})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke("dual", ReasonUnspecified); !errors.Is(err, ErrAmbiguousName) {
		t.Errorf("Revoke(dual) = %v, want ErrAmbiguousName", err)
	}
	out, err := a.RevokeRole("dual", gofunc.RoleMinion, ReasonUnspecified)
	if err != nil || len(out) != 1 || out[0].Serial != serialHex(m.Leaf().SerialNumber) {
		t.Errorf("RevokeRole(dual, minion) = %+v, %v", out, err)
	}
}

// clockCA is a CA whose clock the test moves.
func clockCA(t *testing.T, cfg Config) (*Authority, *atomic.Int64) {
	t.Helper()
	var offset atomic.Int64
	cfg.Dir = t.TempDir()
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	a, err := Init(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, &offset
}

func renewWithNewKey(a *Authority, holder *identity.Identity) (string, error) {
	key, err := newKey()
	if err != nil {
		return "", err
	}
	csr, err := makeCSR(key, holder.Name())
	if err != nil {
		return "", err
	}
	pemData, err := a.Renew(context.Background(), holder.Leaf(), csr, "192.0.2.1:1")
	if err != nil {
		return "", err
	}
	c, err := identity.ParseCertificatePEM(pemData)
	if err != nil {
		return "", err
	}
	return serialHex(c.SerialNumber), nil
}

func validCount(t *testing.T, a *Authority, name string) int {
	t.Helper()
	certs, err := a.Signed()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range certs {
		if c.Name == name && !c.Revoked && !c.Expired(time.Now()) {
			n++
		}
	}
	return n
}

// Issue 11 item 7: the reproduction (50 renewals, revoke the first, 50
// valid certificates left) now gives one renewal, refused before it is
// due and refused a second time, and revoking the first certificate
// revokes its renewal too.
func TestRenewalLimitsAndLineage(t *testing.T) {
	a, offset := clockCA(t, Config{Validity: 3 * time.Hour})
	m1 := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	first := serialHex(m1.Leaf().SerialNumber)
	if _, err := renewWithNewKey(a, m1); !errors.Is(err, ErrNotDue) {
		t.Fatalf("renewal right after issue: %v, want ErrNotDue", err)
	}
	offset.Store(int64(2*time.Hour + time.Minute))
	child, err := renewWithNewKey(a, m1)
	if err != nil {
		t.Fatalf("due renewal: %v", err)
	}
	renewed := 1
	for range 49 {
		if _, err := renewWithNewKey(a, m1); err == nil {
			renewed++
		} else if !errors.Is(err, ErrAlreadyRenewed) {
			t.Fatalf("second renewal of the same certificate: %v, want ErrAlreadyRenewed", err)
		}
	}
	if renewed != 1 || validCount(t, a, "m1") != 2 {
		t.Fatalf("%d renewals, %d valid certificates; want 1 and 2 (parent and child)", renewed, validCount(t, a, "m1"))
	}
	out, err := a.Revoke(first, ReasonKeyCompromise)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[1].Serial != child {
		t.Errorf("revoking %s revoked %+v, want it and its renewal %s", first, out, child)
	}
	if n := validCount(t, a, "m1"); n != 0 {
		t.Errorf("%d valid certificates for m1 after revoking the first, want 0", n)
	}
	der, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if rl, _ := parseCRL(der); len(rl.RevokedCertificateEntries) != 2 {
		t.Errorf("CRL lists %d, want both", len(rl.RevokedCertificateEntries))
	}
}

// The admin's forced re-key: an early renewal is accepted once, and it
// supersedes every other valid certificate of the name.
func TestRekeySupersedes(t *testing.T) {
	a, _ := clockCA(t, Config{})
	m1 := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	if err := a.AllowRekey("m1", "", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := a.AllowRekey("nobody", "", time.Hour); !errors.Is(err, ErrNotFound) {
		t.Errorf("AllowRekey(nobody) = %v, want ErrNotFound", err)
	}
	child, err := renewWithNewKey(a, m1)
	if err != nil {
		t.Fatalf("re-key: %v", err)
	}
	certs, _ := a.Signed()
	for _, c := range certs {
		switch c.Serial {
		case serialHex(m1.Leaf().SerialNumber):
			if !c.Revoked || c.Reason != ReasonSuperseded {
				t.Errorf("parent after re-key: revoked=%v reason=%v, want superseded", c.Revoked, c.Reason)
			}
		case child:
			if c.Revoked {
				t.Error("the re-keyed certificate is revoked")
			}
		}
	}
	// The grant is used up.
	holder, err := identity.ParseCertificatePEM(mustPEM(t, a, child))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := newKey()
	csr, _ := makeCSR(key, "m1")
	if _, err := a.Renew(context.Background(), holder, csr, "192.0.2.1:1"); !errors.Is(err, ErrNotDue) {
		t.Errorf("second early renewal: %v, want ErrNotDue", err)
	}
}

func mustPEM(t *testing.T, a *Authority, serial string) []byte {
	t.Helper()
	b, err := a.CertificatePEMBySerial(serial)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A name holds at most Config.MaxLive valid certificates: a renewal
// over the cap is refused.
func TestMaxLiveCertificates(t *testing.T) {
	a, offset := clockCA(t, Config{MaxLive: 2, Validity: 3 * time.Hour})
	m := issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})
	issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})
	offset.Store(int64(2*time.Hour + time.Minute))
	if _, err := renewWithNewKey(a, m); !errors.Is(err, ErrTooManyCertificates) {
		t.Errorf("renewal with 2 valid certificates and MaxLive 2: %v, want ErrTooManyCertificates", err)
	}
	if got := fmt.Sprint(validCount(t, a, "alice")); got != "2" {
		t.Errorf("valid certificates: %s, want 2", got)
	}
}
