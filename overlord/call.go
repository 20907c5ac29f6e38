package overlord

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// Selection is a set of target minions, resolved when used. Its methods
// return new selections; a Selection is safe for concurrent use.
type Selection struct {
	c       *Client
	spec    string
	exclude []string
	conds   []factCond
	batch   Batch
	behalf  string // OnBehalfOf
	err     error  // kept from Where or Batch, returned by Call
}

func (s *Selection) with(edit func(*Selection)) *Selection {
	n := *s
	n.exclude = slices.Clone(s.exclude)
	n.conds = slices.Clone(s.conds)
	edit(&n)
	return &n
}

// Exclude removes the minions spec matches from the selection.
func (s *Selection) Exclude(spec string) *Selection {
	return s.with(func(n *Selection) { n.exclude = append(n.exclude, spec) })
}

// OnBehalfOf makes the selection's calls for a person, named
// "name@role" (a dashboard calling for "alice@operator"): minions
// receive the name with each call (gofunc.OnBehalfOfHeader), accept it
// only from a certificate of role delegate, record it in their audit
// logs and apply their ACLs' deny rules to the person too; the
// overlord's own audit record of the call (and a job's) names the
// person as on_behalf_of. The client's certificate is still the caller,
// whose grants bound what the calls may do.
func (s *Selection) OnBehalfOf(who string) *Selection {
	return s.with(func(n *Selection) { n.behalf = who })
}

// Hosts resolves the selection to minion names, sorted.
func (s *Selection) Hosts(ctx context.Context) ([]string, error) {
	ms, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return sortedKeys(ms), nil
}

