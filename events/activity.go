package events

import (
	"context"
	"sync"
)

// Activity counts the calls a minion is running, so that watchers set
// to pause during calls (Salt's disable_during_state_run) wait until it
// is idle. The minion calls Begin when a call starts and the function it
// returns when the call ends; watchers call WaitIdle. A nil *Activity is
// never busy. Safe for concurrent use.
type Activity struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while n == 0
}

// Begin records a call in progress; the returned function ends it (a
// second call of it does nothing).
func (a *Activity) Begin() (end func()) {
	if a == nil {
		return func() {}
	}
	a.mu.Lock()
	if a.n == 0 {
		a.idle = make(chan struct{})
	}
	a.n++
	a.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			a.n--
			if a.n == 0 {
				close(a.idle)
				a.idle = nil
			}
			a.mu.Unlock()
		})
	}
}

// Busy reports whether a call is running.
func (a *Activity) Busy() bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n > 0
}

// WaitIdle returns when no call is running, or with ctx's error.
func (a *Activity) WaitIdle(ctx context.Context) error {
	if a == nil {
		return ctx.Err()
	}
	a.mu.Lock()
	idle := a.idle
	a.mu.Unlock()
	if idle == nil {
		return ctx.Err()
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
