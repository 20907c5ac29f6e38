// Package fleettest starts a whole gofunc fleet inside a test, the way
// net/http/httptest starts a server: a CA in a temporary directory, N
// in-process minions, each on its own loopback address (127.0.0.2,
// 127.0.0.3, ...) with real mutual TLS, and an overlord wired to them.
//
//	func TestDeploy(t *testing.T) {
//		f := fleettest.Start(t, fleettest.Config{Minions: 3})
//		res, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping")
//		...
//	}
//
// Start stops everything through t.Cleanup; New and Close do the same
// for programs and Example functions. Faults can be injected per minion
// (Down, Slow, failing methods, a certificate naming another host) to
// test how callers cope.
package fleettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
	"github.com/gofunc/gofunc/overlord"
)

// Config describes the fleet. Zero fields mean the defaults noted.
type Config struct {
	// Minions is how many minions to start; zero means 1. At most 250:
	// each gets its own address in 127.0.0.0/24, from 127.0.0.2 on.
	Minions int
	// Name returns minion i's name (i from 1); nil means "m<i>.test".
	Name func(i int) string
	// Modules, if set, registers extra modules on each minion (after
	// the built-ins, unless NoBuiltins).
	Modules func(name string, srv *minion.Server) error
	// NoBuiltins leaves the built-in modules off; the minion still has
	// its system module.
	NoBuiltins bool
	// ACL is each minion's ACL; nil means minion.DefaultACL.
	ACL *minion.ACL
	// HostTimeout is the overlord's per-host timeout; zero means 10s.
	HostTimeout time.Duration
	// Subnet is the first three octets of the minions' addresses; empty
	// means "127.0.0". Fleets in parallel tests may use different ones.
	Subnet string
	// Events gives each minion an event journal (Minion.Journal) in the
	// fleet's directory, served by events.since. A minion stopped by Down
	// and started by Up opens it again, as a restarted funcd does: a new
	// epoch, the same chain.
	Events bool
}

// Fleet is a running CA, minions and overlord.
type Fleet struct {
	// Dir is the temporary directory everything lives in.
	Dir string
	// CA is the fleet's certificate authority.
	CA *ca.Authority

	cfg      Config
	minions  []*Minion
	overlord *overlord.Client
	admin    *identity.Identity

	mu      sync.Mutex
	clients []*overlord.Client
	ownDir  bool
}

// Minion is one running minion.
type Minion struct {
	Name      string
	Addr      string // host:port it listens on
	AuditPath string
	Server    *minion.Server
	Identity  *identity.Identity

	fleet *Fleet
	trail *audit.Log
	jour  *events.Journal // under mu
	done  chan error
	ln    net.Listener
	mu    sync.Mutex // serializes Down, Up and Impersonate
	down  bool
	// fault is read by every call without a lock: Down holds mu while
	// it waits for the calls in flight to end, so a call that waited
	// for mu would never end.
	fault atomic.Pointer[Fault]
}

// Start starts a fleet for a test and stops it when the test ends. It
// fails the test if the fleet cannot start.
func Start(tb testing.TB, cfg Config) *Fleet {
	tb.Helper()
	f, err := newFleet(cfg, tb.TempDir())
	if err != nil {
		tb.Fatalf("fleettest: %v", err)
	}
	tb.Cleanup(f.Close)
	return f
}

// New starts a fleet in a new temporary directory; Close stops it and
// removes the directory.
func New(cfg Config) (*Fleet, error) {
	dir, err := os.MkdirTemp("", "fleettest-")
	if err != nil {
		return nil, err
	}
	f, err := newFleet(cfg, dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	f.ownDir = true
	return f, nil
}

func newFleet(cfg Config, dir string) (*Fleet, error) {
	if cfg.Minions == 0 {
		cfg.Minions = 1
	}
	if cfg.Minions < 0 || cfg.Minions > 250 {
		return nil, fmt.Errorf("Minions = %d, want 1..250", cfg.Minions)
	}
	if cfg.Name == nil {
		cfg.Name = func(i int) string { return fmt.Sprintf("m%d.test", i) }
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "127.0.0"
	}
	if cfg.HostTimeout == 0 {
		cfg.HostTimeout = 10 * time.Second
	}
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return nil, err
	}
	f := &Fleet{Dir: dir, CA: authority, cfg: cfg}
	for i := 1; i <= cfg.Minions; i++ {
		m, err := f.startMinion(i)
		if err != nil {
			f.Close()
			return nil, err
		}
		f.minions = append(f.minions, m)
	}
	f.admin, err = authority.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		f.Close()
		return nil, err
	}
	f.overlord = f.client(f.admin)
	return f, nil
}

