package ca

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/syncbuf"
)

// Issue 11 item 13: a CRL past its NextUpdate that cannot be refreshed
// stays in force, but its age is exposed (Identity.CRLStatus) and every
// failed refresh says so loudly.
func TestStaleCRLIsReported(t *testing.T) {
	a, err := Init(Config{Dir: t.TempDir(), CRLValidity: time.Hour, Now: func() time.Time { return time.Now().Add(-3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	id := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	if st := id.CRLStatus(); st.Installed {
		t.Errorf("CRLStatus before any CRL = %+v", st)
	}
	der, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.SetCRL(der); err != nil {
		t.Fatal(err)
	}
	st := id.CRLStatus()
	if !st.Installed || !st.Stale || st.Age < 3*time.Hour || st.NextUpdate.After(time.Now()) {
		t.Fatalf("CRLStatus of a CRL past its next update = %+v", st)
	}
	var logs syncbuf.Buffer
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
	defer cancel()
	r := &identity.Refresher{Identity: id, Certmaster: "127.0.0.1:1", CRLInterval: 10 * time.Millisecond, Logger: hclogTo(&logs)}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(logs.String(), "crl is stale") && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	r.Stop()
	if out := logs.String(); !strings.Contains(out, "[ERROR]") || !strings.Contains(out, "NOT enforced") || !strings.Contains(out, "age=") {
		t.Errorf("failed refresh of a stale CRL logged:\n%s", out)
	}
}
