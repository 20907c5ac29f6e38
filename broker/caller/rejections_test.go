package caller_test

import (
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

const pingBody = `<?xml version="1.0"?><methodCall><methodName>test.ping</methodName><params></params></methodCall>`

// raw signs a call to minion as signer and publishes it on conn (an
// overlord's connection: the broker lets it publish calls), after edit
// has had its way with the envelope and headers.
func raw(t *testing.T, conn *nats.Conn, signer *identity.Identity, minion string, body string,
	edit func(c *broker.Call), editHeader func(h broker.Header)) (*broker.Call, *nats.Msg) {
	t.Helper()
	now := time.Now()
	c := &broker.Call{ID: broker.NewID(), Issued: now, Deadline: now.Add(time.Minute), Method: "test.ping", Audience: []string{minion}}
	c.ReplyTo = broker.ReplyInbox(signer.Leaf()) + "." + c.ID
	if edit != nil {
		edit(c)
	}
	h, err := broker.SignCall(signer.Certificate(), c, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if editHeader != nil {
		editHeader(h)
	}
	subject, err := broker.CallSubject(minion)
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Reply: c.ReplyTo, Header: nats.Header(h), Data: []byte(body)}
	if err := conn.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	return c, msg
}

// denial waits for the minion's call.denied record of the envelope id
// and returns it.
func denial(t *testing.T, path, id string) audit.Record {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, r := range records(t, path, audit.Filter{Kind: audit.KindCallDenied}) {
			if r.Details["envelope_id"] == id {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no denial recorded for %s", id)
		}
		time.Sleep(20 * time.Millisecond) // polling a file another goroutine writes
	}
}

// Every way a broker (or anyone on it) can tamper with a call ends in a
// denial with an audit record, never an execution. The method is
// test.ping throughout: a call.start record would mean it ran.
func TestEveryRejectionIsDeniedAndAudited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 2})
	m1, m2 := e.f.Minions()[0], e.f.Minions()[1]
	admin := e.f.Admin()
	conn := e.connect(admin)

	other, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve, err := e.f.CA.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.f.CA.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := e.f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := m1.Identity.SetCRL(crl); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name       string
		signer     *identity.Identity
		body       string
		edit       func(c *broker.Call)
		editHeader func(h broker.Header)
		want       string // in the record's envelope detail or error
	}{
		{name: "expired", edit: func(c *broker.Call) {
			c.Issued, c.Deadline = time.Now().Add(-2*time.Minute), time.Now().Add(-time.Minute)
		}, want: broker.ErrExpired.Error()},
		{name: "issued in the future", edit: func(c *broker.Call) {
			c.Issued, c.Deadline = time.Now().Add(5*time.Minute), time.Now().Add(6*time.Minute)
		}, want: broker.ErrNotYet.Error()},
		{name: "valid too long", edit: func(c *broker.Call) { c.Deadline = time.Now().Add(time.Hour) }, want: broker.ErrValidity.Error()},
		{name: "wrong audience", edit: func(c *broker.Call) { c.Audience = []string{m2.Name} }, want: broker.ErrAudience.Error()},
		{name: "bad signature", editHeader: func(h broker.Header) {
			h[broker.HeaderDeadline] = []string{time.Now().UTC().Add(2 * time.Minute).Format(broker.TimeLayout)}
		}, want: broker.ErrSignature.Error()},
		{name: "reply redirected", editHeader: func(h broker.Header) {
			h[broker.HeaderReplyTo] = []string{broker.ReplyPrefix + "0123456789abcdef0123456789abcdef.x"}
		}, want: broker.ErrReplyTo.Error()},
		{name: "reply to another caller's inbox", edit: func(c *broker.Call) {
			c.ReplyTo = broker.ReplyPrefix + "0123456789abcdef0123456789abcdef." + c.ID
		}, want: broker.ErrReplyTo.Error()},
		{name: "method/body mismatch", body: strings.Replace(pingBody, "test.ping", "command.run", 1), want: broker.ErrMethod.Error()},
		{name: "foreign CA", signer: foreign, want: "certificate signed by unknown authority"},
		{name: "revoked caller", signer: eve, want: "revoked"},
	}
	for _, tc := range cases {
		signer := tc.signer
		if signer == nil {
			signer = admin
		}
		body := tc.body
		if body == "" {
			body = pingBody
		}
		c, _ := raw(t, conn, signer, m1.Name, body, tc.edit, tc.editHeader)
		r := denial(t, m1.AuditPath, c.ID)
		if !strings.Contains(r.Details["envelope"]+" "+r.Error, tc.want) || r.Details["via"] != "nats" {
			t.Errorf("%s: record %+v, want %q", tc.name, r, tc.want)
		}
		if starts := records(t, m1.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: c.ID}); len(starts) != 0 {
			t.Errorf("%s: the call ran: %+v", tc.name, starts)
		}
	}

	// Replayed bytes: the same message again is denied, also by a door
	// opened afresh (the replay cache is reseeded from the audit log).
	sub, err := conn.SubscribeSync(broker.ReplyInbox(admin.Leaf()) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	c, msg := raw(t, conn, admin, m2.Name, pingBody, nil, nil)
	if final := finalFrame(t, sub, c.ID); strings.Contains(string(final.Data), "fault") {
		t.Fatalf("the original call: %s", final.Data)
	}
	if err := conn.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	if r := denial(t, m2.AuditPath, c.ID); !strings.Contains(r.Details["envelope"], broker.ErrReplayed.Error()) || r.CallID == c.ID {
		t.Errorf("replay: %+v", r)
	}
	fresh, err := door.Open(door.Config{Server: m2.Server, Conn: e.connect(m2.Identity)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	before := len(records(t, m2.AuditPath, audit.Filter{Kind: audit.KindCallDenied}))
	if err := conn.PublishMsg(msg); err != nil {
		t.Fatal(err)
	}
	// Both doors (old and fresh) get it: two denials, no run.
	deadline := time.Now().Add(time.Minute)
	for len(records(t, m2.AuditPath, audit.Filter{Kind: audit.KindCallDenied})) < before+2 {
		if time.Now().After(deadline) {
			t.Fatal("the replay to the fresh door was not denied")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if starts := records(t, m2.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: c.ID}); len(starts) != 1 {
		t.Errorf("replayed call ran %d times", len(starts))
	}
}

// finalFrame reads sub until the final frame of call id.
func finalFrame(t *testing.T, sub *nats.Subscription, id string) *nats.Msg {
	t.Helper()
	for {
		m, err := sub.NextMsg(time.Minute)
		if err != nil {
			t.Fatalf("waiting for the answer to %s: %v", id, err)
		}
		if m.Header.Get(broker.HeaderID) == id && m.Header.Get(broker.HeaderFinal) == "1" {
			return m
		}
	}
}

// Answers are the addressed minion's or nothing: a frame signed by
// another minion (a broker that routed the call to it, or a minion
// publishing on the caller's inbox) is refused as an impersonation, and
// one bound to another request as forged; a genuine answer arriving
// after a forged one still counts.
func TestForgedAnswers(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	e := &env{t: t, f: f}
	e.startBroker("127.0.0.1:0")
	m1, m2 := f.Minions()[0], f.Minions()[1]
	// An impostor holds m1's connection (so the broker delivers m1's
	// calls to it) but only m2's key, or m1's key and a wrong request.
	var mode atomicString
	imp := e.connect(m1.Identity)
	sub, err := imp.Subscribe(mustSubject(t, m1.Name), func(msg *nats.Msg) {
		sc, err := broker.ParseCall(broker.Header(msg.Header), msg.Data)
		if err != nil {
			return
		}
		body := []byte(`<?xml version="1.0"?><methodResponse><params><param><value><string>forged</string></value></param></params></methodResponse>`)
		signer, request := m2.Identity, sc.RequestSum()
		r := &broker.Reply{ID: sc.ID, Minion: m1.Name, Seq: 1}
		switch mode.load() {
		case "other minion":
			r.Minion = m2.Name
		case "same name, other key":
		case "other request":
			signer, request = m1.Identity, [32]byte{1}
		}
		r.Request = request
		h, err := broker.SignReply(signer.Certificate(), r, body)
		if err != nil {
			return
		}
		_ = imp.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: nats.Header(h), Data: body})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := imp.Flush(); err != nil {
		t.Fatal(err)
	}
	c := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithMinions(overlord.Static{{Name: m1.Name}}),
		overlord.WithHostTimeout(3*time.Second), overlord.WithTransport(e.transport(f.Admin(), caller.Options{})))
	defer c.Close()
	for _, tc := range []struct {
		mode string
		want error
	}{
		{"other minion", overlord.ErrImpersonation},
		{"same name, other key", overlord.ErrImpersonation},
		{"other request", caller.ErrForged},
	} {
		mode.store(tc.mode)
		_, err := c.Targets(m1.Name).Call(t.Context(), "test", "ping")
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.mode, err, tc.want)
		}
	}
	// The genuine minion behind the same subject: its answer wins over
	// the forgery that arrives first.
	mode.store("other minion")
	e.openDoor(m1.Server, m1.Identity)
	if _, err := c.Targets(m1.Name).Call(t.Context(), "test", "ping"); err != nil {
		t.Errorf("genuine answer after a forged one: %v", err)
	}
}

