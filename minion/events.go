package minion

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/identity"
)

// DefaultMaxPolls is the default of Server.MaxPolls.
const DefaultMaxPolls = 256

// pollMethod is the events journal's long-poll.
const pollMethod = "events.since"

// Outcome is how a request ended, as CallObservation reports it.
type Outcome string

// Outcomes.
const (
	OutcomeOK          Outcome = "ok"           // the method answered
	OutcomeFault       Outcome = "fault"        // the method answered with a fault (its error, a timeout...)
	OutcomeDenied      Outcome = "denied"       // the ACL, or the caller's certificate, refused it
	OutcomeRejected    Outcome = "rejected"     // it never reached a method: bad request, no such method, bad arguments
	OutcomeBusy        Outcome = "busy"         // refused: MaxConcurrent (or MaxPolls) calls in flight
	OutcomeAuditFailed Outcome = "audit_failed" // refused: the audit log could not be written
)

// CallObservation is one request the dispatcher answered, for
// Server.Observe.
type CallObservation struct {
	// Module and Method name the method called ("test", "ping") when it
	// exists on this minion; both are "" for a request that named
	// none, so that a caller cannot make up label values.
	Module, Method string
	Outcome        Outcome
	// Duration runs from the request's arrival to its answer (an async
	// call's answer is its job id).
	Duration time.Duration
	// Job is set on an async call's second observation, when its job
	// ends: Outcome is then ok or fault (how the method ended, which the
	// first observation, made when the job started and answered with
	// its id, could not know) and Duration runs from the request's
	// arrival to the job's end.
	Job bool
}

// lifecycle writes a lifecycle event to the journal, if there is one. A
// journal that fails is logged, never a reason to stop.
func (s *Server) lifecycle(l events.Lifecycle) {
	if s.Events == nil {
		return
	}
	if _, err := s.Events.Lifecycle(l); err != nil {
		s.logger().Error("lifecycle event not written", "phase", l.Phase, "error", err)
	}
}

// certLifecycle is a lifecycle event naming the certificate in use.
func certLifecycle(phase events.Phase, id *identity.Identity) events.Lifecycle {
	leaf := id.Leaf()
	return events.Lifecycle{Phase: phase, Serial: leaf.SerialNumber.Text(16), NotAfter: leaf.NotAfter}
}

// buildVersion is the main module's version, for lifecycle.started.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return ""
}

// isBuiltin reports whether m belongs to one of the minion's own modules
// (system, jobs, events): reading the minion, not working on the host.
func (m *method) isBuiltin() bool { return reserved[m.module] }

// begin counts a module call as activity (for watchers that pause
// during calls); the minion's own modules do not count.
func (s *Server) begin(req *request) (end func()) {
	if s.Activity == nil || req.meth == nil || req.meth.isBuiltin() {
		return func() {}
	}
	return s.Activity.Begin()
}

// observe reports how req ended to Observe, if set.
func (s *Server) observe(req *request, o Outcome) {
	if s.Observe == nil {
		return
	}
	ob := CallObservation{Outcome: o, Duration: time.Since(req.start)}
	if req.meth != nil {
		ob.Module, ob.Method = req.meth.module, req.meth.wire
	}
	s.Observe(ob)
}

// observeJob reports how an async call's job ended to Observe, if set.
func (s *Server) observeJob(req *request, fault *gofunc.Fault) {
	if s.Observe == nil {
		return
	}
	ob := CallObservation{Module: req.meth.module, Method: req.meth.wire, Outcome: OutcomeOK, Duration: time.Since(req.start), Job: true}
	if fault != nil {
		ob.Outcome = OutcomeFault
	}
	s.Observe(ob)
}

// pollAuditInterval is how often an empty poll of one caller is
// recorded.
const pollAuditInterval = time.Minute

// pollAudit samples the audit records of empty events.since answers:
// the first of each caller, then one a minute, each saying how many
// were left out since.
type pollAudit struct {
	mu      sync.Mutex
	callers map[string]*pollCaller // by certificate serial
}

