package overlord

import (
	"container/heap"
	"context"
	"fmt"
	"iter"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc/events"
)

// EventsOptions say where Selection.Events starts and whether it stops.
type EventsOptions struct {
	// Since holds the cursors to resume after, by minion (as a previous
	// run's EventItem.Cursor values, or events.ParseCursors of what func
	// events printed): no event at or before a minion's cursor is
	// yielded again. Minions without a cursor start at From.
	Since events.Cursors
	// From, for minions without a cursor, starts at the first event
	// written at or after it; zero starts at the oldest event each
	// journal keeps.
	From time.Time
	// Follow keeps reading after the backlog: each minion is long-polled
	// for new events until ctx ends. A minion that cannot be reached is
	// reported (an error) and tried again, at growing intervals up to a
	// minute.
	Follow bool
	// Wait is how long one long-poll waits for an event; zero means 25s.
	// The minion ends it before the call's HostTimeout (and never waits
	// over 30s).
	Wait time.Duration
	// Limit bounds the events one request asks for; zero means 1000 for
	// up to 100 minions, less for more (the backlog of every minion is
	// merged in memory one page each).
	Limit int
}

// EventItem is what Selection.Events yields: an event, or a notice
// about a minion's chain (a gap, a fork, a restart, a replaced
// journal, a line that failed its checks). Exactly one of Event and
// Notice is set, except with an error, when neither is.
type EventItem struct {
	// Host is the minion, as the certificate the overlord verified
	// names it; it is also Event.Minion (never a name in the event).
	Host   string
	Event  *events.Event
	Notice events.Notice
	// Cursor is Host's cursor after this item: keep the newest per host
	// (EventsOptions.Since) to resume with neither gaps nor duplicates.
	Cursor events.Cursor
}

// eventsMethod is the minion's long-poll.
const eventsMethod = "events.since"

