package caller_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// A fan-out over the broker signs one call for a group of minions: each
// minion runs it once, under the one envelope id, with the audience in
// its audit record; a minion of the group that is not connected is
// unreachable at once (the broker's "no responders" for its own reply
// subject), not after the ack timeout.
func TestOneSignaturePerGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3})
	list := overlord.Static{{Name: "ghost.test"}}
	for _, m := range e.f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name})
	}
	tr := e.transport(e.f.Admin(), caller.Options{AckTimeout: time.Hour})
	c := overlord.New(overlord.WithIdentity(e.f.Admin()), overlord.WithMinions(list),
		overlord.WithHostTimeout(30*time.Second), overlord.WithTransport(tr))
	defer c.Close()
	res, err := c.Targets("*").Call(t.Context(), "test", "ping")
	if len(res) != 4 {
		t.Fatalf("%d results: %v", len(res), err)
	}
	if err := res["ghost.test"].Err; !errors.Is(err, caller.ErrNoResponders) || !errors.Is(err, overlord.ErrUnreachable) {
		t.Errorf("ghost: %v, want unreachable, no responders", err)
	}
	envelope := ""
	for _, m := range e.f.Minions() {
		r := res[m.Name]
		if r.Err != nil || r.Value != true {
			t.Fatalf("%s: %+v", m.Name, r)
		}
		starts := records(t, m.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: r.CallID})
		if len(starts) != 1 {
			t.Fatalf("%s: %d call.start records for %s", m.Name, len(starts), r.CallID)
		}
		d := starts[0].Details
		if envelope == "" {
			envelope = d["envelope_id"]
		}
		if d["envelope_id"] != envelope || !strings.Contains(d["audience"], "ghost.test") || !strings.Contains(d["audience"], m.Name) {
			t.Errorf("%s: envelope %s audience %q, want the group's envelope %s naming all four", m.Name, d["envelope_id"], d["audience"], envelope)
		}
	}
}

// A group's signed call is good for the minions it names, each on its
// own reply subject, once: delivered to a minion it does not name, with
// another minion's reply subject, with the reply subject of a call to
// one, with its audience changed, or again, it is denied and audited.
func TestGroupEnvelopeRejections(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3})
	m1, m2, m3 := e.f.Minions()[0], e.f.Minions()[1], e.f.Minions()[2]
	admin := e.f.Admin()
	conn := e.connect(admin)
	now := time.Now()
	c := &broker.Call{ID: broker.NewID(), Issued: now, Deadline: now.Add(time.Minute), Method: "test.ping",
		Audience: []string{m1.Name, m2.Name}}
	c.ReplyTo = broker.ReplyInbox(admin.Leaf()) + "." + c.ID
	h, err := broker.SignCall(admin.Certificate(), c, []byte(pingBody))
	if err != nil {
		t.Fatal(err)
	}
	reply1, _ := c.ReplySubject(m1.Name)
	reply2, _ := c.ReplySubject(m2.Name)
	if reply1 != c.ReplyTo+".0" || reply2 != c.ReplyTo+".1" {
		t.Fatalf("reply subjects %s, %s", reply1, reply2)
	}
	if _, ok := c.ReplySubject(m3.Name); ok {
		t.Fatal("a reply subject for a minion not in the audience")
	}
	send := func(to, reply string, header broker.Header) {
		t.Helper()
		if err := conn.PublishMsg(&nats.Msg{Subject: mustSubject(t, to), Reply: reply, Header: nats.Header(header), Data: []byte(pingBody)}); err != nil {
			t.Fatal(err)
		}
	}
	otherAudience := broker.Header{}
	for k, v := range h {
		otherAudience[k] = v
	}
	otherAudience[broker.HeaderAudience] = []string{m1.Name + "," + m3.Name}

	for _, tc := range []struct {
		name   string
		to     string
		path   string
		reply  string
		header broker.Header
		want   error
	}{
		{"reused for a minion it does not name", m3.Name, m3.AuditPath, reply1, h, broker.ErrAudience},
		{"another minion's reply subject", m2.Name, m2.AuditPath, reply1, h, broker.ErrReplyTo},
		{"the reply subject of a call to one", m2.Name, m2.AuditPath, c.ReplyTo, h, broker.ErrReplyTo},
		{"audience changed to another target set", m3.Name, m3.AuditPath, c.ReplyTo + ".1", otherAudience, broker.ErrSignature},
	} {
		send(tc.to, tc.reply, tc.header)
		r := waitDenial(t, tc.path, c.ID, tc.want)
		if r.Details["via"] != "nats" {
			t.Errorf("%s: record %+v", tc.name, r)
		}
		if starts := records(t, tc.path, audit.Filter{Kind: audit.KindCallStart, CallID: c.ID}); len(starts) != 0 {
			t.Errorf("%s: the call ran: %+v", tc.name, starts)
		}
	}

	// Delivered as signed, it runs once on m1 and its answer comes on
	// m1's own reply subject; the same bytes again are a replay.
	sub, err := conn.SubscribeSync(reply1)
	if err != nil {
		t.Fatal(err)
	}
	send(m1.Name, reply1, h)
	if final := finalFrame(t, sub, c.ID); final.Header.Get(broker.HeaderMinion) != m1.Name || strings.Contains(string(final.Data), "fault") {
		t.Fatalf("m1's answer: %v %s", final.Header, final.Data)
	}
	send(m1.Name, reply1, h)
	waitDenial(t, m1.AuditPath, c.ID, broker.ErrReplayed)
	if starts := records(t, m1.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: c.ID}); len(starts) != 1 {
		t.Errorf("the group's call ran %d times on m1, want once", len(starts))
	}
}

// waitDenial waits for a call.denied record of envelope id whose
// envelope error is want's.
func waitDenial(t *testing.T, path, id string, want error) audit.Record {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		for _, r := range records(t, path, audit.Filter{Kind: audit.KindCallDenied}) {
			if r.Details["envelope_id"] == id && strings.Contains(r.Details["envelope"], want.Error()) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no denial %q recorded for %s in %s", want, id, path)
		}
		time.Sleep(20 * time.Millisecond) // polling a file another goroutine writes
	}
}
