package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// inProcess is a second transport, as a message-broker door would be:
// the overlord's call goes to the minion's Handle with the caller's
// certificate beside it, no TLS connection between them. Both seams are
// real code; only the wire is missing.
type inProcess struct {
	caller  *identity.Identity
	minions map[string]*minion.Server
}

func (t inProcess) RoundTrip(ctx context.Context, to overlord.Minion, call overlord.Outbound) (overlord.Answer, error) {
	srv, ok := t.minions[to.Name]
	if !ok {
		return overlord.Answer{}, &net.OpError{Op: "dial", Net: "in-process", Err: fmt.Errorf("no route to %s", to.Name)}
	}
	deadline, _ := ctx.Deadline()
	rep := srv.Handle(ctx, minion.Inbound{Caller: t.caller.Leaf(), Via: "in-process", Remote: "overlord.test",
		Deadline: deadline, Body: bytes.NewReader(call.Body), Size: int64(len(call.Body))})
	return overlord.Answer{Body: io.NopCloser(bytes.NewReader(rep.Body)), CallID: rep.ID, AuditHead: rep.AuditHead}, nil
}

// Calls that arrive by another transport get every check the HTTPS
// listener applies: the caller's certificate (chain, role, CRL), the
// ACL, the audit log before and after (recording the transport), and
// the answer carries the call id and the audit head.
func TestSecondTransportGetsEveryCheck(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	servers := map[string]*minion.Server{}
	var static overlord.Static
	for _, m := range f.Minions() {
		servers[m.Name] = m.Server
		static = append(static, overlord.Minion{Name: m.Name})
	}
	client := func(id *identity.Identity) *overlord.Client {
		c := overlord.New(overlord.WithIdentity(id), overlord.WithMinions(static),
			overlord.WithTransport(inProcess{caller: id, minions: servers}))
		t.Cleanup(func() { c.Close() })
		return c
	}

	admin := client(f.Admin())
	res, err := admin.Targets("*").Call(t.Context(), "test", "add", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	m1 := f.Minions()[0]
	r := res[m1.Name]
	if r.Value != int64(5) || r.CallID == "" || r.AuditHead.Seq == 0 {
		t.Fatalf("answer = %+v", r)
	}
	recs := auditRecords(t, m1.AuditPath, audit.Filter{CallID: r.CallID})
	if len(recs) != 2 || recs[0].Kind != audit.KindCallStart || recs[1].Kind != audit.KindCallEnd ||
		recs[0].Caller != "admin" || recs[0].Details["via"] != "in-process" || recs[1].Details["via"] != "in-process" {
		t.Errorf("audit records of the call = %+v", recs)
	}

	// The ACL: a dangerous method is not in the default grant.
	if _, err := admin.Targets(m1.Name).Call(t.Context(), "command", "shell", "id"); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("command.shell = %v, want denied", err)
	}

	// The CRL: a revoked caller is refused once the minion holds it.
	eve, err := f.CA.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(eve).Targets(m1.Name).Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("eve before the revocation: %v", err)
	}
	if _, err := f.CA.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Identity.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	if _, err := client(eve).Targets(m1.Name).Call(t.Context(), "test", "ping"); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("revoked eve = %v, want denied", err)
	}

	// The chain: a certificate from another CA proves nothing.
	other, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	mallory, err := other.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client(mallory).Targets(m1.Name).Call(t.Context(), "test", "ping"); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("a foreign CA's admin = %v, want denied", err)
	}
	var denied int
	for _, rec := range auditRecords(t, m1.AuditPath, audit.Filter{Kind: audit.KindCallDenied}) {
		if rec.Details["via"] == "in-process" {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d denials through the second transport in the audit log, want 3 (shell, revoked, foreign)", denied)
	}
}