type pollCaller struct {
	last    time.Time
	skipped int
}

// maxPollCallers bounds pollAudit's table; callers idle for longer than
// an interval are dropped first.
const maxPollCallers = 4096

// due reports whether an empty poll of serial is to be recorded now and
// how many were left out before it (reset when due).
func (p *pollAudit) due(serial string, now time.Time) (bool, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.callers == nil {
		p.callers = map[string]*pollCaller{}
	}
	c := p.callers[serial]
	if c == nil {
		if len(p.callers) >= maxPollCallers {
			for k, v := range p.callers {
				if now.Sub(v.last) > pollAuditInterval {
					delete(p.callers, k)
				}
			}
		}
		c = &pollCaller{}
		p.callers[serial] = c
	}
	if !c.last.IsZero() && now.Sub(c.last) < pollAuditInterval {
		c.skipped++
		return false, 0
	}
	skipped := c.skipped
	c.last, c.skipped = now, 0
	return true, skipped
}

// runPoll runs an events.since call. A long-poll waits for most of its
// deadline, so it has slots of its own (MaxPolls), not MaxConcurrent's,
// and it reads and changes nothing on the host: its records are written
// once the answer is known, an answer with events always (and its
// events are sent only if the records were written), an empty one only
// as pollAudit samples it.
func (s *Server) runPoll(ctx context.Context, rep *reply, req *request, body callBody) {
	select {
	case s.pollSem <- struct{}{}:
		defer func() { <-s.pollSem }()
	default:
		s.busy(rep, req, fmt.Sprintf("minion busy: %d event polls waiting", cap(s.pollSem)))
		return
	}
	args, ok := s.decodeArgs(rep, req, body)
	if !ok {
		return
	}
	s.stats.calls.Add(1)
	result, err := s.run(ctx, req, args)
	answer, fault := s.encodeOutcome(ctx, req, result, err)
	if b, ok := result.(events.Batch); ok && fault == nil && len(b.Lines) == 0 && !b.Reset {
		due, skipped := s.polls.due(req.peer.Serial, time.Now())
		if !due {
			rep.body = answer
			s.observe(req, OutcomeOK)
			return
		}
		req.pollsSkipped = skipped
	}
	if err := s.auditStart(req); err != nil {
		s.auditFailed(rep, req, err)
		return
	}
	s.auditEnd(req, fault, answer)
	rep.body, rep.head = answer, req.head
	if fault != nil {
		s.observe(req, OutcomeFault)
		return
	}
	s.observe(req, OutcomeOK)
}

// serveMetrics answers GET /metrics on the TLS port: the Metrics
// handler, to a verified, unrevoked certificate of a role that reads
// metrics (monitor, overlord). A refusal is logged (rate limited with
// the other refusals of the caller), not audited: nothing ran.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	in := &inbound{remote: r.RemoteAddr}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		in.caller = r.TLS.VerifiedChains[0][0]
	}
	p, err := s.peerOf(in.caller, in.remote, false)
	status, why := http.StatusOK, ""
	switch {
	case in.caller == nil:
		status, why = http.StatusUnauthorized, "a client certificate of role monitor or overlord is required"
	case err != nil:
		status, why = http.StatusForbidden, "certificate refused: "+err.Error()
	case !p.Role.ReadsMetrics():
		status, why = http.StatusForbidden, string(p.Role)+" certificates may not read metrics (monitor and overlord may)"
	}
	if status != http.StatusOK {
		if s.refusals.admit(time.Now(), p, audit.KindCallDenied, "GET /metrics") {
			s.logger().Warn("metrics refused", "peer", p.Name, "role", p.Role, "remote", r.RemoteAddr, "reason", why)
		}
		http.Error(w, why, status)
		return
	}
	s.Metrics.ServeHTTP(w, r)
}

// pollsSkippedDetail is the Details key of a poll record that says how
// many empty polls of the caller were left out of the log before it.
const pollsSkippedDetail = "empty_polls_skipped"
