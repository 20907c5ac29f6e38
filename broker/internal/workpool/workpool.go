// Package workpool runs short tasks on goroutines kept from one task to
// the next. The broker's per-call work (a minion's door handling a
// call; the caller waiting for and verifying one minion's answer) needs
// a deep stack (envelope checks, ECDSA, XML-RPC, the write-ahead audit
// record); a new goroutine per call starts small and grows its stack by
// copying, several times per call (~3% of the CPU of a warm fan-out in
// BenchmarkPingOverBroker, 6.5% before). A kept goroutine has grown it
// already.
package workpool

import "sync"

// Pool keeps idle workers while it has users: Open counts one, Close
// uncounts it, and when the last user closes the idle workers exit (so
// that nothing outlives the doors and transports that used it). At
// most MaxIdle workers wait between tasks. The zero Pool is ready.
type Pool struct {
	mu    sync.Mutex
	idle  []chan func()
	users int
}

// MaxIdle bounds the workers waiting for a task.
const MaxIdle = 256

// Go runs f on an idle worker, or on a new one.
func (p *Pool) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		ch := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		ch <- f
		return
	}
	p.mu.Unlock()
	go p.work(f)
}

// work runs f, then waits for the next task until told to stop.
func (p *Pool) work(f func()) {
	ch := make(chan func())
	for f != nil {
		f()
		p.mu.Lock()
		if p.users == 0 || len(p.idle) >= MaxIdle {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		f = <-ch
	}
}

// Open counts a user.
func (p *Pool) Open() {
	p.mu.Lock()
	p.users++
	p.mu.Unlock()
}

// Close uncounts a user (call it once per Open); after the last one,
// the idle workers exit, and busy ones once their task is done.
func (p *Pool) Close() {
	p.mu.Lock()
	p.users--
	var idle []chan func()
	if p.users <= 0 {
		p.users = 0
		idle, p.idle = p.idle, nil
	}
	p.mu.Unlock()
	for _, ch := range idle {
		close(ch)
	}
}

// Idle is how many workers wait for a task.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