func (s *Selection) resolve(ctx context.Context) (map[string]Minion, error) {
	if err := s.c.usable(); err != nil {
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	all, err := s.c.knownMinions(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.c.waitCRL(ctx); err != nil {
		return nil, err
	}
	groups, err := s.c.Groups()
	if err != nil {
		return nil, err
	}
	got, err := match(s.spec, all, groups)
	if err != nil {
		return nil, err
	}
	for _, ex := range s.exclude {
		drop, err := match(ex, all, groups)
		if err != nil {
			return nil, fmt.Errorf("exclude: %w", err)
		}
		for k := range drop {
			delete(got, k)
		}
	}
	s.c.remember(got)
	var unknown int
	if len(s.conds) > 0 && len(got) > 0 {
		if got, unknown, err = s.c.filterFacts(ctx, got, s.conds); err != nil {
			return nil, err
		}
	}
	if len(got) == 0 {
		return nil, s.noMatch(len(all), unknown)
	}
	return got, nil
}

func (s *Selection) noMatch(known, unknown int) error {
	what := fmt.Sprintf("%q", s.spec)
	if len(s.exclude) > 0 {
		what += fmt.Sprintf(" excluding %q", strings.Join(s.exclude, `", "`))
	}
	if len(s.conds) > 0 {
		what += " where " + formatConds(s.conds)
	}
	if unknown > 0 {
		what += fmt.Sprintf(" (%d hosts did not report facts)", unknown)
	}
	return fmt.Errorf("%w %s among %d known minions", ErrNoMatch, what, known)
}

// Result is one host's answer.
type Result struct {
	Host string
	// Value is the decoded result: int64, bool, string, float64,
	// []byte, time.Time, []any, map[string]any or nil.
	Value any
	// Err is nil on success, otherwise a *HostError.
	Err      error
	Duration time.Duration
	// CallID is the call's id in the minion's audit log, when the
	// minion answered.
	CallID string
	// AuditHead is where the minion's audit log stood after the call's
	// records, as the minion said (zero when it did not). The overlord's
	// audit log keeps it (an overlord.heads record), a witness that
	// audit.VerifyWitnessed checks the minion's log against.
	AuditHead audit.Checkpoint
	// Seq is the job store's sequence number of a result read back from
	// a job (Job, WaitJob): a result recorded later, for any job of the
	// store, has a larger one, so a reader can resume after the last it
	// saw. Zero for a result not read from a store, or from a store that
	// numbers none.
	Seq int64
}

// Decode converts Value into v (a pointer), by the rules the minion
// uses for arguments: struct fields by their xmlrpc tag or snake_case
// name. Unlike arguments, members v has no field for are ignored, so a
// struct with a subset of the result's fields works.
func (r Result) Decode(v any) error {
	if r.Err != nil {
		return r.Err
	}
	if err := ixmlrpc.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("overlord: decode: %w", err)
	}
	return nil
}

// Results maps each targeted host to its result.
type Results map[string]Result

// Hosts returns the hosts, sorted.
func (rs Results) Hosts() []string { return sortedKeys(rs) }

// Failed returns the hosts whose call failed, sorted.
func (rs Results) Failed() []string {
	var out []string
	for h, r := range rs {
		if r.Err != nil {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// Call calls module.method(args...) on every selected minion, at most
// Forks at a time, each bounded by HostTimeout, batch by batch when
// Batch was set. It returns every host's result, and a non-nil
// *CallError when any host failed (errors.Is and errors.As see through
// it to each host's error). A bad spec or configuration returns a nil
// Results and that error.
func (s *Selection) Call(ctx context.Context, module, method string, args ...any) (Results, error) {
	run, err := s.start(ctx, module, method, args)
	if err != nil {
		return nil, err
	}
	res := make(Results, len(run.hosts))
	var mu sync.Mutex
	run.execute(ctx, func(r Result) {
		mu.Lock()
		res[r.Host] = r
		mu.Unlock()
	})
	return res, newCallError(run.req.wire, res)
}

// Stream calls module.method(args...) like Call and yields each host's
// result as it arrives, with the host's error (Result.Err) as the second
// value. If the call cannot start at all (bad spec, nothing matched,
// configuration, audit), it yields one zero Result with that error.
//
// Breaking out of the loop, or cancelling ctx, stops the fan-out: calls
// not yet sent are not sent, and calls in flight are abandoned, which
// closes their connections so the minions cancel the work. The
// iterator returns only when every call has ended.
func (s *Selection) Stream(ctx context.Context, module, method string, args ...any) iter.Seq2[Result, error] {
	return func(yield func(Result, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		run, err := s.start(ctx, module, method, args)
		if err != nil {
			yield(Result{}, err)
			return
		}
		ch := make(chan Result, len(run.hosts)) // workers never block on a slow reader
		done := make(chan struct{})
		go func() {
			defer close(done)
			run.execute(ctx, func(r Result) { ch <- r })
			close(ch)
		}()
		defer func() {
			cancel()
			<-done
		}()
		for r := range ch {
			if !yield(r, r.Err) {
				return
			}
		}
	}
}

// request is one encoded call, with its arguments summarized for the
// audit log (never raw: they may hold secrets).
type request struct {
	wire string
	body []byte
	// args are the arguments as sent (wireArgs), for summarize.
	args    []any
	summary []any
	digest  string
	// behalf is the person the call is made for (Selection.OnBehalfOf).
	behalf string
}

// newRequest encodes module.method(args...).
func newRequest(module, method string, args []any) (*request, error) {
	wire := module + "." + method
	if !ixmlrpc.ValidMethodName(wire) {
		return nil, fmt.Errorf("%w: method name %q", ErrBadCall, clipText(wire))
	}
	vals, err := wireArgs(args)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCall, wire, err)
	}
	body, err := ixmlrpc.EncodeRequest(wire, vals...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadCall, wire, err)
	}
	return &request{wire: wire, body: body, args: vals}, nil
}

// summarize fills the audit summary and digest of the arguments,
// redacted by docs (see argDocs). The digest is over the redacted form,
// as the minion's is: it cannot confirm a guessed secret, and it equals
// the ArgsDigest each minion records for the same call.
func (r *request) summarize(docs []gofunc.ArgDoc) {
	r.summary, r.digest = audit.SummarizeArgs(r.args, docs)
}

// wireArgs turns call arguments into the generic values the minion
// decodes (ixmlrpc.Generic: struct members named as the minion names
// them, a string XML cannot carry as bytes, times in UTC to the
// second). The request is encoded from these values and the audit
// record summarizes them, so the log describes what was sent.
func wireArgs(args []any) ([]any, error) {
	out := make([]any, len(args))
	for i, a := range args {
		g, err := ixmlrpc.Generic(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		out[i] = g
	}
	return out, nil
}

// ErrBadCall: the method name or arguments cannot be sent.
var ErrBadCall = errors.New("overlord: bad call")

// run is a call being made: its targets, request and audit id.
type run struct {
	c      *Client
	id     string
	hosts  []string
	req    *request
	batch  Batch
	spec   string
	start  time.Time
	caller string
	// details are added to the overlord.call record's Details.
	details map[string]string
}

// start resolves the selection, encodes the request and writes the
// overlord.call audit record: everything that can fail before a host is
// called.
func (s *Selection) start(ctx context.Context, module, method string, args []any) (*run, error) {
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(module, method, args)
	if err != nil {
		return nil, err
	}
	req.behalf = s.behalf
	r := &run{c: s.c, id: newID(), hosts: sortedKeys(targets), req: req, batch: s.batch,
		spec: s.describe(), start: time.Now()}
	if s.c.cfg.Audit == nil {
		// The summary, its redaction (which may ask the targets for
		// their argument docs) and the details are for the audit
		// record alone.
		return r, nil
	}
	r.details = map[string]string{"arg_docs": s.c.redact(ctx, r.hosts, req)}
	if s.behalf != "" {
		r.details["on_behalf_of"] = s.behalf
	}
	if err := s.c.auditStart(r); err != nil {
		return nil, err
	}
	return r, nil
}

func (s *Selection) describe() string {
	d := s.spec
	for _, ex := range s.exclude {
		d += " -(" + ex + ")"
	}
	if len(s.conds) > 0 {
		d += " where " + formatConds(s.conds)
	}
	return d
}

// execute calls every host, batch by batch, and passes each result to
// emit (from several goroutines at once); then it writes the end
// audit record.
func (r *run) execute(ctx context.Context, emit func(Result)) {
	outcomes := make(map[string]error, len(r.hosts))
	heads := make(map[string]audit.Checkpoint, len(r.hosts))
	var mu sync.Mutex
	record := func(res Result) {
		mu.Lock()
		outcomes[res.Host] = res.Err
		if res.AuditHead.Seq != 0 {
			heads[res.Host] = res.AuditHead
		}
		mu.Unlock()
		emit(res)
	}
	batches := r.batch.plan(r.hosts)
	failed := 0
	for i, batch := range batches {
		if i > 0 && r.batch.tooMany(failed) {
			for _, rest := range batches[i:] {
				for _, h := range rest {
					record(Result{Host: h, Err: &HostError{Host: h, Op: r.req.wire,
						Err: fmt.Errorf("%w: %d hosts failed in earlier batches (MaxFailures %d)", ErrSkipped, failed, r.batch.MaxFailures)}})
				}
			}
			break
		}
		if i > 0 && r.batch.Pause > 0 {
			t := time.NewTimer(r.batch.Pause)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		failed += r.c.fanout(ctx, batch, r.req, record)
	}
	r.c.auditEnd(r, outcomes, nil)
	r.c.auditHeads(r, heads)
}

// fanout calls hosts at most Forks at a time and returns how many
// failed. Host failures are results, never reasons to stop the others.
//
// It runs a pool of min(Forks, hosts) workers rather than a goroutine
// per host: the CPU profile of a warm 1000-host ping showed ~12% of the
// time growing fresh goroutine stacks through the TLS and HTTP code;
// a worker's stack grows once and is reused.
func (c *Client) fanout(ctx context.Context, hosts []string, req *request, emit func(Result)) int {
	if bt, ok := c.transport.(BatchTransport); ok && len(hosts) > 1 {
		return c.fanoutGroups(ctx, bt, hosts, req, emit)
	}
	var failed atomic.Int64
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(hosts) {
				return
			}
			h := hosts[i]
			var r Result
			if err := ctx.Err(); err != nil {
				r = Result{Host: h, Err: &HostError{Host: h, Op: req.wire, Err: err}}
			} else {
				r = c.callHost(ctx, h, req)
			}
			if r.Err != nil {
				failed.Add(1)
			}
			emit(r)
		}
	}
	// At most Forks workers, each taking the next host until none is
	// left: errgroup bounds them, and a fixed set of long-lived workers
	// (rather than a goroutine per host) keeps stacks warm at 1000s of
	// hosts. Host failures are results, never the group's error.
	workers := min(c.cfg.Forks, len(hosts))
	if workers == 1 {
		// One host (a script calling one minion in a loop, an Each
		// callback): on the caller's goroutine, without a goroutine
		// to start and to wait for. emit never blocks (Stream buffers).
		work()
		return int(failed.Load())
	}
	var g errgroup.Group
	g.SetLimit(c.cfg.Forks)
	for range workers {
		g.Go(func() error { work(); return nil })
	}
	_ = g.Wait()
	return int(failed.Load())
}

// groupSize is how many hosts the fan-out hands a BatchTransport at
// once: at most its MaxBatch, and a quarter of Forks so that several
// groups are in flight.
func (c *Client) groupSize(bt BatchTransport) int {
	return max(1, min(bt.MaxBatch(), c.cfg.Forks/4))
}

// fanoutGroups is fanout through a BatchTransport: groups of hosts, as
// many at once as keep Forks hosts in flight at most, and the same
// results as host by host.
func (c *Client) fanoutGroups(ctx context.Context, bt BatchTransport, hosts []string, req *request, emit func(Result)) int {
	size := c.groupSize(bt)
	var groups [][]string
	for from := 0; from < len(hosts); from += size {
		groups = append(groups, hosts[from:min(from+size, len(hosts))])
	}
	var failed atomic.Int64
	count := func(r Result) {
		if r.Err != nil {
			failed.Add(1)
		}
		emit(r)
	}
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(groups) {
				return
			}
			c.callGroup(ctx, bt, groups[i], req, count)
		}
	}
	var g errgroup.Group
	for range min(max(1, c.cfg.Forks/size), len(groups)) {
		g.Go(func() error { work(); return nil })
	}
	_ = g.Wait()
	return int(failed.Load())
}