// Events reads the selected minions' event journals (events.since):
// first each one's backlog after its cursor in opts.Since, merged
// across minions oldest first, then, with opts.Follow, new events as
// they arrive until ctx ends. Each event is checked against the
// minion's chain (events.Tracker): replays are dropped, and gaps,
// forks, restarts and replaced journals are yielded as notices, never
// hidden. A host that fails yields its *HostError (EventItem.Host set)
// and, without Follow, is not asked again; a selection that cannot
// start yields one error with a zero EventItem.
//
// The whole read is one overlord.call record (method events.since) in
// the overlord's audit log. Breaking out of the loop stops every
// long-poll and returns once they have ended.
func (s *Selection) Events(ctx context.Context, opts EventsOptions) iter.Seq2[EventItem, error] {
	return func(yield func(EventItem, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		targets, err := s.resolve(ctx)
		if err != nil {
			yield(EventItem{}, err)
			return
		}
		r := &run{c: s.c, id: newID(), hosts: sortedKeys(targets), req: &request{wire: eventsMethod}, spec: s.describe(),
			start: time.Now(), details: map[string]string{"since": opts.Since.String(), "follow": fmt.Sprint(opts.Follow)}}
		if !opts.From.IsZero() {
			r.details["from"] = opts.From.UTC().Format(time.RFC3339)
		}
		if err := s.c.auditStart(r); err != nil {
			yield(EventItem{}, err)
			return
		}
		rd := &eventReader{c: s.c, opts: opts, tracker: events.NewTracker(opts.Since), outcomes: map[string]error{}}
		rd.opts.Wait = orDefault(opts.Wait, 25*time.Second)
		rd.opts.Limit = orDefault(opts.Limit, max(10, min(events.MaxLimit, 100_000/max(1, len(r.hosts)))))
		defer func() { s.c.auditEnd(r, rd.outcomes, nil) }()
		live := rd.backlog(ctx, r.hosts, yield)
		if live == nil || !opts.Follow {
			return
		}
		rd.follow(ctx, live, yield)
	}
}

// cmp returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// eventReader is one Events iteration.
type eventReader struct {
	c       *Client
	opts    EventsOptions
	tracker *events.Tracker

	mu       sync.Mutex
	outcomes map[string]error // each host's last error (nil: its last request worked)
}

func (rd *eventReader) setOutcome(host string, err error) {
	rd.mu.Lock()
	rd.outcomes[host] = err
	rd.mu.Unlock()
}

// page is one answer of one host, turned into items.
type page struct {
	host  string
	items []EventItem
	more  bool
	err   error
}

// fetch asks host for the events after its cursor, waiting up to wait.
func (rd *eventReader) fetch(ctx context.Context, host string, wait time.Duration) page {
	q := rd.tracker.Request(host, rd.opts.Limit, wait)
	args := []any{q.Epoch, int64(q.Seq), q.Limit, wait.Seconds()}
	if q.Seq == 0 && !rd.opts.From.IsZero() {
		args = append(args, rd.opts.From.UTC())
	}
	req, err := newRequest("events", "since", args)
	if err != nil {
		return page{host: host, err: err}
	}
	res := rd.c.callHost(ctx, host, req)
	var b events.Batch
	if err := res.Decode(&b); err != nil {
		if res.Err == nil {
			err = &HostError{Host: host, Op: eventsMethod, Err: fmt.Errorf("%w: %v", ErrProtocol, err)}
		}
		rd.setOutcome(host, err)
		return page{host: host, err: err}
	}
	rd.setOutcome(host, nil)
	return page{host: host, items: rd.accept(host, b), more: b.More}
}

// accept checks b line by line, so that each notice comes just before
// the event it is about and each item carries the cursor after it.
func (rd *eventReader) accept(host string, b events.Batch) []EventItem {
	var out []EventItem
	add := func(evs []events.Event, ns []events.Notice) {
		cur := rd.tracker.Cursor(host)
		for _, n := range ns {
			out = append(out, EventItem{Host: host, Notice: n, Cursor: cur})
		}
		for i := range evs {
			out = append(out, EventItem{Host: host, Event: &evs[i], Cursor: cur})
		}
	}
	if len(b.Lines) == 0 {
		add(rd.tracker.Accept(host, b))
		return out
	}
	for i, l := range b.Lines {
		one := events.Batch{Epoch: b.Epoch, First: b.First, Head: b.Head, Reset: b.Reset && i == 0, Lines: []string{l}}
		add(rd.tracker.Accept(host, one))
	}
	return out
}

// nextPage fetches host's next page of the backlog (no waiting),
// skipping pages that held nothing to deliver (replays).
func (rd *eventReader) nextPage(ctx context.Context, host string) page {
	for {
		p := rd.fetch(ctx, host, 0)
		if p.err != nil || len(p.items) > 0 || !p.more {
			return p
		}
	}
}

// backlog yields every host's events up to its head, merged oldest
// first, and returns the hosts to follow (nil when the consumer
// stopped). A host whose first request failed is followed too (Follow
// retries it); one that failed later is not.
func (rd *eventReader) backlog(ctx context.Context, hosts []string, yield func(EventItem, error) bool) []string {
	first := make([]page, len(hosts))
	var g errgroup.Group
	g.SetLimit(rd.c.cfg.Forks)
	for i, h := range hosts {
		g.Go(func() error { first[i] = rd.nextPage(ctx, h); return nil })
	}
	_ = g.Wait()
	var m merge
	live := make([]string, 0, len(hosts))
	for _, p := range first {
		if p.err != nil {
			if !yield(EventItem{Host: p.host}, p.err) {
				return nil
			}
			live = append(live, p.host)
			continue
		}
		live = append(live, p.host)
		if len(p.items) > 0 {
			m.queues = append(m.queues, &queue{host: p.host, items: p.items, more: p.more})
		}
	}
	heap.Init(&m)
	for m.Len() > 0 {
		q := m.queues[0]
		it := q.items[0]
		q.items = q.items[1:]
		if !yield(it, nil) {
			return nil
		}
		if len(q.items) > 0 {
			heap.Fix(&m, 0)
			continue
		}
		heap.Pop(&m)
		if !q.more {
			continue
		}
		p := rd.nextPage(ctx, q.host)
		if p.err != nil {
			if !yield(EventItem{Host: p.host}, p.err) {
				return nil
			}
			continue
		}
		if len(p.items) > 0 {
			heap.Push(&m, &queue{host: p.host, items: p.items, more: p.more})
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return live
}

// follow long-polls every host at once and yields what arrives.
func (rd *eventReader) follow(ctx context.Context, hosts []string, yield func(EventItem, error) bool) {
	ctx, cancel := context.WithCancel(ctx)
	out := make(chan page)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() { rd.poll(ctx, h, out) })
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for {
		var p page
		select {
		case p = <-out:
		case <-ctx.Done():
			return
		}
		if p.err != nil {
			if !yield(EventItem{Host: p.host}, p.err) {
				return
			}
			continue
		}
		for _, it := range p.items {
			if !yield(it, nil) {
				return
			}
		}
	}
}

// Retry intervals of a host that failed while following.
const (
	followRetryMin = time.Second
	followRetryMax = time.Minute
)

// poll long-polls host until ctx ends, sending each non-empty page
// (and each failure) to out.
func (rd *eventReader) poll(ctx context.Context, host string, out chan<- page) {
	retry := followRetryMin
	for ctx.Err() == nil {
		p := rd.fetch(ctx, host, rd.opts.Wait)
		if ctx.Err() != nil {
			return
		}
		if p.err == nil && len(p.items) == 0 {
			retry = followRetryMin
			continue
		}
		select {
		case out <- p:
		case <-ctx.Done():
			return
		}
		if p.err == nil {
			retry = followRetryMin
			continue
		}
		t := time.NewTimer(retry)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		retry = min(2*retry, followRetryMax)
	}
}

// merge is a heap of per-host queues ordered by their next item's
// time: the backlog comes out oldest first across minions.
type merge struct{ queues []*queue }

type queue struct {
	host  string
	items []EventItem
	more  bool
}

// key is when the queue's next item happened: a notice sorts with the
// event after it.
func (q *queue) key() time.Time {
	for _, it := range q.items {
		if it.Event != nil {
			return it.Event.Time
		}
	}
	return time.Time{}
}

func (m merge) Len() int { return len(m.queues) }
func (m merge) Less(i, j int) bool {
	a, b := m.queues[i].key(), m.queues[j].key()
	if !a.Equal(b) {
		return a.Before(b)
	}
	return m.queues[i].host < m.queues[j].host
}
func (m merge) Swap(i, j int) { m.queues[i], m.queues[j] = m.queues[j], m.queues[i] }
func (m *merge) Push(x any)   { m.queues = append(m.queues, x.(*queue)) }
func (m *merge) Pop() any {
	old := m.queues
	q := old[len(old)-1]
	m.queues = old[:len(old)-1]
	return q
}
