package fleettest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/gofunc/gofunc/minion"
)

// gate is a module whose Hold call ignores its context and returns only
// when the test releases it: a method that keeps a minion's shutdown
// waiting.
type gate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *gate) Hold(context.Context) bool {
	close(g.entered)
	<-g.release
	return true
}

// While Down waits for a call in flight, the minion's faults can still
// be set and read: a call that reaches the interceptor then (it arrived
// just before the shutdown) must not wait for Down, which waits for it.
// Each step is bounded by a context, so the old deadlock fails the test
// instead of hanging it.
func TestFaultsDoNotWaitForDown(t *testing.T) {
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	f := Start(t, Config{Minions: 1, HostTimeout: time.Minute,
		Modules: func(_ string, srv *minion.Server) error { return srv.Register("gate", g) }})
	m := f.Minions()[0]
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	released := false
	release := func() {
		if !released {
			close(g.release)
			released = true
		}
	}
	defer release()

	held := make(chan error, 1)
	go func() {
		_, err := f.Overlord().Targets("*").Call(ctx, "gate", "hold")
		held <- err
	}()
	select {
	case <-g.entered:
	case err := <-held:
		t.Fatalf("gate.hold returned before it was released: %v", err)
	case <-ctx.Done():
		t.Fatal("gate.hold never started")
	}

	downed := make(chan struct{})
	go func() { m.Down(); close(downed) }()
	waitRefused(ctx, t, m.Addr) // Down is shutting the server down, holding m.mu

	within(ctx, t, "SetFault during Down", func() { m.SetFault(Fault{Delay: time.Millisecond}) })
	within(ctx, t, "a call reaching the interceptor during Down", func() {
		v, err := m.intercept(ctx, &minion.Call{Method: "test.ping"}, func(context.Context) (any, error) { return true, nil })
		if v != true || err != nil {
			t.Errorf("intercept = %v, %v; want the method's answer", v, err)
		}
	})

	release()
	after, cancelAfter := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancelAfter()
	select {
	case <-downed:
	case <-after.Done():
		t.Fatal("Down did not return once the call in flight ended")
	}
	if err := <-held; err != nil {
		t.Errorf("the call Down waited for: %v", err)
	}
}

// waitRefused waits until nothing accepts connections on addr.
func waitRefused(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("%s still accepts connections", addr)
			}
			return
		}
		c.Close()
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// within runs fn and fails the test if it has not returned when ctx
// ends (fn is left running: the test's cleanup unblocks it).
func within(ctx context.Context, t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Errorf("%s: still blocked: %v", what, ctx.Err())
	}
}
