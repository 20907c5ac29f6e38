package web

import (
	"errors"
	"sync"
	"time"

	"github.com/gofunc/gofunc/overlord"
)

// jobWatches shares one poller of the job store per job among all the
// streams that follow the job: a hundred people watching a job cost one
// read per PollInterval, not a hundred.
type jobWatches struct {
	d  *Dashboard
	mu sync.Mutex
	m  map[string]*jobWatch
	wg sync.WaitGroup
}

// errClosed is what a stream gets after the dashboard's Close.
var errClosed = errors.New("web: dashboard closed")

// jobWatch is one job as its poller last read it.
type jobWatch struct {
	id   string
	refs int // under jobWatches.mu
	stop chan struct{}

	mu      sync.Mutex
	job     *overlord.Job
	err     error
	changed chan struct{} // closed, and replaced, when job or err changes
	ready   chan struct{} // closed after the first read
}

func newJobWatches(d *Dashboard) *jobWatches { return &jobWatches{d: d, m: map[string]*jobWatch{}} }

// acquire returns the watch of job id, starting its poller if no stream
// follows the job yet. Each acquire needs a release.
func (ws *jobWatches) acquire(id string) *jobWatch {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w := ws.m[id]
	if w == nil {
		w = &jobWatch{id: id, stop: make(chan struct{}), changed: make(chan struct{}), ready: make(chan struct{})}
		ws.m[id] = w
		if ws.d.closeCtx.Err() != nil {
			w.publish(nil, errClosed, true) // no poller after Close
		} else {
			ws.wg.Go(func() { ws.poll(w) })
		}
	}
	w.refs++
	return w
}

// release gives a watch back; the last one stops its poller.
func (ws *jobWatches) release(w *jobWatch) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if w.refs--; w.refs == 0 {
		delete(ws.m, w.id)
		close(w.stop)
	}
}

// close waits for the pollers, which end with the dashboard's Close.
func (ws *jobWatches) close() { ws.wg.Wait() }

// poll reads the job until it is finished, it fails to read, no one
// follows it any more or the dashboard closes.
func (ws *jobWatches) poll(w *jobWatch) {
	t := time.NewTicker(ws.d.cfg.PollInterval)
	defer t.Stop()
	first := true
	for {
		job, err := ws.d.cfg.Overlord.Job(ws.d.closeCtx, w.id)
		w.publish(job, err, first)
		first = false
		if err != nil || job.State.Finished() {
			return
		}
		select {
		case <-t.C:
		case <-w.stop:
			return
		case <-ws.d.closeCtx.Done():
			return
		}
	}
}

// publish stores what a read found and wakes the streams when it
// differs from what they have: another state, more results, or a
// replaced one (a larger sequence number).
func (w *jobWatch) publish(job *overlord.Job, err error, first bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if first {
		defer close(w.ready)
	}
	if !first && err == nil && w.err == nil && sameProgress(w.job, job) {
		return
	}
	w.job, w.err = job, err
	close(w.changed)
	w.changed = make(chan struct{})
}

func sameProgress(a, b *overlord.Job) bool {
	return a.State == b.State && len(a.Results) == len(b.Results) && maxSeq(a) == maxSeq(b)
}

func maxSeq(j *overlord.Job) int64 {
	var m int64
	for _, r := range j.Results {
		m = max(m, r.Seq)
	}
	return m
}

// current returns the job as last read (or why it could not be read),
// and a channel closed when that changes.
func (w *jobWatch) current() (*overlord.Job, <-chan struct{}, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.job, w.changed, w.err
}
