package minion

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// asyncPrefix marks a call to run as a job: async.module.method.
const asyncPrefix = "async."

// request is one call as it moves through the handler.
type request struct {
	id     string
	via    string // the transport, when not the HTTPS listener
	behalf string // the person a delegate calls for (checkBehalf), clipped
	peer   gofunc.Peer
	method string // as called: "test.ping" or "async.test.ping"
	target string // the method that runs: "test.ping"
	jobID  string // set for async calls once the job exists
	params []any
	meth   *method
	start  time.Time
	size   int64            // the body's declared size; -1 when unknown
	head   audit.Checkpoint // the audit log after this call's last record so far
	// pollsSkipped is how many empty events.since polls of the caller
	// were left out of the log before this one's records.
	pollsSkipped int
	// details go into every record of the call (from Inbound.Details).
	details map[string]string
}

// callBody is what remains of a call once its method name is known: its
// parameters, not yet decoded. *xmlrpc.CallReader is one.
type callBody interface {
	// Params decodes the parameters.
	Params() ([]any, error)
	// Skip reads them without decoding them, in constant memory, and
	// describes what it read, for the record of a refused call.
	Skip() (xmlrpc.Rest, error)
}

// inbound is one call as a door (the HTTPS listener, or Handle for
// other transports) hands it to the dispatcher.
type inbound struct {
	id     string
	via    string            // the transport, for the audit log; "" for the HTTPS listener
	behalf string            // the on_behalf_of claim, "" when none (see checkBehalf)
	caller *x509.Certificate // verified by the door (see verify); nil when none was
	// verify asks for the caller's chain to be verified here: the door
	// (Handle) did not do it with a TLS handshake.
	verify bool
	remote string
	// problem is what the door found wrong with the envelope (a bad
	// timeout header): the call is refused with it once the caller's
	// identity is checked.
	problem  *gofunc.Fault
	deadline time.Time // zero: MaxCallTimeout
	body     io.Reader
	size     int64 // -1 when unknown
	// refusal is the door's verdict that the call must not run
	// (Inbound.Refusal): it is denied once its method name is known.
	refusal *gofunc.Fault
	details map[string]string
}

// reply is the dispatcher's answer: the response document and where
// the audit log stood after the call.
type reply struct {
	body []byte
	head audit.Checkpoint
}

// fault sets the answer to f.
func (rep *reply) fault(f *gofunc.Fault) {
	var buf bytes.Buffer
	_ = xmlrpc.EncodeFault(&buf, f)
	rep.body = buf.Bytes()
}

// serveHTTP is the minion's own door: it takes the caller's
// certificate from the TLS handshake and the deadline from the timeout
// header, hands the call to handle, and writes its answer.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// A scrape is not a call: it is not counted in flight (the gauge
	// would count itself).
	if s.Metrics != nil && r.URL.Path == "/metrics" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.serveMetrics(w, r)
		return
	}
	s.calls.add()
	defer s.calls.done()
	in := &inbound{id: newCallID(), remote: r.RemoteAddr, size: r.ContentLength}
	w.Header().Set(gofunc.CallIDHeader, in.id)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC wants POST", http.StatusMethodNotAllowed)
		return
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		in.caller = r.TLS.VerifiedChains[0][0]
	}
	in.behalf = r.Header.Get(gofunc.OnBehalfOfHeader)
	if h := r.Header.Get(gofunc.TimeoutHeader); h != "" {
		d, err := time.ParseDuration(h)
		if err != nil || d <= 0 {
			in.problem = gofunc.Errorf(gofunc.CodeInvalid, "bad %s header %q", gofunc.TimeoutHeader, truncate(h, 64))
		} else {
			in.deadline = time.Now().Add(d)
		}
	}
	// The decoder reads one byte past its limit to tell "too large" from
	// "just fits"; MaxBytesReader, one byte further, only makes sure
	// net/http stops reading and closes the connection of a body that
	// was too large.
	in.body = http.MaxBytesReader(w, r.Body, orDefault(s.MaxBodyBytes, DefaultMaxBodyBytes)+1)
	rep := s.handle(r.Context(), in)
	s.sendHead(w, rep.head)
	s.writeXML(w, rep.body)
}

