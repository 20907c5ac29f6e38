package caller_test

import (
	"context"
	"crypto/tls"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
)

// Discovery finds exactly the minions connected: of four, the three
// whose doors are open, each by a verified answer; answers that do not
// verify (another CA, a name the signer's certificate does not carry)
// are not counted; the broadcast is checked and audited like any call,
// so its bytes replayed are refused; and a broadcast may only ping.
func TestDiscover(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 4, Subnet: "127.0.44"})
	e := &env{t: t, f: f}
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	e.startBroker("127.0.0.1:0")
	ms := f.Minions()
	var live []string
	for _, m := range ms[:3] {
		e.openDoor(m.Server, m.Identity)
		live = append(live, m.Name)
	}
	down := ms[3] // never connects its door; its key answers as others

	other, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	ghost, err := other.Issue(gofunc.RoleMinion, "ghost.test", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A forger on the broker (holding the down minion's connection)
	// answers every broadcast as a minion of another CA and under a
	// name its certificate does not carry.
	forger := e.connect(down.Identity)
	captured := make(chan *nats.Msg, 4)
	sub, err := forger.Subscribe(broker.BroadcastAll, func(msg *nats.Msg) {
		select {
		case captured <- msg:
		default:
		}
		sc, err := broker.ParseCall(broker.Header(msg.Header), msg.Data)
		if err != nil {
			return
		}
		body := []byte(`<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>`)
		for _, fake := range []struct {
			name   string
			signer *tls.Certificate
		}{{"ghost.test", ghost.Certificate()}, {"m9.test", down.Identity.Certificate()}} {
			r := &broker.Reply{ID: sc.ID, Request: sc.RequestSum(), Minion: fake.name, Seq: 1}
			h, err := broker.SignReply(fake.signer, r, body)
			if err == nil {
				_ = forger.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: nats.Header(h), Data: body})
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := forger.Flush(); err != nil {
		t.Fatal(err)
	}

	tr := e.transport(f.Admin(), caller.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	found, err := tr.Discover(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fd := range found {
		names = append(names, fd.Name)
		if fd.Err != nil || fd.CallID == "" {
			t.Errorf("%s: %+v", fd.Name, fd)
		}
	}
	if !slices.Equal(names, live) {
		t.Fatalf("discovered %v, want %v", names, live)
	}

	// The broadcast's bytes again: every live minion refuses and
	// audits the replay; the ping ran once on each.
	var bcast *nats.Msg
	select {
	case bcast = <-captured:
	case <-ctx.Done():
		t.Fatal("the forger never saw the broadcast")
	}
	id := bcast.Header.Get(broker.HeaderID)
	admin := e.connect(f.Admin())
	if err := admin.PublishMsg(&nats.Msg{Subject: bcast.Subject, Reply: bcast.Reply, Header: bcast.Header, Data: bcast.Data}); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:3] {
		if r := denial(t, m.AuditPath, id); !strings.Contains(r.Details["envelope"], broker.ErrReplayed.Error()) {
			t.Errorf("%s: replayed broadcast: %+v", m.Name, r)
		}
		if starts := records(t, m.AuditPath, audit.Filter{Kind: audit.KindCallStart, CallID: id}); len(starts) != 1 ||
			starts[0].Details["audience"] != broker.AudienceAll {
			t.Errorf("%s: the broadcast ran %d times: %+v", m.Name, len(starts), starts)
		}
	}

	// A broadcast audience for anything but a ping is refused.
	const addBody = `<?xml version="1.0"?><methodCall><methodName>test.add</methodName><params><param><value><int>1</int></value></param><param><value><int>2</int></value></param></params></methodCall>`
	c, _ := raw(t, admin, f.Admin(), ms[0].Name, addBody, func(c *broker.Call) {
		c.Audience, c.Method = []string{broker.AudienceAll}, "test.add"
	}, nil)
	if r := denial(t, ms[0].AuditPath, c.ID); !strings.Contains(r.Details["envelope"], broker.ErrAudience.Error()) {
		t.Errorf("broadcast of test.add: %+v", r)
	}
}
