package door_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A minion's journal reaches a monitor through a real broker: each new
// event once, on the minion's own event subject, verbatim (its chain
// checks); a minion publishing on another's subject is refused by the
// broker, so a subscriber can take the name from the subject.
func TestEventsPublished(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 2, NoBuiltins: true, Subnet: "127.0.13", Events: true})
	bid, err := f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := brokerd.New(brokerd.Config{Identity: bid, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		_ = b.Shutdown(sctx)
	})
	connect := func(id *identity.Identity) *nats.Conn {
		nc, err := natsconn.Connect(ctx, []string{b.ClientURL()}, id, natsconn.Options{Name: id.Name()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	mon, err := f.CA.Issue(gofunc.RoleMonitor, "prom", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *nats.Msg, 64)
	monc := connect(mon)
	sub, err := monc.ChanSubscribe(broker.EventPrefix+">", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := monc.Flush(); err != nil {
		t.Fatal(err)
	}

	m1 := f.Minion("m1.test")
	j := m1.Journal()
	cur := j.HeadCursor() // lifecycle.started, as a reader of events.since has it: not published again
	before := cur.Seq
	pub, err := door.PublishEvents(door.EventsConfig{Journal: j, Conn: connect(m1.Identity), Name: m1.Name})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// m2 tries to pass an event off as m1's.
	m2 := connect(f.Minion("m2.test").Identity)
	forged, err := broker.EventSubject("m1.test")
	if err != nil {
		t.Fatal(err)
	}
	_ = m2.Publish(forged+door.EventSuffix, []byte(`{"forged":true}`))
	_ = m2.Flush()

	for _, state := range []string{"WARNING", "CRITICAL"} {
		if _, err := j.Emit("disk", &events.NagiosState{Plugin: "check_disk", State: state, Code: 1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		var msg *nats.Msg
		select {
		case msg = <-got:
		case <-time.After(30 * time.Second):
			t.Fatalf("event %d not received", i+1)
		}
		name, err := door.EventOrigin(msg.Subject)
		if err != nil || name != "m1.test" {
			t.Fatalf("subject %s: %q, %v", msg.Subject, name, err)
		}
		evs, err := events.Receive(name, []string{string(msg.Data)})
		if err != nil {
			t.Fatalf("message %d %q: %v", i+1, msg.Data, err)
		}
		if evs[0].Seq != before+uint64(i)+1 || evs[0].Minion != "m1.test" {
			t.Errorf("event %d: %+v", i+1, evs[0])
		}
		next, deliver, notices := cur.Next(evs[0])
		if !deliver || len(notices) > 0 {
			t.Errorf("event %d: delivered %v, notices %v", i+1, deliver, notices)
		}
		cur = next
	}
	select {
	case msg := <-got:
		t.Errorf("one message too many, on %s: %q", msg.Subject, msg.Data)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestEventOrigin(t *testing.T) {
	for subject, want := range map[string]string{
		"gf.v1.evt.web1_example_org.event": "web1.example.org",
		"gf.v1.evt.m1.hello":               "m1",
	} {
		if got, err := door.EventOrigin(subject); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", subject, got, err, want)
		}
	}
	for _, bad := range []string{"gf.v1.call.m1", "gf.v1.evt.", "gf.v1.evt.a*b.event", ""} {
		if got, err := door.EventOrigin(bad); err == nil {
			t.Errorf("%q: %q, want an error", bad, got)
		}
	}
}
