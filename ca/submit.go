package ca

import "sync"

// maxSubmitBatch bounds how many enrollment requests share one txn, so
// that the first of a flood does not wait for all of it.
const maxSubmitBatch = 256

// submitQueue groups concurrent Submits into one txn: the first caller
// to find no group in progress leads, takes every request queued so far
// (its own included) and commits them together; callers arriving
// meanwhile queue for the next group, whose leader is woken when the
// current one is done. It is the audit log's group commit, one level up.
type submitQueue struct {
	mu      sync.Mutex
	queue   []*submitItem
	leading bool
}

type submitItem struct {
	v        *validated
	req      Request
	autosign string
	pre      *issued // signed ahead, if it will most likely be signed

	res  Result
	err  error
	lead bool          // set when the item is promoted to leader
	wake chan struct{} // receives once: done, or lead
}

// do submits it and returns its outcome.
func (q *submitQueue) do(a *Authority, it *submitItem) (Result, error) {
	it.wake = make(chan struct{}, 1)
	q.mu.Lock()
	q.queue = append(q.queue, it)
	if q.leading {
		q.mu.Unlock()
		<-it.wake
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

	a.submitBatch(batch)

	q.mu.Lock()
	for _, o := range batch {
		if o != it {
			o.wake <- struct{}{}
		}
	}
	if len(q.queue) > 0 {
		next := q.queue[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		q.leading = false
	}
	q.mu.Unlock()
	return it.res, it.err
}