// callGroup calls hosts through bt in one RoundTripBatch, bounded by
// HostTimeout from now, and emits each host's result as callHost would
// have made it. A host the transport left unanswered gets an error
// rather than no result.
func (c *Client) callGroup(ctx context.Context, bt BatchTransport, hosts []string, req *request, emit func(Result)) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		for _, h := range hosts {
			emit(Result{Host: h, Err: &HostError{Host: h, Op: req.wire, Err: err}})
		}
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HostTimeout)
	defer cancel()
	to := make([]Minion, len(hosts))
	for i, h := range hosts {
		to[i] = c.minion(h)
	}
	answered := make([]atomic.Bool, len(hosts))
	bt.RoundTripBatch(ctx, to, req.outbound(), func(i int, ans Answer, err error) {
		if i < 0 || i >= len(hosts) || answered[i].Swap(true) {
			if err == nil && ans.Body != nil {
				ans.Body.Close()
			}
			return // not one of ours, or answered already: the first answer counts
		}
		emit(c.hostResult(ctx, hosts[i], req, start, ans, err))
	})
	for i, h := range hosts {
		if !answered[i].Load() {
			emit(c.hostResult(ctx, h, req, start, Answer{}, fmt.Errorf("%w: the transport gave no answer", ErrProtocol)))
		}
	}
}

