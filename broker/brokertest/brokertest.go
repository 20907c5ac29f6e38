// Package brokertest runs a test fleet (package fleettest) behind a real
// gofunc broker: a brokerd on loopback, every minion's broker door open
// beside its HTTPS port, and overlord clients whose calls go through the
// broker. Embedders test both paths with one fleet: Fleet.Overlord
// calls directly, Fleet.Client through the broker.
//
// It is a package of its own so that fleettest does not link NATS.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// Fleet is a fleettest fleet behind a broker.
type Fleet struct {
	*fleettest.Fleet
	// URL is the broker's client URL (nats://127.0.0.1:PORT).
	URL string

	listen   string
	brokerID *identity.Identity

	mu         sync.Mutex
	broker     *brokerd.Broker
	doors      []*door.Door
	transports []*caller.Transport
	clients    []*overlord.Client
}

// Start starts a fleet behind a broker for a test and stops it when the
// test ends; it fails the test if anything cannot start.
func Start(tb testing.TB, cfg fleettest.Config) *Fleet {
	tb.Helper()
	f, err := New(cfg)
	if err != nil {
		tb.Fatalf("brokertest: %v", err)
	}
	tb.Cleanup(f.Close)
	return f
}

// New starts a fleet (fleettest.New), a broker on 127.0.0.1 and a broker
// door on every minion. Close stops them all.
func New(cfg fleettest.Config) (*Fleet, error) {
	ft, err := fleettest.New(cfg)
	if err != nil {
		return nil, err
	}
	f := &Fleet{Fleet: ft, listen: "127.0.0.1:0"}
	if err := f.start(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Fleet) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The minions serve once they answer on their HTTPS door; their
	// broker doors need them serving.
	if _, err := f.Overlord().Targets("*").Call(ctx, "test", "ping"); err != nil && !errors.Is(err, gofunc.ErrNoSuchMethod) {
		return fmt.Errorf("fleet not serving: %w", err)
	}
	id, err := f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		return err
	}
	f.brokerID = id
	if err := f.startBroker(ctx); err != nil {
		return err
	}
	for _, m := range f.Minions() {
		d, err := door.Dial(ctx, []string{f.URL}, door.Config{Server: m.Server, AuditPath: m.AuditPath})
		if err != nil {
			return fmt.Errorf("minion %s: %w", m.Name, err)
		}
		f.mu.Lock()
		f.doors = append(f.doors, d)
		f.mu.Unlock()
	}
	return nil
}

// startBroker starts a broker on f.listen (the same address again after
// a restart).
func (f *Fleet) startBroker(ctx context.Context) error {
	b, err := brokerd.New(brokerd.Config{Identity: f.brokerID, Listen: f.listen})
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	f.broker = b
	f.mu.Unlock()
	f.URL = b.ClientURL()
	u := f.URL[len("nats://"):]
	if _, port, err := net.SplitHostPort(u); err == nil {
		f.listen = net.JoinHostPort("127.0.0.1", port)
	}
	return nil
}

// Broker returns the broker running now.
func (f *Fleet) Broker() *brokerd.Broker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broker
}

// StopBroker shuts the broker down: calls in flight end by their
// deadlines, and minions and overlords keep trying to reconnect.
func (f *Fleet) StopBroker() {
	f.mu.Lock()
	b := f.broker
	f.broker = nil
	f.mu.Unlock()
	if b != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = b.Shutdown(ctx)
	}
}

// RestartBroker stops the broker and starts a new one on the same
// address; the minions reconnect by themselves.
func (f *Fleet) RestartBroker(ctx context.Context) error {
	f.StopBroker()
	return f.startBroker(ctx)
}

// Transport returns a broker transport for id, closed with the fleet.
func (f *Fleet) Transport(id *identity.Identity, opts caller.Options) (*caller.Transport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t, err := caller.Dial(ctx, []string{f.URL}, id, opts)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.transports = append(f.transports, t)
	f.mu.Unlock()
	return t, nil
}

// ClientAs returns an overlord client of id whose calls go through the
// broker, with the fleet's minions as its list and opts on top; it is
// closed with the fleet.
func (f *Fleet) ClientAs(id *identity.Identity, opts ...overlord.Option) (*overlord.Client, error) {
	t, err := f.Transport(id, caller.Options{})
	if err != nil {
		return nil, err
	}
	list := make(overlord.Static, 0, len(f.Minions()))
	for _, m := range f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name})
	}
	base := []overlord.Option{overlord.WithIdentity(id), overlord.WithMinions(list),
		overlord.WithHostTimeout(20 * time.Second), overlord.WithTransport(t)}
	c := overlord.New(append(base, opts...)...)
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c, nil
}

// Client is ClientAs with the fleet's admin identity. It panics if the
// broker cannot be reached (it runs in this process).
func (f *Fleet) Client(opts ...overlord.Option) *overlord.Client {
	c, err := f.ClientAs(f.Admin(), opts...)
	if err != nil {
		panic(fmt.Sprintf("brokertest: %v", err))
	}
	return c
}

// Close stops the clients, the doors, the broker and the fleet. It is
// idempotent.
func (f *Fleet) Close() {
	f.mu.Lock()
	clients, transports, doors := f.clients, f.transports, f.doors
	f.clients, f.transports, f.doors = nil, nil, nil
	f.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	for _, t := range transports {
		t.Close()
	}
	for _, d := range doors {
		d.Close()
	}
	f.StopBroker()
	f.Fleet.Close()
}

// AuditRecords returns the records of the audit log at path that f
// selects. A torn last line is taken for the record a minion is writing
// at that moment, not for tampering: the records before it are returned.
func AuditRecords(path string, f audit.Filter) ([]audit.Record, error) {
	var out []audit.Record
	err := audit.Query([]string{path}, f, func(r audit.Record) error {
		out = append(out, r)
		return nil
	})
	if errors.Is(err, audit.ErrTorn) {
		err = nil
	}
	return out, err
}