// handle takes a call in stages, each paid for only once the one
// before has passed: the caller's certificate, the method name (the
// first bytes of the body), the ACL and a concurrency slot, and only
// then the parameters. A caller that may not make a call, or a call
// that finds the minion busy, costs no more than its name. Every door
// comes through here, so every transport gets every check.
// The caller counts as work in flight (s.calls) for Shutdown.
func (s *Server) handle(ctx context.Context, in *inbound) reply {
	var rep reply
	req := &request{id: in.id, via: in.via, behalf: truncate(in.behalf, maxBehalfBytes+16), start: time.Now(), size: in.size, details: in.details}
	peer, err := s.peerOf(in.caller, in.remote, in.verify)
	req.peer = peer
	if err != nil {
		// The transport verified the chain; this is a certificate revoked
		// since (or since the connection was made), or one without a
		// gofunc role.
		s.deny(&rep, req, nil, gofunc.Errorf(gofunc.CodeDenied, "%v", err))
		return rep
	}
	if in.problem != nil {
		s.reject(&rep, req, nil, in.problem)
		return rep
	}
	ctx, cancel := s.callContext(ctx, in.deadline, peer)
	defer cancel()
	limit := orDefault(s.MaxBodyBytes, DefaultMaxBodyBytes)
	if in.size > limit {
		s.reject(&rep, req, nil, gofunc.Errorf(gofunc.CodeTooLarge, "request body of %d bytes is over the %d-byte limit", in.size, limit))
		return rep
	}
	body, err := xmlrpc.ReadCallHead(in.body, xmlrpc.Limits{MaxBytes: limit})
	if err != nil {
		s.reject(&rep, req, nil, gofunc.AsFault(err))
		return rep
	}
	defer body.Close()
	req.method = body.Method()
	if in.refusal != nil {
		s.deny(&rep, req, body, in.refusal)
		return rep
	}
	s.dispatch(ctx, &rep, req, body)
	return rep
}

// dispatch resolves and authorizes a call by its name, takes a slot,
// decodes its parameters, audits it and runs it.
func (s *Server) dispatch(ctx context.Context, rep *reply, req *request, body callBody) {
	target, async := strings.CutPrefix(req.method, asyncPrefix)
	req.target = target
	meth, ok := s.reg.lookup(target)
	if !ok {
		// Only a caller whom some rule would let call the name learns
		// that it does not exist; to anyone else it is a denial like
		// any other, so that the ACL also hides which modules and
		// methods the minion has.
		if allowed, why := s.CurrentACL().Check(req.peer, target, false); !allowed {
			s.deny(rep, req, body, gofunc.Errorf(gofunc.CodeDenied, "%s (%s) may not call %s: %s", req.peer.Name, req.peer.Role, target, why))
			return
		}
		s.reject(rep, req, body, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no method %q on this minion", req.method))
		return
	}
	req.meth = meth
	if async && !meth.asyncOK() {
		s.reject(rep, req, body, gofunc.Errorf(gofunc.CodeNoSuchMethod, "%s cannot run as an async job", target))
		return
	}
	// An alias (getfile.getchunk) is judged as the method it stands for.
	name, dangerous := s.reg.authority(meth)
	if ok, why := s.CurrentACL().Check(req.peer, name, dangerous); !ok {
		called := target
		if name != target {
			called += " (another name for " + name + ")"
		}
		s.deny(rep, req, body, gofunc.Errorf(gofunc.CodeDenied, "%s (%s) may not call %s: %s", req.peer.Name, req.peer.Role, called, why))
		return
	}
	if f := s.checkBehalf(req, name); f != nil {
		s.deny(rep, req, body, f)
		return
	}
	if target == pollMethod && !async {
		s.runPoll(ctx, rep, req, body)
		return
	}
	// The slot is taken before the parameters are decoded, since that
	// is where a call costs memory (up to MaxBodyBytes several times
	// over). An async call holds it until its job has started; the job
	// then counts against MaxJobs only.
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.busy(rep, req, fmt.Sprintf("minion busy: %d calls in flight", cap(s.sem)))
		return
	}
	args, ok := s.decodeArgs(rep, req, body)
	if !ok {
		return
	}
	if async {
		s.startJob(rep, req, args)
		return
	}
	if err := s.auditStart(req); err != nil {
		s.auditFailed(rep, req, err)
		return
	}
	s.stats.calls.Add(1)
	result, err := s.run(ctx, req, args)
	s.finish(ctx, rep, req, result, err)
}

