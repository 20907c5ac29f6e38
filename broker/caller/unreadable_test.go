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

// A call whose envelope the minion cannot read (another version,
// malformed) is audited and answered with an unsigned refusal naming
// the minion and the reason, after the ack: the caller does not wait
// for the ack timeout to call the minion unreachable.
func TestUnreadableEnvelopeIsAnswered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.42"})
	m := e.f.Minions()[0]
	admin := e.f.Admin()
	conn := e.connect(admin)
	sub, err := conn.SubscribeSync(broker.ReplyInbox(admin.Leaf()) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		class string
		edit  func(h broker.Header)
	}{
		{"version", func(h broker.Header) { h[broker.HeaderVersion] = []string{"2"} }},
		{"malformed", func(h broker.Header) { h[broker.HeaderDeadline] = []string{"tomorrow"} }},
	} {
		c, _ := raw(t, conn, admin, m.Name, pingBody, nil, tc.edit)
		var acked bool
		var refused *nats.Msg
		for refused == nil {
			f, err := sub.NextMsg(time.Minute)
			if err != nil {
				t.Fatalf("%s: waiting for the refusal: %v", tc.class, err)
			}
			switch {
			case f.Header.Get(broker.HeaderID) != c.ID:
			case f.Header.Get(broker.HeaderRefused) != "":
				refused = f
			case f.Header.Get(broker.HeaderSeq) == "0":
				acked = true
			default:
				t.Fatalf("%s: unexpected frame %v %q", tc.class, f.Header, f.Data)
			}
		}
		if !acked || refused.Header.Get(broker.HeaderRefused) != tc.class || refused.Header.Get(broker.HeaderMinion) != m.Name ||
			refused.Header.Get(broker.HeaderSig) != "" || len(refused.Data) == 0 {
			t.Errorf("%s: acked %v, refusal %v %q", tc.class, acked, refused.Header, refused.Data)
		}
		if tc.class == "version" && !strings.Contains(string(refused.Data), "speaks envelope version "+broker.Version) {
			t.Errorf("version refusal says %q", refused.Data)
		}
	}
	// Both attempts are in the audit log, and nothing ran.
	deadline := time.Now().Add(time.Minute)
	for len(records(t, m.AuditPath, audit.Filter{Kind: audit.KindCallDenied})) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("unreadable envelopes not audited")
		}
		time.Sleep(20 * time.Millisecond) // polling a file another goroutine writes
	}
	for _, r := range records(t, m.AuditPath, audit.Filter{Kind: audit.KindCallStart}) {
		if r.Details["via"] == "nats" {
			t.Errorf("a call ran: %+v", r)
		}
	}
}

// The caller turns a refusal frame into a protocol error naming the
// minion (never a result), before the ack timeout: here the minion is
// an older one that refuses every envelope it is sent.
func TestRefusalFrameIsAProtocolError(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1, Subnet: "127.0.43"})
	e := &env{t: t, f: f}
	e.startBroker("127.0.0.1:0")
	m := f.Minions()[0]
	old := e.connect(m.Identity)
	sub, err := old.Subscribe(mustSubject(t, m.Name), func(msg *nats.Msg) {
		h := nats.Header{}
		h.Set(broker.HeaderID, msg.Header.Get(broker.HeaderID))
		h.Set(broker.HeaderMinion, m.Name)
		h.Set(broker.HeaderRefused, "version")
		_ = old.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: h, Data: []byte(`envelope version "1" not supported; this minion speaks envelope version 0`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := old.Flush(); err != nil {
		t.Fatal(err)
	}
	// An ack timeout longer than the host timeout: had the refusal been
	// ignored, the result would be unreachable or a timeout.
	c := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithMinions(overlord.Static{{Name: m.Name}}),
		overlord.WithHostTimeout(20*time.Second), overlord.WithTransport(e.transport(f.Admin(), caller.Options{AckTimeout: time.Minute})))
	defer c.Close()
	res, err := c.Targets(m.Name).Call(t.Context(), "test", "ping")
	r := res[m.Name]
	if err == nil || r.Err == nil || !errors.Is(r.Err, caller.ErrUnreadable) || !errors.Is(r.Err, overlord.ErrProtocol) ||
		overlord.ErrorKind(r.Err) != "protocol" || !strings.Contains(r.Err.Error(), m.Name) || !strings.Contains(r.Err.Error(), "version") {
		t.Fatalf("got %+v, %v; want a protocol error naming %s", r, err, m.Name)
	}
}
