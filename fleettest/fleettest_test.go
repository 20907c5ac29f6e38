package fleettest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMinionsHaveTheirOwnAddresses(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 3})
	seen := map[string]bool{}
	for i, m := range f.Minions() {
		host, _, err := net.SplitHostPort(m.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("127.0.0.%d", i+2); host != want {
			t.Errorf("%s listens on %s, want %s", m.Name, host, want)
		}
		seen[host] = true
		if got := m.Identity.Name(); got != m.Name {
			t.Errorf("certificate names %q, minion is %q", got, m.Name)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("addresses not distinct: %v", seen)
	}
}

func TestCustomModulesAndNoBuiltins(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 2, NoBuiltins: true,
		Modules: func(name string, srv *minion.Server) error { return srv.Register("whoami", &whoami{name: name}) }})
	res, err := f.Overlord().Targets("*").Call(t.Context(), "whoami", "name")
	if err != nil {
		t.Fatal(err)
	}
	for h, r := range res {
		if r.Value != h {
			t.Errorf("%s says it is %v", h, r.Value)
		}
	}
	_, err = f.Overlord().Targets("*").Call(t.Context(), "test", "ping")
	if !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Fatalf("with NoBuiltins, test.ping = %v, want no such method", err)
	}
}

type whoami struct{ name string }

func (w *whoami) Name() string { return w.name }

func TestDownAndUp(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	m := f.Minions()[0]
	m.Down()
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrUnreachable) {
		t.Fatalf("down: %v, want unreachable", err)
	}
	if err := m.Up(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("up again: %v", err)
	}
}

func TestFaults(t *testing.T) {
	// The fleet's host timeout is generous: only the slow minion's call
	// is meant to time out, with a client of its own.
	f := fleettest.Start(t, fleettest.Config{Minions: 1, HostTimeout: time.Minute})
	m := f.Minions()[0]
	m.SetFault(fleettest.Fault{Err: gofunc.Errorf(gofunc.CodeUnavailable, "maintenance"), Methods: []string{"test.ping"}})
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Fatalf("ping with injected fault: %v", err)
	}
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "echo", "x"); err != nil {
		t.Fatalf("echo is not in the fault's methods: %v", err)
	}
	m.SetFault(fleettest.Fault{Delay: time.Hour})
	start := time.Now()
	impatient := f.Client(overlord.WithHostTimeout(time.Second))
	if _, err := impatient.Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrTimeout) {
		t.Fatalf("slow minion: %v, want timeout", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("a 1s host timeout took %v against an hour's delay", d)
	}
	m.SetFault(fleettest.Fault{})
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("fault cleared: %v", err)
	}
}

func TestImpersonation(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	if err := f.Minions()[1].Impersonate("m1.test"); err != nil {
		t.Fatal(err)
	}
	res, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping")
	if !errors.Is(err, overlord.ErrImpersonation) {
		t.Fatalf("err = %v, want impersonation", err)
	}
	if res["m1.test"].Err != nil || !errors.Is(res["m2.test"].Err, overlord.ErrImpersonation) {
		t.Fatalf("results: %+v", res)
	}
}

func TestAs(t *testing.T) {
	acl, err := minion.ParseACL("t.acl", strings.NewReader("reader@overlord = test.ping\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{Minions: 1, ACL: acl})
	r := f.As(gofunc.RoleOverlord, "reader")
	if _, err := r.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("reader ping: %v", err)
	}
	if _, err := r.Targets("*").Call(t.Context(), "test", "echo", 1); !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("reader echo: %v, want denied", err)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := fleettest.New(fleettest.Config{Minions: 251}); err == nil {
		t.Fatal("251 minions accepted")
	}
	if _, err := fleettest.New(fleettest.Config{Subnet: "not an ip"}); err == nil {
		t.Fatal("bad subnet accepted")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	f, err := fleettest.New(fleettest.Config{Minions: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f.Close()
}

func Example() {
	f, err := fleettest.New(fleettest.Config{Minions: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	f.Minions()[2].Down()
	res, err := f.Overlord().Targets("*").Call(context.Background(), "test", "ping")
	for _, h := range res.Hosts() {
		fmt.Println(h, res[h].Value, errors.Is(res[h].Err, overlord.ErrUnreachable))
	}
	fmt.Println("failed:", res.Failed(), err != nil)
	// Output:
	// m1.test true false
	// m2.test true false
	// m3.test <nil> true
	// failed: [m3.test] true
}