// decodeArgs decodes the call's parameters (kept in req for the audit
// record) into its method's arguments; a call whose parameters do not
// decode or fit is rejected, and ok is false.
func (s *Server) decodeArgs(rep *reply, req *request, body callBody) (args []reflect.Value, ok bool) {
	params, err := body.Params()
	if err != nil {
		s.reject(rep, req, nil, gofunc.AsFault(err))
		return nil, false
	}
	req.params = params
	if args, err = req.meth.args(params); err != nil {
		s.reject(rep, req, nil, gofunc.AsFault(err))
		return nil, false
	}
	return args, true
}

// run calls the method through the interceptor. A panic, in either, is
// turned into an internal fault so one bad module cannot take the
// daemon down.
func (s *Server) run(ctx context.Context, req *request, args []reflect.Value) (result any, err error) {
	defer s.begin(req)()
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, &panicError{value: p, stack: debug.Stack()}
		}
	}()
	next := func(ctx context.Context) (any, error) { return req.meth.call(ctx, args) }
	if s.Intercept == nil {
		return next(ctx)
	}
	call := &Call{ID: req.id, Peer: req.peer, Method: req.target, Params: req.params, JobID: req.jobID}
	return s.Intercept(ctx, call, next)
}

// finish encodes the outcome, writes the end record and the answer.
func (s *Server) finish(ctx context.Context, rep *reply, req *request, result any, err error) {
	body, fault := s.encodeOutcome(ctx, req, result, err)
	s.auditEnd(req, fault, body)
	rep.body, rep.head = body, req.head
	if fault != nil {
		s.observe(req, OutcomeFault)
	} else {
		s.observe(req, OutcomeOK)
	}
}

// sendHead tells the caller where the audit log stood after this call's
// last record (Gofunc-Audit-Head: "seq:hash"), so that the caller's own
// log can witness it: a record later changed, dropped or cut off at or
// before that point no longer matches (see audit.VerifyWitnessed). Only
// calls that passed the ACL get it.
func (s *Server) sendHead(w http.ResponseWriter, head audit.Checkpoint) {
	if head.Seq != 0 {
		w.Header().Set(gofunc.AuditHeadHeader, head.String())
	}
}

// encodeOutcome turns a method's result or error into the response
// document, and the fault it carries if any.
func (s *Server) encodeOutcome(ctx context.Context, req *request, result any, err error) ([]byte, *gofunc.Fault) {
	var buf bytes.Buffer
	fault := s.outcomeFault(ctx, req, err)
	if fault == nil {
		if encErr := xmlrpc.EncodeResponse(&buf, result); encErr != nil {
			s.logger().Error("result cannot be encoded", "call_id", req.id, "method", req.target, "error", encErr)
			fault = gofunc.Errorf(gofunc.CodeInternal, "%s: result cannot be encoded: %v", req.target, encErr)
		} else if limit := orDefault(s.MaxResultBytes, DefaultMaxResultBytes); int64(buf.Len()) > limit {
			fault = gofunc.Errorf(gofunc.CodeTooLarge, "%s: result is %d bytes, over the %d-byte limit", req.target, buf.Len(), limit)
		}
	}
	if fault != nil {
		buf.Reset()
		_ = xmlrpc.EncodeFault(&buf, fault)
	}
	return buf.Bytes(), fault
}

