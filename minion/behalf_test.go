package minion_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
)

// A delegate (the dashboard) names the person it calls for; the minion
// accepts the claim only from a delegate, records it with the call,
// bounds the call by the delegate's grants and applies deny rules to
// the person too.
func TestOnBehalfOf(t *testing.T) {
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleOverlord, Methods: []string{"*"}},
		minion.Rule{Identity: "funcweb", Role: gofunc.RoleDelegate, Methods: []string{"test.*"}},
		minion.Rule{Identity: "intern", Role: minion.AnyRole, Methods: []string{"test.add"}, Deny: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{Minions: 1, ACL: acl, Subnet: "127.0.31"})
	m := f.Minions()[0]
	self, err := f.CA.Issue(gofunc.RoleDelegate, "funcweb", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	trail := &audit.Shared{Path: filepath.Join(dir, "audit.log")}
	store := sqlitejobs.New(filepath.Join(dir, "jobs.db"))
	defer store.Close()
	dash := overlord.New(overlord.WithIdentity(self), overlord.WithMinions(overlord.Static{{Name: m.Name, Addr: m.Addr}}),
		overlord.WithAudit(trail), overlord.WithJobStore(store), overlord.WithHostTimeout(20*time.Second))
	defer dash.Close()
	ctx := t.Context()
	call := func(c *overlord.Client, who, method string, args ...any) error {
		_, err := c.Targets("*").OnBehalfOf(who).Call(ctx, "test", method, args...)
		return err
	}

	if err := call(dash, "alice@operator", "ping"); err != nil {
		t.Fatalf("the delegate for alice: %v", err)
	}
	if err := call(dash, "intern@operator", "ping"); err != nil {
		t.Errorf("the delegate for intern, a method no rule denies intern: %v", err)
	}
	for _, tc := range []struct {
		c           *overlord.Client
		who, method string
		why         string
	}{
		{dash, "intern@operator", "add", "a deny rule names the person"},
		{dash, "alice@operator", "bogus", "no grant of the delegate: test.* has no bogus, and the call is denied"},
		{dash, "alice", "ping", "no role"},
		{dash, "alice@overlord", "ping", "not a person's role"},
		{dash, "../x@viewer", "ping", "not a name"},
		{f.Overlord(), "alice@operator", "ping", "an overlord may not claim to call for someone"},
	} {
		err := call(tc.c, tc.who, tc.method, 1, 2)
		if tc.method == "bogus" {
			if !errors.Is(err, gofunc.ErrNoSuchMethod) && !errors.Is(err, gofunc.ErrDenied) {
				t.Errorf("%s (%s): %v", tc.who, tc.why, err)
			}
			continue
		}
		if !errors.Is(err, gofunc.ErrDenied) {
			t.Errorf("%s calling test.%s (%s): %v, want denied", tc.who, tc.method, tc.why, err)
		}
	}
	if _, err := dash.Targets("*").Call(ctx, "command", "run", []string{"true"}); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("the delegate beyond its grants: %v, want denied", err)
	}

	// An async job keeps the person: the store, the calls, both logs.
	job, err := dash.Targets("*").OnBehalfOf("bob@admin").CallAsync(ctx, "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	if job, err = dash.WaitJob(ctx, job.ID); err != nil || job.Err() != nil || job.OnBehalfOf != "bob@admin" {
		t.Fatalf("job %+v: %v", job, err)
	}

	persons := map[string]map[string]int{} // kind -> on_behalf_of -> count
	count := func(path string) {
		err := audit.Query([]string{path}, audit.Filter{}, func(r audit.Record) error {
			if persons[r.Kind] == nil {
				persons[r.Kind] = map[string]int{}
			}
			persons[r.Kind][r.Details["on_behalf_of"]]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	count(m.AuditPath)
	count(trail.Path)
	for _, want := range []struct {
		kind, who string
	}{
		{audit.KindCallStart, "alice@operator"}, {audit.KindCallEnd, "alice@operator"},
		{audit.KindCallStart, "bob@admin"}, {audit.KindCallDenied, "intern@operator"},
		{audit.KindCallDenied, "alice@operator"}, // the overlord's claim, refused
		{audit.KindOverlordCall, "alice@operator"}, {audit.KindOverlordCall, "bob@admin"},
	} {
		if persons[want.kind][want.who] == 0 {
			t.Errorf("no %s record on behalf of %s: %v", want.kind, want.who, persons)
		}
	}
}
