package minion

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

// Every refused request is accounted for in the audit log, but a caller
// refused again and again must not be able to fill the disk with
// records (any certificate can send calls it is not allowed to make).
// So refusal records (call.denied, call.rejected) are rate limited per
// caller: a burst, then a steady trickle; the refusals beyond it are
// counted, and one call.suppressed record per caller says how many
// there were, within refusalSummaryEvery of the first and when the
// server stops.
const (
	refusalBurst        = 20
	refusalRate         = rate.Limit(1) // records a second once the burst is spent
	refusalSummaryEvery = 10 * time.Second
	// maxRefusalCallers bounds the callers tracked at once; beyond it
	// new callers share one entry (and one summary).
	maxRefusalCallers = 4096
	// maxSuppressedMethods bounds the method names a summary lists.
	maxSuppressedMethods = 8
)

// refusalLog decides which refusals get a record of their own.
type refusalLog struct {
	mu      sync.Mutex
	callers map[string]*callerRefusals
}

// callerRefusals is one caller's budget and what it has had suppressed.
type callerRefusals struct {
	limiter *rate.Limiter
	peer    gofunc.Peer // the caller, as last seen
	shared  bool        // the overflow entry, shared by many callers
	// Suppressed refusals since the last summary.
	counts      map[string]uint64 // by record kind
	methods     []string
	first, last time.Time
}

// suppressed is one summary to write.
type suppressed struct {
	peer        gofunc.Peer
	shared      bool
	counts      map[string]uint64
	methods     []string
	first, last time.Time
}

// refusalKey names a caller: its certificate when it showed one (also a
// revoked one), else its address.
func refusalKey(p gofunc.Peer) string {
	if p.Serial != "" {
		return "serial " + p.Serial
	}
	host, _, err := net.SplitHostPort(p.Addr)
	if err != nil {
		host = p.Addr
	}
	return "addr " + host
}

// admit reports whether a refusal of kind from p may have its own record
// now. When it may not, the refusal is counted for p's next summary.
func (l *refusalLog) admit(now time.Time, p gofunc.Peer, kind, method string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.caller(p)
	if c.limiter.AllowN(now, 1) {
		return true
	}
	if len(c.counts) == 0 {
		c.counts, c.methods, c.first = map[string]uint64{}, nil, now
	}
	c.counts[kind]++
	c.last = now
	if method != "" && len(c.methods) < maxSuppressedMethods && !slices.Contains(c.methods, method) {
		c.methods = append(c.methods, method)
	}
	return false
}

func (l *refusalLog) caller(p gofunc.Peer) *callerRefusals {
	key := refusalKey(p)
	if c, ok := l.callers[key]; ok {
		c.peer = p
		return c
	}
	if l.callers == nil {
		l.callers = make(map[string]*callerRefusals)
	}
	if len(l.callers) >= maxRefusalCallers {
		const overflow = "(many callers)"
		c, ok := l.callers[overflow]
		if !ok {
			c = &callerRefusals{limiter: rate.NewLimiter(refusalRate, refusalBurst), shared: true}
			l.callers[overflow] = c
		}
		return c
	}
	c := &callerRefusals{limiter: rate.NewLimiter(refusalRate, refusalBurst), peer: p}
	l.callers[key] = c
	return c
}

// due takes the summaries to write now: those whose first suppressed
// refusal is refusalSummaryEvery old, or all of them when final. It
// forgets callers with nothing pending and a full budget.
func (l *refusalLog) due(now time.Time, final bool) []suppressed {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []suppressed
	for key, c := range l.callers {
		if len(c.counts) > 0 && (final || now.Sub(c.first) >= refusalSummaryEvery) {
			out = append(out, suppressed{peer: c.peer, shared: c.shared, counts: c.counts, methods: c.methods, first: c.first, last: c.last})
			c.counts, c.methods = nil, nil
		}
		if len(c.counts) == 0 && c.limiter.TokensAt(now) >= refusalBurst {
			delete(l.callers, key)
		}
	}
	return out
}

// record is the call.suppressed record of a summary.
func (sum suppressed) record() audit.Record {
	var total uint64
	details := map[string]string{
		"first": sum.first.UTC().Format(time.RFC3339Nano),
		"last":  sum.last.UTC().Format(time.RFC3339Nano),
	}
	for kind, n := range sum.counts {
		total += n
		details[strings.TrimPrefix(kind, "call.")] = strconv.FormatUint(n, 10)
	}
	details["suppressed"] = strconv.FormatUint(total, 10)
	if len(sum.methods) > 0 {
		details["methods"] = strings.Join(sum.methods, ",")
	}
	rec := audit.Record{
		Kind:    audit.KindCallsSuppressed,
		Error:   fmt.Sprintf("%d more refusals not recorded one by one (rate limit per caller)", total),
		Details: details,
	}
	if sum.shared {
		details["callers"] = "many: the refusal records of new callers are rate limited together"
	} else {
		rec.Caller, rec.Role, rec.Serial, rec.Remote = sum.peer.Name, string(sum.peer.Role), sum.peer.Serial, sum.peer.Addr
	}
	return rec
}

// sweepRefusals writes the summaries that are due, once a second, until
// stop is closed.
func (s *Server) sweepRefusals(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			s.writeSuppressed(s.refusals.due(now, false))
		}
	}
}

func (s *Server) writeSuppressed(sums []suppressed) {
	for _, sum := range sums {
		rec := sum.record()
		s.logger().Warn("refusals suppressed", "caller", rec.Caller, "serial", rec.Serial, "remote", rec.Remote, "count", rec.Details["suppressed"], "methods", rec.Details["methods"])
		if _, err := s.Audit.Append(rec); err != nil {
			s.logger().Error("audit write failed", "kind", rec.Kind, "error", err)
		}
	}
}