func (f *Fleet) startMinion(i int) (*Minion, error) {
	name := f.cfg.Name(i)
	ip := net.ParseIP(fmt.Sprintf("%s.%d", f.cfg.Subnet, i+1))
	if ip == nil {
		return nil, fmt.Errorf("bad subnet %q", f.cfg.Subnet)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return nil, fmt.Errorf("minion %s: %w", name, err)
	}
	id, err := f.CA.Issue(gofunc.RoleMinion, name, ca.IssueOptions{IPs: []net.IP{ip}, Addr: ln.Addr().String()})
	if err != nil {
		ln.Close()
		return nil, err
	}
	m := &Minion{Name: name, Addr: ln.Addr().String(), Identity: id, fleet: f, ln: ln,
		AuditPath: filepath.Join(f.Dir, "minions", name, "audit.log")}
	if err := m.serve(); err != nil {
		ln.Close()
		return nil, err
	}
	return m, nil
}

// serve builds the minion's server on its listener and starts it.
func (m *Minion) serve() error {
	cfg := m.fleet.cfg
	if err := os.MkdirAll(filepath.Dir(m.AuditPath), 0o700); err != nil {
		return err
	}
	trail, err := audit.Open(m.AuditPath, audit.Config{})
	if err != nil {
		return err
	}
	srv := &minion.Server{Identity: m.Identity, Audit: trail, ACL: cfg.ACL, Intercept: m.intercept}
	fail := func(err error) error {
		trail.Close()
		if srv.Events != nil {
			srv.Events.Close()
		}
		return err
	}
	if cfg.Events {
		j, err := events.Open(filepath.Join(filepath.Dir(m.AuditPath), "events"), events.Config{})
		if err != nil {
			return fail(err)
		}
		srv.Events = j
	}
	if !cfg.NoBuiltins {
		state := filepath.Join(filepath.Dir(m.AuditPath), "state")
		if err := modules.Register(srv, modules.Config{StateDir: state}); err != nil {
			return fail(err)
		}
	}
	if cfg.Modules != nil {
		if err := cfg.Modules(m.Name, srv); err != nil {
			return fail(fmt.Errorf("minion %s: modules: %w", m.Name, err))
		}
	}
	m.jour = srv.Events
	m.Server, m.trail, m.done = srv, trail, make(chan error, 1)
	// Started before the fleet is handed out, so that a call through
	// another door (Handle) finds the minion ready, as HTTPS callers do.
	if err := srv.Start(); err != nil {
		return fail(fmt.Errorf("minion %s: %w", m.Name, err))
	}
	ln := m.ln
	go func() { m.done <- srv.Serve(ln) }()
	return nil
}

// Minions returns the fleet's minions, in order.
func (f *Fleet) Minions() []*Minion { return f.minions }

