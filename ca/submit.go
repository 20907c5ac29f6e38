package ca

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/gofunc/gofunc"
)

// maxSubmitBatch bounds how many enrollment requests share one txn, so
// that the first of a flood does not wait for all of it.
const maxSubmitBatch = 256

// errGroupAborted answers the requests of a group whose leader did not
// finish (it panicked): internal, so the client retries.
var errGroupAborted = &gofunc.Fault{Code: gofunc.CodeInternal, Message: "ca: internal error"}

// submitQueue groups concurrent Submits into one txn: the first caller
// to find no group in progress leads, takes every request queued so far
// (its own included) and commits them together; callers arriving
// meanwhile queue for the next group, whose leader is woken when the
// current one is done. It is the audit log's group commit, one level up.
//
// The queue never stalls: a leader hands over when its group is done
// even if it panicked (its group then gets errGroupAborted), and a
// caller whose context ends while it waits leaves the queue, passing on
// the lead if it had just been given it.
type submitQueue struct {
	mu      sync.Mutex
	queue   []*submitItem
	leading bool
}

type submitItem struct {
	ctx      context.Context
	v        *validated
	req      Request
	autosign string
	pre      *issued // signed ahead, if it will most likely be signed

	res  Result
	err  error
	lead bool          // set when the item is promoted to leader
	wake chan struct{} // receives once: done, or lead
}

// do submits it, in a group that run commits, and returns its outcome,
// or ctx's error if ctx ends while it waits for its group. A request
// given up on while its group is being committed may be committed still:
// a retry then finds it (signed, or stored as pending).
func (q *submitQueue) do(ctx context.Context, it *submitItem, run func([]*submitItem)) (Result, error) {
	it.ctx = ctx
	it.wake = make(chan struct{}, 1)
	q.mu.Lock()
	q.queue = append(q.queue, it)
	if q.leading {
		q.mu.Unlock()
		select {
		case <-it.wake:
		case <-ctx.Done():
			q.withdraw(it)
			return Result{}, fmt.Errorf("ca: submit: %w", ctx.Err())
		}
		if !it.lead {
			return it.res, it.err
		}
		q.mu.Lock()
	}
	q.leading = true
	n := min(len(q.queue), maxSubmitBatch)
	batch := q.queue[:n:n]
	q.queue = q.queue[n:]
	q.mu.Unlock()

	finished := false
	defer func() {
		if !finished {
			for _, o := range batch {
				o.res, o.err = Result{}, errGroupAborted
			}
		}
		q.handOver(batch, it)
	}()
	run(batch)
	finished = true
	return it.res, it.err
}

// handOver wakes the members of a finished group and the next leader.
func (q *submitQueue) handOver(batch []*submitItem, leader *submitItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range batch {
		if o != leader {
			o.wake <- struct{}{}
		}
	}
	q.promoteNext()
}

// promoteNext wakes the first queued item as the next leader, or notes
// that no group is in progress. q.mu is held.
func (q *submitQueue) promoteNext() {
	if len(q.queue) == 0 {
		q.leading = false
		return
	}
	next := q.queue[0]
	next.lead = true
	next.wake <- struct{}{}
}

// withdraw takes it, whose caller gave up, out of the queue; if it had
// been made the next leader, the lead passes on. An item no longer
// queued is in a group being committed: its result is dropped (wake is
// buffered, so the leader does not wait for anyone to read it).
func (q *submitQueue) withdraw(it *submitItem) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, o := range q.queue {
		if o == it {
			q.queue = append(q.queue[:i:i], q.queue[i+1:]...)
			if it.lead {
				q.promoteNext()
			}
			return
		}
	}
}

// groupContext returns a context that ends when the contexts of all
// items have ended: a group gives up waiting for the lock only when
// nobody waits for its answers any more.
func groupContext(items []*submitItem) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(items[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(items)))
	stops := make([]func() bool, len(items))
	for i, it := range items {
		stops[i] = context.AfterFunc(it.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