// outcomeFault turns a method's error into the fault the caller sees.
func (s *Server) outcomeFault(ctx context.Context, req *request, err error) *gofunc.Fault {
	if err == nil {
		return nil
	}
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		s.logger().Error("module panicked", "call_id", req.id, "method", req.target, "panic", fmt.Sprint(pe.value), "stack", string(pe.stack))
		return gofunc.Errorf(gofunc.CodeInternal, "%s failed inside the minion; see call %s in its log", req.target, req.id)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && !isFault(err):
		return gofunc.Errorf(gofunc.CodeTimeout, "%s: deadline passed: %v", req.target, err)
	case errors.Is(ctx.Err(), context.Canceled) && !isFault(err):
		return gofunc.Errorf(gofunc.CodeCanceled, "%s: cancelled: %v", req.target, err)
	}
	return gofunc.AsFault(err)
}

func isFault(err error) bool {
	var f *gofunc.Fault
	return errors.As(err, &f)
}

// callContext gives the call its deadline: the one the door read (the
// caller's budget), capped by MaxCallTimeout. parent is cancelled when
// the caller goes away (its connection closes) or the server closes.
func (s *Server) callContext(parent context.Context, deadline time.Time, p gofunc.Peer) (context.Context, context.CancelFunc) {
	limit := time.Now().Add(orDefault(s.MaxCallTimeout, DefaultMaxCallTimeout))
	if deadline.IsZero() || deadline.After(limit) {
		deadline = limit
	}
	ctx, cancel := context.WithDeadline(parent, deadline)
	return gofunc.NewContext(ctx, p), cancel
}

// peerOf is the caller as the certificate its door verified proves,
// checked against the CRL in force now, so a revocation also cuts off
// connections made before it. It is taken per call, never shared.
func (s *Server) peerOf(cert *x509.Certificate, remote string, verify bool) (gofunc.Peer, error) {
	if cert == nil {
		return gofunc.Peer{Addr: remote}, errors.New("no verified client certificate")
	}
	if verify {
		id := s.CurrentIdentity()
		if p, ok := s.verified.get(cert, id); ok {
			p.Addr = remote
			return p, nil
		}
		p, err := id.VerifyPeer(cert)
		if err == nil {
			s.verified.put(cert, id, p)
		}
		p.Addr = remote
		return p, err
	}
	p, err := identity.PeerOf(cert)
	p.Addr = remote
	if err != nil {
		return p, err
	}
	if s.CurrentIdentity().Revoked(cert) {
		return p, fmt.Errorf("certificate %s (%s) is revoked", p.Serial, p.Name)
	}
	return p, nil
}

// reject answers a request that never reached its method, and records
// it. body is the undecoded rest of the call, when there is one.
func (s *Server) reject(rep *reply, req *request, body callBody, f *gofunc.Fault) {
	s.stats.rejected.Add(1)
	s.observe(req, OutcomeRejected)
	s.refuse(rep, req, body, f, audit.Record{Kind: audit.KindCallRejected, Outcome: f.Code.String()})
}

// deny answers a call its caller may not make, and records it.
func (s *Server) deny(rep *reply, req *request, body callBody, f *gofunc.Fault) {
	s.stats.denied.Add(1)
	s.observe(req, OutcomeDenied)
	if s.refuse(rep, req, body, f, audit.Record{Kind: audit.KindCallDenied, Outcome: audit.OutcomeDenied}) {
		s.logger().With("peer", req.peer.Name, "serial", req.peer.Serial).Warn("call denied", "method", req.method, "reason", f.Message)
	}
}

