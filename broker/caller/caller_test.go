package caller_test

import (
	"testing"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// A call over the broker is the same call: the result, the call id and
// audit head, and the minion's records naming the transport and the
// envelope.
func TestCallOverBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3})
	c := e.client(e.f.Admin())
	res, err := c.Targets("*").Call(t.Context(), "test", "add", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, m := range e.f.Minions() {
		r := res[m.Name]
		if r.Err != nil || r.Value != int64(5) || r.CallID == "" || r.AuditHead.Seq == 0 {
			t.Fatalf("%s: %+v", m.Name, r)
		}
		recs := records(t, m.AuditPath, audit.Filter{CallID: r.CallID})
		if len(recs) != 2 || recs[0].Kind != audit.KindCallStart || recs[0].Details["via"] != "nats" ||
			recs[0].Details["signer"] == "" || recs[0].Details["deadline"] == "" || recs[0].Caller != "admin" {
			t.Errorf("%s: records %+v", m.Name, recs)
		}
	}
}

// TestTransportsOfOneIdentityTakeOnlyTheirAnswers: two transports of
// the same identity (two func commands of one operator) each take their
// answers on a reply subtree of their own, so a fan-out through one
// sends the other nothing; the broker used to deliver every ack and
// answer to every connection subscribed to the identity's inbox.
func TestTransportsOfOneIdentityTakeOnlyTheirAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3})
	nc := e.connect(e.f.Admin())
	other, err := caller.New(nc, e.f.Admin(), caller.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	res, err := e.client(e.f.Admin()).Targets("*").Call(t.Context(), "test", "ping")
	if err != nil || len(res) != 3 {
		t.Fatalf("%d results, %v", len(res), err)
	}
	if err := nc.Flush(); err != nil { // whatever the broker sent nc before now has been read
		t.Fatal(err)
	}
	if n := nc.Stats().InMsgs; n != 0 {
		t.Fatalf("the other transport received %d messages of a fan-out it did not make", n)
	}
	// It answers its own calls.
	list := overlord.Static{}
	for _, m := range e.f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name})
	}
	c := overlord.New(overlord.WithIdentity(e.f.Admin()), overlord.WithMinions(list), overlord.WithTransport(other))
	defer c.Close()
	if res, err := c.Targets("*").Call(t.Context(), "test", "ping"); err != nil || len(res) != 3 {
		t.Fatalf("through the other transport: %d results, %v", len(res), err)
	}
}