// Minion returns the minion named name, or nil.
func (f *Fleet) Minion(name string) *Minion {
	for _, m := range f.minions {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Overlord returns a client with an overlord certificate named "admin",
// wired to every minion. The fleet closes it.
func (f *Fleet) Overlord() *overlord.Client { return f.overlord }

// As returns a client whose certificate has the given role and name,
// for ACL tests. The fleet closes it.
func (f *Fleet) As(role gofunc.Role, name string) *overlord.Client {
	id, err := f.CA.Issue(role, name, ca.IssueOptions{})
	if err != nil {
		return overlord.New(overlord.WithMinions(overlord.Static(nil)), func(*overlord.Config) error { return err })
	}
	return f.client(id)
}

// client builds an overlord client for id, wired to the fleet.
func (f *Fleet) client(id *identity.Identity, opts ...overlord.Option) *overlord.Client {
	list := make(overlord.Static, 0, len(f.minions))
	for _, m := range f.minions {
		list = append(list, overlord.Minion{Name: m.Name, Addr: m.Addr})
	}
	base := []overlord.Option{overlord.WithIdentity(id), overlord.WithMinions(list),
		overlord.WithHostTimeout(f.cfg.HostTimeout)}
	c := overlord.New(append(base, opts...)...)
	f.mu.Lock()
	f.clients = append(f.clients, c)
	f.mu.Unlock()
	return c
}

// Client returns an "admin" overlord client with extra options, for
// tests that need another fan-out limit or timeout. The fleet closes it.
func (f *Fleet) Client(opts ...overlord.Option) *overlord.Client {
	return f.client(f.admin, opts...)
}

// Admin returns the overlord identity Overlord uses.
func (f *Fleet) Admin() *identity.Identity { return f.admin }

// Close stops every minion and client and, for a fleet made by New,
// removes its directory. It is idempotent.
func (f *Fleet) Close() {
	f.mu.Lock()
	clients := f.clients
	f.clients = nil
	f.mu.Unlock()
	for _, c := range clients {
		c.Close()
	}
	for _, m := range f.minions {
		m.stop()
	}
	if f.ownDir {
		os.RemoveAll(f.Dir)
		f.ownDir = false
	}
}

// Down stops the minion: its address refuses connections until Up.
func (m *Minion) Down() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return
	}
	m.stopLocked()
	m.down = true
}

// Up restarts a minion stopped by Down, on the same address.
func (m *Minion) Up() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.down {
		return nil
	}
	ln, err := net.Listen("tcp", m.Addr)
	if err != nil {
		return err
	}
	m.ln = ln
	if err := m.serve(); err != nil {
		ln.Close()
		return err
	}
	m.down = false
	return nil
}

func (m *Minion) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.down {
		m.stopLocked()
		m.down = true
	}
}

func (m *Minion) stopLocked() {
	if m.Server == nil {
		m.ln.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := m.Server.Shutdown(ctx); err != nil {
		m.Server.Close()
	}
	if err := <-m.done; err != nil && !errors.Is(err, minion.ErrServerClosed) {
		_ = err // the listener is gone either way
	}
	m.trail.Close()
	if m.jour != nil {
		m.jour.Close()
	}
}

// Journal returns the minion's event journal (Config.Events), nil
// without one. It changes when the minion is started again by Up.
func (m *Minion) Journal() *events.Journal {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.jour
}

// Fault is what a minion does wrong, set with Minion.SetFault.
type Fault struct {
	// Delay holds every call this long before it runs (the caller's
	// deadline still applies).
	Delay time.Duration
	// Err, if set, is answered in place of every call's result.
	Err error
	// Answer, if set (and Err is not), is answered in place of every
	// call's result: a minion that lies.
	Answer any
	// Methods limits the fault to these "module.method" names; empty
	// means every call.
	Methods []string
}

// SetFault makes the minion misbehave until SetFault(Fault{}).
func (m *Minion) SetFault(f Fault) {
	f.Methods = slices.Clone(f.Methods)
	m.fault.Store(&f)
}

func (m *Minion) intercept(ctx context.Context, call *minion.Call, next func(context.Context) (any, error)) (any, error) {
	f := m.fault.Load()
	if f == nil {
		return next(ctx)
	}
	if len(f.Methods) > 0 && !slices.Contains(f.Methods, call.Method) {
		return next(ctx)
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	if f.Err != nil {
		return nil, f.Err
	}
	if f.Answer != nil {
		return f.Answer, nil
	}
	return next(ctx)
}

// Impersonate restarts the minion with a certificate that names another
// host, on the same address: an overlord dialling it must refuse it.
func (m *Minion) Impersonate(otherName string) error {
	id, err := m.fleet.CA.Issue(gofunc.RoleMinion, otherName, ca.IssueOptions{})
	if err != nil {
		return err
	}
	m.Down()
	m.mu.Lock()
	m.Identity = id
	m.mu.Unlock()
	return m.Up()
}
