package caller_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"

	"github.com/nats-io/nats.go"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a fleet whose minions are behind a real gofunc broker
// (brokerd: mutual TLS, per-name permissions) on loopback.
type env struct {
	t      testing.TB
	f      *fleettest.Fleet
	b      *brokerd.Broker
	listen string
	url    string
	doors  map[string]*door.Door // by minion name, the ones newEnv opened
}

func newEnv(t testing.TB, cfg fleettest.Config) *env {
	t.Helper()
	f := fleettest.Start(t, cfg)
	e := &env{t: t, f: f, doors: make(map[string]*door.Door)}
	// The minions serve once they answer on their HTTPS door.
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	e.startBroker("127.0.0.1:0")
	for _, m := range f.Minions() {
		e.doors[m.Name] = e.openDoor(m.Server, m.Identity)
	}
	return e
}

// startBroker starts the broker on listen; it stops when the test ends.
func (e *env) startBroker(listen string) { e.startBrokerCRL(listen, nil) }

// startBrokerCRL is startBroker with the CA's CRL (DER) installed in
// the broker's identity, when not nil.
func (e *env) startBrokerCRL(listen string, crl []byte) {
	e.t.Helper()
	id, err := e.f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		e.t.Fatal(err)
	}
	if crl != nil {
		if err := id.SetCRL(crl); err != nil {
			e.t.Fatal(err)
		}
	}
	b, err := brokerd.New(brokerd.Config{Identity: id, Listen: listen})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.b, e.url = b, b.ClientURL()
	_, port, _ := net.SplitHostPort(e.url[len("nats://"):])
	e.listen = net.JoinHostPort("127.0.0.1", port)
	e.t.Cleanup(func() { e.stopBroker() })
}

func (e *env) stopBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.b.Shutdown(ctx)
}

// connect dials the broker as id, reconnecting for ever.
func (e *env) connect(id *identity.Identity) *nats.Conn {
	e.t.Helper()
	nc, err := natsconn.Connect(e.t.Context(), []string{e.url}, id, natsconn.Options{Name: id.Name()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// openDoor connects a minion to the broker; the door closes when the
// test ends.
func (e *env) openDoor(srv *minion.Server, id *identity.Identity) *door.Door {
	e.t.Helper()
	d, err := door.Open(door.Config{Server: srv, Conn: e.connect(id)})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { d.Close() })
	return d
}

// transport is a broker transport for id.
func (e *env) transport(id *identity.Identity, opts caller.Options) *caller.Transport {
	e.t.Helper()
	tr, err := caller.Dial(e.t.Context(), []string{e.url}, id, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { tr.Close() })
	return tr
}

// client is an overlord client of id over the broker.
func (e *env) client(id *identity.Identity, opts ...overlord.Option) *overlord.Client {
	e.t.Helper()
	list := overlord.Static{}
	for _, m := range e.f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name})
	}
	c := overlord.New(append([]overlord.Option{overlord.WithIdentity(id), overlord.WithMinions(list),
		overlord.WithHostTimeout(20 * time.Second), overlord.WithTransport(e.transport(id, caller.Options{}))}, opts...)...)
	e.t.Cleanup(func() { c.Close() })
	return c
}

// records are the records of the audit log at path that f selects.
func records(t *testing.T, path string, f audit.Filter) []audit.Record {
	t.Helper()
	recs, err := brokertest.AuditRecords(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// atomicString is a string shared with a subscription's goroutine.
type atomicString struct{ v atomic.Value }

func (a *atomicString) store(s string) { a.v.Store(s) }
func (a *atomicString) load() string {
	s, _ := a.v.Load().(string)
	return s
}

func mustSubject(t *testing.T, name string) string {
	t.Helper()
	s, err := broker.CallSubject(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