// A door's own verdict (Inbound.Refusal: a stale or replayed envelope)
// is a denial with an audit record naming the method, and the door's
// Details are in every record of the call.
func TestHandleRefusalAndDetails(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{})
	m := f.Minions()[0]
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err) // and the minion serves
	}
	body := []byte("<?xml version=\"1.0\"?><methodCall><methodName>test.ping</methodName><params></params></methodCall>")
	in := minion.Inbound{Caller: f.Admin().Leaf(), Via: "door", Body: bytes.NewReader(body), Size: int64(len(body)),
		Details: map[string]string{"signer": "abc", "via": "forged"}}
	ok := m.Server.Handle(t.Context(), in)
	in.Body, in.Refusal = bytes.NewReader(body), gofunc.Errorf(gofunc.CodeDenied, "envelope replayed")
	refused := m.Server.Handle(t.Context(), in)
	if !bytes.Contains(refused.Body, []byte("envelope replayed")) || bytes.Contains(ok.Body, []byte("fault")) {
		t.Fatalf("answers: %s / %s", ok.Body, refused.Body)
	}
	for id, kinds := range map[string][]string{ok.ID: {audit.KindCallStart, audit.KindCallEnd}, refused.ID: {audit.KindCallDenied}} {
		recs := auditRecords(t, m.AuditPath, audit.Filter{CallID: id})
		if len(recs) != len(kinds) {
			t.Fatalf("records of %s = %+v, want %v", id, recs, kinds)
		}
		for i, r := range recs {
			if r.Kind != kinds[i] || r.Method != "test.ping" || r.Details["signer"] != "abc" || r.Details["via"] != "door" {
				t.Errorf("record %+v", r)
			}
		}
	}
}

// Start readies a server with no listener: Handle works, and a later
// Serve adds the HTTPS door once.
func TestStartWithoutListener(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{})
	id, err := f.CA.Issue(gofunc.RoleMinion, "door.test", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	srv := &minion.Server{Identity: id, Audit: trail}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(); !errors.Is(err, minion.ErrServing) {
		t.Errorf("second Start = %v, want ErrServing", err)
	}
	body := []byte("<?xml version=\"1.0\"?><methodCall><methodName>system.list_methods</methodName><params></params></methodCall>")
	rep := srv.Handle(t.Context(), minion.Inbound{Caller: f.Admin().Leaf(), Via: "door", Body: bytes.NewReader(body), Size: -1})
	if !bytes.Contains(rep.Body, []byte("system.list_methods")) {
		t.Fatalf("Handle after Start = %s", rep.Body)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	c := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithMinions(overlord.Static{{Name: "door.test", Addr: ln.Addr().String()}}))
	defer c.Close()
	if _, err := c.Targets("door.test").Call(t.Context(), "system", "list_methods"); err != nil {
		t.Fatalf("HTTPS call after Start, Serve: %v", err)
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln2); !errors.Is(err, minion.ErrServing) {
		t.Errorf("second Serve = %v, want ErrServing", err)
	}
	srv.Close()
	if err := <-done; !errors.Is(err, minion.ErrServerClosed) {
		t.Errorf("Serve after Close = %v", err)
	}
}

// A server that is not serving takes no call through Handle, and
// records nothing.
func TestHandleBeforeServe(t *testing.T) {
	t.Parallel()
	srv := &minion.Server{}
	rep := srv.Handle(t.Context(), minion.Inbound{Via: "test", Body: bytes.NewReader(nil)})
	if rep.ID == "" || !bytes.Contains(rep.Body, []byte("not serving")) {
		t.Errorf("Handle before Serve = %+v (%s)", rep, rep.Body)
	}
}