// An envelope refused at its signature check does not own the id it
// carries: a forger who learnt a genuine call's id (the broker sees
// them all) and sent a forged envelope with it first must not get the
// genuine call refused as a replay once the minion restarts and
// reseeds its replay cache from the audit log.
func TestForgedIDCannotBlockACallAcrossARestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1})
	m := e.f.Minions()[0]
	admin := e.f.Admin()
	conn := e.connect(admin)

	now := time.Now()
	c := &broker.Call{ID: broker.NewID(), Issued: now, Deadline: now.Add(time.Minute), Method: "test.ping", Audience: []string{m.Name}}
	c.ReplyTo = broker.ReplyInbox(admin.Leaf()) + "." + c.ID
	h, err := broker.SignCall(admin.Certificate(), c, []byte(pingBody))
	if err != nil {
		t.Fatal(err)
	}
	subject := mustSubject(t, m.Name)
	genuine := &nats.Msg{Subject: subject, Reply: c.ReplyTo, Header: nats.Header(h), Data: []byte(pingBody)}

	// The forgery: the genuine call's id and headers, another deadline,
	// so its signature fails.
	forged := &nats.Msg{Subject: subject, Reply: c.ReplyTo, Header: nats.Header(maps.Clone(h)), Data: []byte(pingBody)}
	forged.Header.Set(broker.HeaderDeadline, now.Add(2*time.Minute).UTC().Format(broker.TimeLayout))
	if err := conn.PublishMsg(forged); err != nil {
		t.Fatal(err)
	}
	if r := denial(t, m.AuditPath, c.ID); !strings.Contains(r.Details["envelope"], broker.ErrSignature.Error()) || r.CallID == c.ID {
		t.Fatalf("forged envelope: %+v, want a signature denial not owning the id", r)
	}

	// The minion restarts its door: the replay cache comes from the log.
	if err := e.doors[m.Name].Close(); err != nil {
		t.Fatal(err)
	}
	e.openDoor(m.Server, m.Identity)

	sub, err := conn.SubscribeSync(broker.ReplyInbox(admin.Leaf()) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.PublishMsg(genuine); err != nil {
		t.Fatal(err)
	}
	if final := finalFrame(t, sub, c.ID); strings.Contains(string(final.Data), "fault") {
		t.Fatalf("the genuine call after the restart: %s", final.Data)
	}
	if starts := records(t, m.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: c.ID}); len(starts) != 1 {
		t.Errorf("the genuine call ran %d times, want once", len(starts))
	}
}
