package identity_test

import (
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A Refresher renews a certificate that is due, saves it in the
// identity's directory, installs newer CRLs and calls OnCRL; Stop ends
// it (goleak checks nothing is left running).
func TestRefresherRenewsAndFetches(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(root, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: a}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ln) }()
	defer func() {
		svc.Close()
		<-served
	}()
	// A one-minute certificate is past two thirds of its life at once
	// (NotBefore is backdated for clock skew).
	id, err := a.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{Validity: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "m1")
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	first := id.Leaf().SerialNumber
	// Not faster: every CRL fetch is a new connection from this address,
	// and a certmaster slowed by a loaded machine refuses a source over
	// its connection cap; a renewal refused so waits a minute to retry.
	crls := make(chan struct{}, 16)
	r := &identity.Refresher{Identity: id, Certmaster: ln.Addr().String(), CRLInterval: 500 * time.Millisecond,
		Renew: true, OnCRL: func() { crls <- struct{}{} }}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	defer r.Stop()
	<-r.Ready()
	<-crls // the first CRL: newer than none
	eventually(t, "the renewed certificate, saved", func() bool {
		saved, err := identity.Load(dir)
		return err == nil && id.Leaf().SerialNumber.Cmp(first) != 0 &&
			saved.Leaf().SerialNumber.Cmp(id.Leaf().SerialNumber) == 0
	})
	other, err := a.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the CRL listing eve", func() bool { return id.Revoked(other.Leaf()) })
	r.Stop()
	r.Stop() // idempotent
}

// A Refresher needs an identity and a certmaster; one stopped before it
// started is ready (nobody waits forever) and stays stopped.
func TestRefresherMisuse(t *testing.T) {
	t.Parallel()
	if err := (&identity.Refresher{}).Start(); !errors.Is(err, identity.ErrNoCertmaster) {
		t.Errorf("Start with nothing = %v, want ErrNoCertmaster", err)
	}
	r := &identity.Refresher{}
	r.Stop()
	select {
	case <-r.Ready():
	default:
		t.Error("a stopped refresher is not ready")
	}
}

// eventually polls cond until it holds, failing the test after 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
