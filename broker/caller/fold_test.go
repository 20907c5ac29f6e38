package caller_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/fleettest"
)

const sleepBody = `<?xml version="1.0"?><methodCall><methodName>test.sleep</methodName><params><param><value><double>2</double></value></param></params></methodCall>`

// framesOf collects the frames of call id from sub up to its final one
// (or its refusal) and names them: "ack", "data", "final".
func framesOf(t *testing.T, sub *nats.Subscription, id string) []string {
	t.Helper()
	var kinds []string
	for {
		f, err := sub.NextMsg(time.Minute)
		if err != nil {
			t.Fatalf("call %s: waiting for its frames (have %v): %v", id, kinds, err)
		}
		if f.Header.Get(broker.HeaderID) != id {
			continue
		}
		switch {
		case f.Header.Get(broker.HeaderFinal) == "1":
			return append(kinds, "final")
		case f.Header.Get(broker.HeaderSeq) == "0":
			kinds = append(kinds, "ack")
		default:
			kinds = append(kinds, "data")
		}
	}
}

// reopen replaces the minion's door by one with cfg.
func (e *env) reopen(name string, cfg door.Config) *door.Door {
	e.t.Helper()
	if err := e.doors[name].Close(); err != nil {
		e.t.Fatal(err)
	}
	for _, m := range e.f.Minions() {
		if m.Name == name {
			cfg.Server, cfg.Conn = m.Server, e.connect(m.Identity)
		}
	}
	d, err := door.Open(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	e.doors[name] = d
	return d
}

// A call answered within the fold window gets one frame, its signed
// answer, which the caller takes as the acknowledgement too; a slow one
// is acknowledged first (when the window ends), then answered; with the
// fold off every call is acknowledged first. Every call is either
// acknowledged or folded, once.
func TestAckFoldedIntoQuickAnswer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.47"})
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
	// The widest window, so that a loaded test machine still answers a
	// ping within it now and then.
	d := e.reopen(m.Name, door.Config{AckFold: time.Hour})
	folded, calls := 0, 0
	for ; calls < 50 && folded == 0; calls++ {
		c, _ := raw(t, conn, admin, m.Name, pingBody, nil, nil)
		switch got := framesOf(t, sub, c.ID); len(got) {
		case 1:
			folded++
		case 2:
			if got[0] != "ack" {
				t.Fatalf("ping: frames %v", got)
			}
		default:
			t.Fatalf("ping: frames %v", got)
		}
	}
	if folded == 0 {
		t.Errorf("no ping of %d answered within %s without an ack", calls, door.MaxAckFold)
	}
	c, _ := raw(t, conn, admin, m.Name, sleepBody, func(c *broker.Call) { c.Method = "test.sleep" }, nil)
	if got := framesOf(t, sub, c.ID); len(got) != 2 || got[0] != "ack" {
		t.Errorf("test.sleep 2: frames %v, want ack then final", got)
	}
	calls++
	if st := d.Stats(); st.Folded != uint64(folded) || st.Acks+st.Folded != uint64(calls) {
		t.Errorf("stats %+v after %d calls, %d folded", st, calls, folded)
	}

	d = e.reopen(m.Name, door.Config{AckFold: -1})
	for range 3 {
		c, _ := raw(t, conn, admin, m.Name, pingBody, nil, nil)
		if got := framesOf(t, sub, c.ID); len(got) != 2 || got[0] != "ack" {
			t.Errorf("fold off: frames %v, want ack then final", got)
		}
	}
	if st := d.Stats(); st != (door.Stats{Acks: 3}) {
		t.Errorf("fold off: stats %+v", st)
	}
}
