package minion

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// request is one call as it moves through the handler.
type request struct {
	id     string
	peer   gofunc.Peer
	method string
	params []any
	meth   *method
	start  time.Time
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.inflight.Add(1)
	defer s.inflight.Done()
	req := &request{id: newCallID(), start: time.Now()}
	w.Header().Set(gofunc.CallIDHeader, req.id)

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC wants POST", http.StatusMethodNotAllowed)
		return
	}
	peer, err := s.peer(r)
	if err != nil {
		// The TLS layer verified the chain; this is a revoked or
		// otherwise unacceptable certificate on a live connection.
		s.reject(w, req, gofunc.Errorf(gofunc.CodeDenied, "%v", err))
		return
	}
	req.peer = peer

	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		s.reject(w, req, gofunc.Errorf(gofunc.CodeBusy, "minion busy: %d calls in flight", cap(s.sem)))
		return
	}

	body := http.MaxBytesReader(w, r.Body, orDefault(s.MaxBodyBytes, DefaultMaxBodyBytes))
	call, err := xmlrpc.DecodeCall(body, xmlrpc.Limits{MaxBytes: orDefault(s.MaxBodyBytes, DefaultMaxBodyBytes)})
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			err = gofunc.Errorf(gofunc.CodeTooLarge, "request body over %d bytes", mbe.Limit)
		}
		s.reject(w, req, gofunc.AsFault(err))
		return
	}
	req.method, req.params = call.Method, call.Params

	ctx, cancel, err := s.callContext(r)
	if err != nil {
		s.reject(w, req, gofunc.AsFault(err))
		return
	}
	defer cancel()
	s.dispatch(ctx, w, req)
}