func (c *Client) callHost(ctx context.Context, host string, req *request) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HostTimeout)
	defer cancel()
	ans, err := c.transport.RoundTrip(ctx, c.minion(host), req.outbound())
	return c.hostResult(ctx, host, req, start, ans, err)
}

// outbound is the request as a Transport carries it.
func (r *request) outbound() Outbound {
	return Outbound{Method: r.wire, Body: r.body, OnBehalfOf: r.behalf}
}

// hostResult decodes host's answer (or classifies its transport error)
// into its Result, timed from start, and tells Config.Observe.
func (c *Client) hostResult(ctx context.Context, host string, req *request, start time.Time, ans Answer, err error) Result {
	v, meta, err := c.decodeAnswer(ans, err)
	r := Result{Host: host, Value: v, Duration: time.Since(start), CallID: meta.callID, AuditHead: meta.head}
	if err != nil {
		r.Value, r.Err = nil, &HostError{Host: host, Op: req.wire, Err: c.classify(ctx, err)}
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(Observation{Host: host, Method: req.wire, Kind: ErrorKind(r.Err), Duration: r.Duration,
			CertNotAfter: meta.certNotAfter, NewConnection: meta.newConn})
	}
	return r
}

// Observation is how one host's call ended, for Config.Observe.
type Observation struct {
	// Host is the minion's name, as targeted.
	Host string
	// Method is the wire method called ("test.ping").
	Method string
	// Kind is ErrorKind of the host's error: "" when it answered a
	// value, "fault" when it answered a fault, else why it did not
	// ("unreachable", "timeout", ...).
	Kind     string
	Duration time.Duration
	// CertNotAfter is when the certificate the minion presented
	// expires; zero when no TLS session came to be or the transport
	// does not say.
	CertNotAfter time.Time
	// NewConnection is set when the call was answered on a connection
	// it opened (connect and TLS handshake) rather than on one kept
	// alive from an earlier call: a warm fan-out where it is set for
	// many hosts is paying for handshakes (minions restarted, or idle
	// connections closed by either side's idle timeout). False when
	// the call failed before an answer, or the transport does not say.
	NewConnection bool
}