// auditRecords are the records of the log at path that f selects.
func auditRecords(t *testing.T, path string, f audit.Filter) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Query([]string{path}, f, func(r audit.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// inProcessBatch is inProcess as a BatchTransport: it records the
// groups the fan-out hands it and answers each host from a goroutine of
// its own; misbehave, when set, answers the first host of each group
// twice and leaves the last one unanswered.
type inProcessBatch struct {
	inProcess
	max       int
	misbehave bool
	mu        sync.Mutex
	groups    [][]string
}

func (t *inProcessBatch) MaxBatch() int { return t.max }

func (t *inProcessBatch) RoundTripBatch(ctx context.Context, to []overlord.Minion, call overlord.Outbound, answer func(int, overlord.Answer, error)) {
	var names []string
	for _, m := range to {
		names = append(names, m.Name)
	}
	t.mu.Lock()
	t.groups = append(t.groups, names)
	t.mu.Unlock()
	var wg sync.WaitGroup
	for i, m := range to {
		if t.misbehave && i == len(to)-1 && i > 0 {
			continue
		}
		wg.Go(func() {
			ans, err := t.RoundTrip(ctx, m, call)
			answer(i, ans, err)
			if t.misbehave && i == 0 {
				answer(i, overlord.Answer{}, errors.New("a second answer, which must not count"))
			}
		})
	}
	wg.Wait()
}

// A BatchTransport gets the fan-out's hosts in groups of at most its
// MaxBatch and a quarter of Forks, and every host ends with the result
// (value, fault, unreachable) and audit records it would have had host
// by host, through Call, Stream and a rolling Batch alike; a host the
// transport answers twice counts once, one it never answers fails.
func TestBatchTransportSeam(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 5})
	servers := map[string]*minion.Server{}
	static := overlord.Static{{Name: "ghost.example"}}
	for _, m := range f.Minions() {
		servers[m.Name] = m.Server
		static = append(static, overlord.Minion{Name: m.Name})
	}
	bt := &inProcessBatch{inProcess: inProcess{caller: f.Admin(), minions: servers}, max: 4}
	trail, err := audit.Open(filepath.Join(t.TempDir(), "overlord.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	c := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithMinions(static), overlord.WithForks(8),
		overlord.WithAudit(trail), overlord.WithTransport(bt))
	defer c.Close()

	res, err := c.Targets("*").Call(t.Context(), "test", "add", 2, 3)
	if len(res) != 6 || !errors.Is(err, overlord.ErrUnreachable) {
		t.Fatalf("Call = %d results, %v; want 6 and the ghost unreachable", len(res), err)
	}
	for _, m := range f.Minions() {
		if r := res[m.Name]; r.Err != nil || r.Value != int64(5) || r.CallID == "" || r.AuditHead.Seq == 0 || r.Duration <= 0 {
			t.Errorf("%s: %+v", m.Name, r)
		}
	}
	bt.mu.Lock()
	groups := bt.groups
	bt.groups = nil
	bt.mu.Unlock()
	hosts := 0
	for _, g := range groups {
		if len(g) > 2 { // Forks 8 / 4
			t.Errorf("group %v is larger than a quarter of Forks", g)
		}
		hosts += len(g)
	}
	if hosts != 6 || len(groups) != 3 {
		t.Errorf("groups %v: want 3 groups covering the 6 hosts", groups)
	}
	// The overlord's audit log has the per-host outcomes and the
	// minions' heads, as host by host.
	ends := auditRecords(t, trail.Path(), audit.Filter{Kind: audit.KindOverlordCallEnd})
	heads := auditRecords(t, trail.Path(), audit.Filter{Kind: audit.KindOverlordHeads})
	if len(ends) != 1 || len(heads) != 1 {
		t.Errorf("overlord audit: %d call.end, %d heads records, want 1 each", len(ends), len(heads))
	}

	// A fault is a fault; Stream yields every host once.
	seen := map[string]bool{}
	for r := range c.Targets("*").Exclude("ghost.example").Stream(t.Context(), "test", "nosuchmethod") {
		if seen[r.Host] || !errors.Is(r.Err, gofunc.ErrNoSuchMethod) {
			t.Errorf("Stream: %s again or not a fault: %v", r.Host, r.Err)
		}
		seen[r.Host] = true
	}
	if len(seen) != 5 {
		t.Errorf("Stream yielded %d hosts, want 5", len(seen))
	}

	// A rolling batch stops after a failed batch, as host by host.
	res, err = c.Targets("*").Batch(overlord.Batch{Size: 1}).Call(t.Context(), "test", "ping")
	if !errors.Is(err, overlord.ErrSkipped) && !errors.Is(err, overlord.ErrUnreachable) {
		t.Fatalf("rolling batch: %v", err)
	}
	if len(res) != 6 {
		t.Errorf("rolling batch: %d results, want 6", len(res))
	}

	// Answered twice, counted once; never answered, failed.
	bt.misbehave = true
	res, err = c.Targets("*").Exclude("ghost.example").Call(t.Context(), "test", "ping")
	var callErr *overlord.CallError
	if !errors.As(err, &callErr) || len(res) != 5 {
		t.Fatalf("misbehaving transport: %d results, %v", len(res), err)
	}
	failed := res.Failed()
	if len(failed) == 0 || len(failed) != callErr.Failed {
		t.Errorf("failed hosts %v, CallError counts %d", failed, callErr.Failed)
	}
	for _, h := range failed {
		if !errors.Is(res[h].Err, overlord.ErrProtocol) {
			t.Errorf("%s: %v, want the protocol error of an unanswered host", h, res[h].Err)
		}
	}
}
