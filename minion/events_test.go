package minion_test

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/minion"
)

// startEvents runs a minion with an event journal; configure may adjust
// the server further.
func startEvents(t *testing.T, configure func(*minion.Server)) (*env, *events.Journal) {
	t.Helper()
	j, err := events.Open(filepath.Join(t.TempDir(), "events"), events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	e := start(t, func(s *minion.Server) {
		s.Events = j
		if configure != nil {
			configure(s)
		}
	})
	// Serve writes lifecycle.started on its goroutine: the tests count
	// from there.
	eventually(t, "lifecycle.started", func() bool { return j.Stats().Head > 0 })
	return e, j
}

func journalTypes(t *testing.T, j *events.Journal) []string {
	t.Helper()
	b, err := j.Since(events.Request{Limit: events.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := events.Receive("m1.test", b.Lines)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// The minion reports its own life: started when it serves, ACL
// reloaded, certificate renewed (a new one through SetIdentity),
// stopping when it shuts down.
func TestLifecycleEvents(t *testing.T) {
	e, j := startEvents(t, nil)
	e.srv.SetACL(minion.DefaultACL)
	renewed, err := e.authority.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetIdentity(renewed); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetIdentity(renewed); err != nil { // the same certificate: nothing to say
		t.Fatal(err)
	}
	e.stop()
	want := []string{"lifecycle.started", "lifecycle.acl_reloaded", "lifecycle.cert_renewed", "lifecycle.stopping"}
	if got := journalTypes(t, j); !slices.Equal(got, want) {
		t.Errorf("journal %v, want %v", got, want)
	}
}

// events.since is for overlord and monitor certificates by default;
// an answer with events is audited, empty polls only the first time in
// a minute per caller.
func TestEventsSinceACLAndAudit(t *testing.T) {
	e, j := startEvents(t, nil)
	mon := e.client(gofunc.RoleMonitor, "prom")
	defer mon.CloseIdleConnections()
	v, err := e.callKeep(mon, "events.since", "", 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := v.(map[string]any)
	lines, _ := b["lines"].([]any)
	if len(lines) != 1 || b["head"] != int64(1) {
		t.Fatalf("answer %v", v)
	}
	epoch := b["epoch"].(string)
	for range 3 { // empty: one recorded, two left out
		if _, err := e.callKeep(mon, "events.since", epoch, 1, 10, 0); err != nil {
			t.Fatal(err)
		}
	}
	// A Python-style integer wait, which the minion reads as seconds:
	// this one waits for the event emitted meanwhile.
	go func() {
		time.Sleep(200 * time.Millisecond)
		j.Emit("w", &events.NagiosState{Plugin: "p", State: "CRITICAL", Code: 2})
	}()
	v, err = e.callKeep(mon, "events.since", epoch, 1, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	if lines, _ := v.(map[string]any)["lines"].([]any); len(lines) != 1 {
		t.Fatalf("long-poll answer %v", v)
	}
	for _, role := range []gofunc.Role{gofunc.RoleViewer, gofunc.RoleMinion} {
		_, err := e.call(e.client(role, "x-"+string(role)), "events.since", "", 0)
		wantFault(t, string(role), err, gofunc.CodeDenied)
	}
	var starts, denied int
	for _, r := range e.records() {
		if r.Method != "events.since" {
			continue
		}
		switch r.Kind {
		case "call.start":
			starts++
		case "call.denied":
			denied++
		}
	}
	// First answer, the first empty poll, the long-poll's answer.
	if starts != 3 || denied != 2 {
		t.Errorf("%d start records, %d denials, want 3 and 2", starts, denied)
	}
}

// Long-polls have their own slots: a full set of them leaves calls
// their MaxConcurrent, and one more poll is told the minion is busy.
func TestPollsHaveTheirOwnSlots(t *testing.T) {
	e, j := startEvents(t, func(s *minion.Server) { s.MaxPolls = 1; s.MaxConcurrent = 1 })
	b, err := j.Since(events.Request{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	c2 := e.client(gofunc.RoleOverlord, "admin2")
	defer c2.CloseIdleConnections()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { e.callCtx(ctx, c, nil, "events.since", b.Epoch, int64(b.Head), 10, 25) })
	defer func() { cancel(); wg.Wait() }()
	eventually(t, "the poll waits", func() bool { return e.srv.Stats().InFlight > 0 })
	var err2 error
	eventually(t, "a second poll is refused as busy", func() bool {
		_, err2 = e.callKeep(c2, "events.since", b.Epoch, int64(b.Head), 10, 1)
		f, ok := err2.(*gofunc.Fault)
		return ok && f.Code == gofunc.CodeBusy
	})
	if _, err := e.callKeep(c2, "test.ping"); err != nil {
		t.Errorf("a call while the poll slot is taken: %v", err)
	}
}

// Module calls count as activity for watchers; the minion's own
// modules and polls do not.
func TestActivity(t *testing.T) {
	act := &events.Activity{}
	release := make(chan struct{})
	e, _ := startEvents(t, func(s *minion.Server) {
		s.Activity = act
		s.Intercept = func(ctx context.Context, call *minion.Call, next func(context.Context) (any, error)) (any, error) {
			if call.Method == "test.sleep" {
				<-release
			}
			return next(ctx)
		}
	})
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	if _, err := e.callKeep(c, "system.list_modules"); err != nil || act.Busy() {
		t.Fatalf("after system.list_modules: %v, busy %v", err, act.Busy())
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.callKeep(c, "test.sleep", 0) })
	eventually(t, "busy during test.sleep", act.Busy)
	close(release)
	wg.Wait()
	if act.Busy() {
		t.Error("still busy after the call")
	}
}

// A minion without a journal answers events.since as unavailable.
func TestEventsSinceWithoutJournal(t *testing.T) {
	e := start(t, nil)
	_, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "events.since", "", 0)
	wantFault(t, "no journal", err, gofunc.CodeUnavailable)
}