// dispatch resolves, authorizes, audits and runs a decoded call.
func (s *Server) dispatch(ctx context.Context, w http.ResponseWriter, req *request) {
	meth, ok := s.reg.lookup(req.method)
	if !ok {
		s.reject(w, req, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no method %q on this minion", req.method))
		return
	}
	req.meth = meth
	if !s.acl().Allows(req.peer, req.method, meth.doc.Dangerous) {
		s.deny(w, req)
		return
	}
	args, err := meth.args(req.params)
	if err != nil {
		s.reject(w, req, gofunc.AsFault(err))
		return
	}
	if err := s.auditStart(req); err != nil {
		s.logger().Error("audit write failed; call refused", "call_id", req.id, "method", req.method, "error", err)
		s.writeFault(w, gofunc.Errorf(gofunc.CodeAuditFailed, "audit log unavailable; call %s not run", req.id))
		return
	}
	run := func(ctx context.Context) (any, error) { return meth.call(ctx, args) }
	var result any
	if s.Intercept != nil {
		result, err = s.Intercept(ctx, &Call{ID: req.id, Peer: req.peer, Method: req.method, Params: req.params}, run)
	} else {
		result, err = run(ctx)
	}
	s.finish(ctx, w, req, result, err)
}

// finish encodes the outcome, writes the end record and the response.
func (s *Server) finish(ctx context.Context, w http.ResponseWriter, req *request, result any, err error) {
	var buf bytes.Buffer
	fault := s.outcomeFault(ctx, req, err)
	if fault == nil {
		if encErr := xmlrpc.EncodeResponse(&buf, result); encErr != nil {
			fault = gofunc.Errorf(gofunc.CodeInternal, "%s: result cannot be encoded: %v", req.method, encErr)
		} else if limit := orDefault(s.MaxResultBytes, DefaultMaxResultBytes); int64(buf.Len()) > limit {
			fault = gofunc.Errorf(gofunc.CodeTooLarge, "%s: result is %d bytes, over the %d-byte limit", req.method, buf.Len(), limit)
		}
	}
	if fault != nil {
		buf.Reset()
		_ = xmlrpc.EncodeFault(&buf, fault)
	}
	s.auditEnd(req, fault, buf.Bytes())
	writeXML(w, buf.Bytes())
}

// outcomeFault turns a method's error into the fault the caller sees.
func (s *Server) outcomeFault(ctx context.Context, req *request, err error) *gofunc.Fault {
	if err == nil {
		return nil
	}
	var pe *panicError
	switch {
	case errors.As(err, &pe):
		s.logger().Error("module panicked", "call_id", req.id, "method", req.method, "panic", pe.value, "stack", string(pe.stack))
		return gofunc.Errorf(gofunc.CodeInternal, "%s failed inside the minion; see call %s in its log", req.method, req.id)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && !isFault(err):
		return gofunc.Errorf(gofunc.CodeTimeout, "%s: deadline passed: %v", req.method, err)
	case errors.Is(ctx.Err(), context.Canceled) && !isFault(err):
		return gofunc.Errorf(gofunc.CodeCanceled, "%s: cancelled: %v", req.method, err)
	}
	return gofunc.AsFault(err)
}

func isFault(err error) bool {
	var f *gofunc.Fault
	return errors.As(err, &f)
}

// callContext gives the call its deadline: the caller's budget from the
// timeout header, capped by MaxCallTimeout. The request's context is
// cancelled when the caller disconnects or the server closes.
func (s *Server) callContext(r *http.Request) (context.Context, context.CancelFunc, error) {
	limit := orDefault(s.MaxCallTimeout, DefaultMaxCallTimeout)
	budget := limit
	if h := r.Header.Get(gofunc.TimeoutHeader); h != "" {
		d, err := time.ParseDuration(h)
		if err != nil || d <= 0 {
			return nil, nil, gofunc.Errorf(gofunc.CodeInvalid, "bad %s header %q", gofunc.TimeoutHeader, h)
		}
		budget = min(d, limit)
	}
	ctx, cancel := context.WithTimeout(r.Context(), budget)
	return gofunc.NewContext(ctx, s.currentPeer(r)), cancel, nil
}

func (s *Server) currentPeer(r *http.Request) gofunc.Peer {
	p, _ := s.peer(r)
	return p
}

// peer is the caller as its own connection proves it: taken per request
// from that request's TLS state, never shared between calls.
func (s *Server) peer(r *http.Request) (gofunc.Peer, error) {
	if r.TLS == nil {
		return gofunc.Peer{}, errors.New("no TLS connection state")
	}
	p, err := ca.PeerFromConnState(*r.TLS)
	if err != nil {
		return gofunc.Peer{}, err
	}
	p.Addr = r.RemoteAddr
	if leaf := r.TLS.PeerCertificates[0]; s.Identity.Revoked(leaf) {
		return p, fmt.Errorf("certificate %s (%s) is revoked", p.Serial, p.Name)
	}
	return p, nil
}

// reject answers a request that never reached its method, and records it.
func (s *Server) reject(w http.ResponseWriter, req *request, f *gofunc.Fault) {
	s.record(audit.Record{Kind: "call.rejected", Outcome: f.Code.String(), Code: int(f.Code), Error: f.Message}, req)
	s.writeFault(w, f)
}

func (s *Server) deny(w http.ResponseWriter, req *request) {
	s.logger().With("peer", req.peer.Name, "serial", req.peer.Serial).Warn("call denied", "method", req.method)
	f := gofunc.Errorf(gofunc.CodeDenied, "%s (%s) may not call %s", req.peer.Name, req.peer.Role, req.method)
	s.record(audit.Record{Kind: "call.denied", Outcome: "denied", Code: int(f.Code), Error: f.Message}, req)
	s.writeFault(w, f)
}

func (s *Server) auditStart(req *request) error {
	rec := audit.Record{Kind: "call.start"}
	var docs []gofunc.ArgDoc
	if req.meth != nil {
		docs = req.meth.doc.Args
	}
	rec.Args, rec.ArgsDigest = audit.SummarizeArgs(req.params, docs)
	fill(&rec, req)
	_, err := s.Audit.Append(rec)
	return err
}

func (s *Server) auditEnd(req *request, f *gofunc.Fault, body []byte) {
	rec := audit.Record{Kind: "call.end", Outcome: "ok", Duration: time.Since(req.start)}
	if f != nil {
		rec.Outcome, rec.Code, rec.Error = f.Code.String(), int(f.Code), f.Message
	}
	sum := sha256.Sum256(body)
	rec.ResultDigest = "sha256:" + hex.EncodeToString(sum[:])
	fill(&rec, req)
	if _, err := s.Audit.Append(rec); err != nil {
		s.logger().Error("audit end record failed", "call_id", req.id, "method", req.method, "error", err)
	}
}

// record writes a one-off record (rejections, denials). A failure is
// logged: the caller gets a fault either way.
func (s *Server) record(rec audit.Record, req *request) {
	if req.params != nil {
		var docs []gofunc.ArgDoc
		if req.meth != nil {
			docs = req.meth.doc.Args
		}
		rec.Args, rec.ArgsDigest = audit.SummarizeArgs(req.params, docs)
	}
	fill(&rec, req)
	if _, err := s.Audit.Append(rec); err != nil {
		s.logger().Error("audit write failed", "call_id", req.id, "kind", rec.Kind, "error", err)
	}
}

func fill(rec *audit.Record, req *request) {
	rec.CallID = req.id
	rec.Caller, rec.Role, rec.Serial, rec.Remote = req.peer.Name, string(req.peer.Role), req.peer.Serial, req.peer.Addr
	rec.Method = req.method
}

func (s *Server) writeFault(w http.ResponseWriter, f *gofunc.Fault) {
	var buf bytes.Buffer
	_ = xmlrpc.EncodeFault(&buf, f)
	writeXML(w, buf.Bytes())
}

func writeXML(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	_, _ = w.Write(body)
}

// newCallID returns a random 96-bit id, hex.
func newCallID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("panic: %v", p.value) }

func stack() []byte { return debug.Stack() }
