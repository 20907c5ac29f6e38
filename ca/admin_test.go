package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

// pendingRequest submits a request for name with a new key and returns
// its key fingerprint as the admin is shown it.
func pendingRequest(t *testing.T, a *Authority, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := makeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	res, err := a.Submit(context.Background(), Request{CSR: csr, Name: name, Source: "192.0.2.7:4000"}, "")
	if err != nil || res.Status != StatusPending {
		t.Fatalf("Submit(%s) = %+v, %v; want pending", name, res, err)
	}
	pending, err := a.Pending()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		if p.Name == name {
			return p.KeyFingerprint
		}
	}
	t.Fatalf("%s not pending", name)
	return ""
}

// The admin actions a dashboard takes for a person act only on what the
// person confirmed (the key fingerprint, the serial) and name the person
// in the audit log.
func TestAdminActionsForAPerson(t *testing.T) {
	dir := t.TempDir()
	trail, err := audit.Open(filepath.Join(dir, "audit.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	a, err := Init(Config{Dir: filepath.Join(dir, "ca"), Audit: trail})
	if err != nil {
		t.Fatal(err)
	}
	alice := Actor{Name: "alice", Role: gofunc.RoleAdmin, Serial: "abc", Via: "funcweb"}

	fp := pendingRequest(t, a, "web1.example.org")
	if _, err := a.SignRequest("web1.example.org", "sha256:"+fp[len(fp)-8:], alice); !errors.Is(err, ErrChanged) {
		t.Fatalf("SignRequest with another fingerprint: %v, want ErrChanged", err)
	}
	if p, _ := a.Pending(); len(p) != 1 {
		t.Fatalf("a refused sign changed the pending list: %+v", p)
	}
	if _, err := a.SignRequest("web1.example.org", "", alice); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("SignRequest without a fingerprint: %v, want a bad-arguments fault", err)
	}
	if _, err := a.SignRequest("nobody.example.org", fp, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("SignRequest of no request: %v, want ErrNotFound", err)
	}
	cert, err := a.SignRequest("WEB1.example.org", fp, alice)
	if err != nil {
		t.Fatalf("SignRequest: %v", err)
	}
	if cert.Name != "web1.example.org" || cert.KeyFingerprint != fp || cert.Role != gofunc.RoleMinion {
		t.Errorf("signed %+v, want web1's minion certificate with key %s", cert, fp)
	}

	fp2 := pendingRequest(t, a, "web2.example.org")
	if _, err := a.RejectRequest("web2.example.org", "sha256:00", alice); !errors.Is(err, ErrChanged) {
		t.Errorf("RejectRequest with another fingerprint: %v, want ErrChanged", err)
	}
	if info, err := a.RejectRequest("web2.example.org", fp2, alice); err != nil || info.Status != StatusRejected {
		t.Fatalf("RejectRequest = %+v, %v", info, err)
	}

	// A certificate named like web1's serial must not be revoked with it.
	decoy := issue(t, a, gofunc.RoleOverlord, cert.Serial, IssueOptions{})
	if _, err := a.RevokeCertificate("ffff", ReasonKeyCompromise, alice); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeCertificate of an unknown serial: %v, want ErrNotFound", err)
	}
	revoked, err := a.RevokeCertificate(cert.Serial, ReasonKeyCompromise, alice)
	if err != nil || len(revoked) != 1 || revoked[0].Serial != cert.Serial {
		t.Fatalf("RevokeCertificate = %+v, %v; want web1's certificate alone", revoked, err)
	}
	signed, _ := a.Signed()
	for _, c := range signed {
		if c.Name == decoy.Name() && c.Revoked {
			t.Errorf("the certificate named %s was revoked with serial %s", c.Name, cert.Serial)
		}
	}

	want := map[string]bool{KindRequest: false, KindReject: false, KindRevoke: false}
	err = audit.Query([]string{filepath.Join(dir, "audit.log")}, audit.Filter{}, func(r audit.Record) error {
		if _, ok := want[r.Kind]; ok && r.Details["by"] == "alice@admin" && r.Details["by_via"] == "funcweb" &&
			r.Details["by_serial"] == "abc" {
			want[r.Kind] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for kind, seen := range want {
		if !seen {
			t.Errorf("no %s record naming alice@admin via funcweb", kind)
		}
	}
}
