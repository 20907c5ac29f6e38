package caller_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
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
		if !acked || refused.Header.Get(broker.HeaderRefused) != tc.class || refused.Header.Get(broker.HeaderMinion) != m.Name || len(refused.Data) == 0 {
			t.Errorf("%s: acked %v, refusal %v %q", tc.class, acked, refused.Header, refused.Data)
		}
		sr, err := broker.ParseRefusal(broker.Header(refused.Header), refused.Subject, refused.Data)
		if err == nil {
			err = sr.VerifySignature()
		}
		if err != nil || sr.Cert.Subject.CommonName != m.Name || sr.ReplyTo != c.ReplyTo {
			t.Errorf("%s: refusal not signed by %s for %s: %v", tc.class, m.Name, c.ReplyTo, err)
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

// The caller turns a refusal frame signed by the minion addressed into
// a protocol error naming it (never a result), before the ack timeout:
// here the minion is an older one that refuses every envelope it is
// sent. A refusal signed by another minion (one of a batch sees the
// call id) is not believed.
func TestRefusalFrameIsAProtocolError(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2, Subnet: "127.0.43"})
	e := &env{t: t, f: f}
	e.startBroker("127.0.0.1:0")
	m, peer := f.Minions()[0], f.Minions()[1]
	var signer atomic.Pointer[identity.Identity]
	signer.Store(m.Identity)
	old := e.connect(m.Identity)
	sub, err := old.Subscribe(mustSubject(t, m.Name), func(msg *nats.Msg) {
		r := &broker.Refusal{ID: msg.Header.Get(broker.HeaderID), ReplyTo: msg.Reply, Minion: m.Name, Class: "version",
			Reason: `envelope version "1" not supported; this minion speaks envelope version 0`}
		h, err := broker.SignRefusal(signer.Load().Certificate(), r)
		if err == nil {
			_ = old.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: nats.Header(h), Data: []byte(r.Reason)})
		}
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

	signer.Store(peer.Identity)
	c2 := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithMinions(overlord.Static{{Name: m.Name}}),
		overlord.WithHostTimeout(20*time.Second), overlord.WithTransport(e.transport(f.Admin(), caller.Options{AckTimeout: 2 * time.Second})))
	defer c2.Close()
	res, _ = c2.Targets(m.Name).Call(t.Context(), "test", "ping")
	if r := res[m.Name]; r.Err == nil || errors.Is(r.Err, caller.ErrUnreadable) || !errors.Is(r.Err, overlord.ErrImpersonation) {
		t.Errorf("a refusal signed by %s for %s: %+v", peer.Name, m.Name, r)
	}
}