// refuse writes rec for a refused request, unless the caller's refusals
// are over their rate limit (then it is counted for a call.suppressed
// record), and answers f. It reports whether rec was written.
//
// A refusal record is bounded whatever the caller sent: the method
// name is at most 256 characters and arguments are summarized with
// SummarizeArgs' bounds. The parameters of a call refused before they
// were decoded are decoded for the record only when the body is at most
// maxRefusalDecodeBytes; a larger body is read without being decoded
// and described by its parameter count, size and digest.
func (s *Server) refuse(rep *reply, req *request, body callBody, f *gofunc.Fault, rec audit.Record) bool {
	admitted := s.refusals.admit(time.Now(), req.peer, rec.Kind, req.method)
	if admitted {
		rec.Code, rec.Error = int(f.Code), truncate(f.Message, 1024)
		s.fill(&rec, req)
		if body != nil && req.params == nil && req.size >= 0 && req.size <= maxRefusalDecodeBytes {
			params, err := body.Params()
			if err != nil {
				setDetail(&rec, "args_error", truncate(gofunc.AsFault(err).Message, 256))
			}
			req.params, body = params, nil
		}
		switch {
		case req.params != nil:
			rec.Args, rec.ArgsDigest = audit.SummarizeArgs(req.params, req.argDocs())
		case body != nil:
			describeRest(&rec, body, req.hasSecrets())
		}
		if _, err := s.Audit.Append(rec); err != nil {
			s.logger().Error("audit write failed", "call_id", req.id, "kind", rec.Kind, "error", err)
		}
	}
	rep.fault(f)
	return admitted
}

// maxRefusalDecodeBytes bounds the body of a refused call whose
// parameters are decoded for its record: a human-sized call, not a
// flood's.
const maxRefusalDecodeBytes = 16 << 10

// describeRest puts into rec what the undecoded rest of a refused call
// holds: how many parameters, how many bytes, and their SHA-256, unless
// the method has secret arguments: a digest of a weak secret could be
// used to test guesses of it.
func describeRest(rec *audit.Record, body callBody, secrets bool) {
	rest, err := body.Skip()
	setDetail(rec, "params", strconv.Itoa(rest.Params))
	setDetail(rec, "rest_bytes", strconv.FormatInt(rest.Bytes, 10))
	if secrets {
		setDetail(rec, "rest_sha256", "omitted: the method has secret arguments")
	} else {
		setDetail(rec, "rest_sha256", hex.EncodeToString(rest.SHA256[:]))
	}
	if err != nil {
		setDetail(rec, "rest_error", truncate(gofunc.AsFault(err).Message, 256))
	}
}

func setDetail(rec *audit.Record, key, value string) {
	if rec.Details == nil {
		rec.Details = map[string]string{}
	}
	rec.Details[key] = value
}

// busy refuses a call without an audit record: nothing ran, and a flood
// of refusals must stay cheap. It logs at most once a second.
func (s *Server) busy(rep *reply, req *request, msg string) {
	s.stats.busy.Add(1)
	s.observe(req, OutcomeBusy)
	now := time.Now().UnixNano()
	if last := s.lastLog.Load(); now-last > int64(time.Second) && s.lastLog.CompareAndSwap(last, now) {
		s.logger().Warn("calls refused: busy", "method", req.method, "peer", req.peer.Name, "busy_total", s.stats.busy.Load())
	}
	rep.fault(gofunc.Errorf(gofunc.CodeBusy, "%s", msg))
}

func (s *Server) auditFailed(rep *reply, req *request, err error) {
	s.stats.auditFailed.Add(1)
	s.observe(req, OutcomeAuditFailed)
	s.logger().Error("audit write failed; call refused", "call_id", req.id, "method", req.target, "error", err)
	rep.fault(gofunc.Errorf(gofunc.CodeAuditFailed, "audit log unavailable; call %s not run", req.id))
}

func (s *Server) auditStart(req *request) error {
	rec := audit.Record{Kind: audit.KindCallStart}
	rec.Args, rec.ArgsDigest = audit.SummarizeArgs(req.params, req.argDocs())
	s.fill(&rec, req)
	done, err := s.Audit.Append(rec)
	if err == nil {
		req.head = audit.Checkpoint{Seq: done.Seq, Hash: done.Hash}
	}
	return err
}