// Answered reports whether the minion answered, with a value or a
// fault: it is up.
func (o Observation) Answered() bool { return o.Kind == "" || o.Kind == "fault" }

// answerMeta is what a minion's answer says besides its value.
type answerMeta struct {
	callID       string
	head         audit.Checkpoint // zero when absent or malformed
	certNotAfter time.Time        // zero when unknown
	newConn      bool             // answered on a connection the call opened
}

// decodeAnswer decodes what the transport returned for a host with the
// bounded decoder.
func (c *Client) decodeAnswer(ans Answer, err error) (any, answerMeta, error) {
	var meta answerMeta
	meta.callID, meta.certNotAfter, meta.newConn = ans.CallID, ans.CertNotAfter, ans.NewConnection
	if ans.AuditHead != "" {
		meta.head, _ = audit.ParseCheckpoint(ans.AuditHead) // a malformed head witnesses nothing
	}
	if err != nil {
		return nil, meta, err
	}
	defer ans.Body.Close()
	v, err := ixmlrpc.DecodeResponse(ans.Body, ixmlrpc.Limits{MaxBytes: c.cfg.MaxResultBytes})
	return v, meta, err
}

// minion is host as the selection resolved it (with its address), or
// bare when it was not resolved here (a job run in another process
// remembered it).
func (c *Client) minion(host string) Minion {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.addrs[strings.ToLower(host)]; ok {
		return m
	}
	return Minion{Name: host}
}

// classify turns a transport error into one of the overlord's kinds.
// The cause stays in the chain (%w), so callers can still find the
// syscall error, the TLS alert or the x509 error behind a kind.
func (c *Client) classify(ctx context.Context, err error) error {
	var f *gofunc.Fault
	var wrongRole *wrongRoleError
	var respErr *ixmlrpc.ResponseError
	var hostErr x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	var opErr *net.OpError
	var netErr net.Error
	switch {
	case errors.As(err, &respErr):
		switch {
		case respErr.Fault.Code == gofunc.CodeTooLarge:
			return gofunc.Errorf(gofunc.CodeTooLarge, "answer larger than MaxResultBytes (%d bytes): %s", c.cfg.MaxResultBytes, respErr.Fault.Message)
		case respErr.Fault.Code == gofunc.CodeTimeout || errors.Is(ctx.Err(), context.DeadlineExceeded):
			// The deadline passed while the answer was arriving.
			return fmt.Errorf("%w: answer cut off by the host timeout: %v", ErrTimeout, respErr)
		case respErr.Fault.Code == gofunc.CodeCanceled && ctx.Err() != nil:
			return ctx.Err()
		}
		return fmt.Errorf("%w: %v", ErrProtocol, respErr)
	case errors.As(err, &f):
		return err
	case errors.Is(err, ErrProtocol): // a transport's verdict (the minion could not read the call)
		return err
	case errors.As(err, &wrongRole):
		return wrongRole
	case errors.Is(err, identity.ErrRevoked):
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: %w", ErrImpersonation, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w: %w", ErrUntrusted, err)
	case errors.Is(err, context.Canceled) && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return err
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// crypto/tls reports an alert the peer sent this way.
		return fmt.Errorf("%w: %w", ErrRejected, err)
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("%w: %w", ErrUnreachable, err) // no connection, even if by a timeout
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: no answer within the host timeout: %w", ErrTimeout, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %w", ErrTimeout, err) // connected, then silence (TLS handshake timeout)
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

// newID returns a random call or job id: 16 hex digits after a
// time-ordered prefix, so ids sort by creation.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(time.Now().UnixMilli(), 36) + "-" + hex.EncodeToString(b[:])
}
