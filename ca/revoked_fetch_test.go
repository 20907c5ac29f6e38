package ca

import (
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// A revoked overlord still learns from the certmaster that it is
// revoked: the certmaster refuses its certificate at the handshake, and
// FetchCRL asks again without one.
func TestRevokedHolderFetchesTheCRL(t *testing.T) {
	ts := startService(t)
	alice := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	if err := identity.FetchCRL(testCtx(t), alice, ts.addr); err != nil {
		t.Fatal(err)
	}
	before := alice.CRLNumber()
	if _, err := ts.Authority.Revoke("alice", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if _, err := identity.FetchMinions(testCtx(t), alice, ts.addr); err == nil {
		t.Fatal("the certmaster served a revoked overlord")
	}
	if err := identity.FetchCRL(testCtx(t), alice, ts.addr); err != nil {
		t.Fatalf("FetchCRL as a revoked overlord: %v", err)
	}
	if alice.CRLNumber() <= before || !alice.Revoked(alice.Leaf()) {
		t.Errorf("CRL number %d (was %d), revoked %v: the overlord does not know it is revoked",
			alice.CRLNumber(), before, alice.Revoked(alice.Leaf()))
	}
}