// auditEnd records how the call ended. With an *audit.Log the record
// is written (to the file, in order) before the answer goes out, but
// the answer does not wait for its fsync: the write-ahead rule is about
// the start record, durable before the method ran. The answer's audit
// head is then the last durable record (the call's start record or
// later), never one a crash could still take back, so that a witness
// never names a record the log may lose (see the README's audit
// section).
func (s *Server) auditEnd(req *request, f *gofunc.Fault, body []byte) {
	rec := audit.Record{Kind: audit.KindCallEnd, Outcome: audit.OutcomeOK, Duration: time.Since(req.start)}
	if f != nil {
		rec.Outcome, rec.Code, rec.Error = audit.OutcomeFault, int(f.Code), f.Message
	}
	sum := sha256.Sum256(body)
	rec.ResultDigest = "sha256:" + hex.EncodeToString(sum[:])
	s.fill(&rec, req)
	if l, ok := s.Audit.(noSyncAppender); ok {
		if _, err := l.AppendNoSync(rec); err != nil {
			s.logger().Error("audit end record failed", "call_id", req.id, "method", req.target, "error", err)
		}
		if h := l.Head(); h.Seq > req.head.Seq {
			req.head = h
		}
		return
	}
	done, err := s.Audit.Append(rec)
	if err != nil {
		s.logger().Error("audit end record failed", "call_id", req.id, "method", req.target, "error", err)
		return
	}
	req.head = audit.Checkpoint{Seq: done.Seq, Hash: done.Hash}
}

// noSyncAppender is an audit log that can write a record without
// waiting for its fsync (*audit.Log; not *audit.Shared, which opens the
// file per record).
type noSyncAppender interface {
	AppendNoSync(audit.Record) (audit.Record, error)
	Head() audit.Checkpoint
}

// hasSecrets reports whether the method declares secret arguments.
func (req *request) hasSecrets() bool {
	for _, d := range req.argDocs() {
		if d.Secret || len(d.SecretFields) > 0 {
			return true
		}
	}
	return false
}

func (req *request) argDocs() []gofunc.ArgDoc {
	if req.meth == nil {
		return nil
	}
	return req.meth.doc.Args
}

// fill copies the caller and method into rec. Start and end records
// name the method that runs ("test.sleep", with the job id in Details
// for async calls); rejections name the method as called.
func (s *Server) fill(rec *audit.Record, req *request) {
	rec.CallID = req.id
	for k, v := range req.details {
		setDetail(rec, k, v)
	}
	rec.Caller, rec.Role, rec.Serial, rec.Remote = req.peer.Name, string(req.peer.Role), req.peer.Serial, req.peer.Addr
	rec.Method = req.method
	if (rec.Kind == audit.KindCallStart || rec.Kind == audit.KindCallEnd) && req.target != "" {
		rec.Method = req.target
	}
	rec.Method = truncate(rec.Method, 256)
	if req.jobID != "" {
		setDetail(rec, "job", req.jobID)
	}
	if req.via != "" {
		setDetail(rec, "via", req.via)
	}
	if req.behalf != "" {
		setDetail(rec, "on_behalf_of", req.behalf)
	}
	if req.pollsSkipped > 0 && rec.Kind == audit.KindCallStart {
		setDetail(rec, pollsSkippedDetail, strconv.Itoa(req.pollsSkipped))
	}
}

// writeXML sends a response, within WriteTimeout: a caller that does not
// read its answer must not hold the handler forever.
func (s *Server) writeXML(w http.ResponseWriter, body []byte) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(orDefault(s.WriteTimeout, DefaultWriteTimeout)))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

// newCallID returns a random 96-bit id, hex.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// truncate shortens text that a caller chose before it goes into a
// fault or a record.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }
