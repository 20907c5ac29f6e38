package minion

import (
	"context"
	"crypto/x509"
	"io"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Start readies the server for Handle without a listener of its own:
// a minion that only dials out (to a message broker) opens no port.
// Serve may still be called afterwards to add the HTTPS door. Shutdown
// and Close stop it as they stop Serve. Start returns ErrServing when
// the server is already started and ErrServerClosed after Shutdown.
func (s *Server) Start() error {
	_, err := s.start()
	return err
}

// Inbound is one call that reached the minion by a transport other than
// its own HTTPS listener: a message broker, say. Handle puts it through
// every check the listener's calls go through.
type Inbound struct {
	// Caller is the certificate the caller presented. Handle verifies
	// it against the minion's CA and CRL and takes the caller's name and
	// role from it; proof that the caller holds its key (a signature
	// over the call) is the transport's to check before Handle.
	Caller *x509.Certificate
	// Via names the transport ("nats"); the audit log records it with
	// every record of the call. Required.
	Via string
	// OnBehalfOf is the person the caller calls for ("name@role"), as
	// the transport carried it; "" when none. Only a delegate may send
	// one (see gofunc.OnBehalfOfHeader).
	OnBehalfOf string
	// Remote is the caller's address as the transport knows it, for the
	// audit log; may be empty.
	Remote string
	// ID is the call's id in the audit log; empty means Handle makes
	// one. A transport that carries its own call ids (for replies and
	// retries) passes them here.
	ID string
	// Deadline bounds the call; zero means MaxCallTimeout, which also
	// caps it.
	Deadline time.Time
	// Body is the XML-RPC methodCall. It is read within MaxBodyBytes.
	Body io.Reader
	// Size is Body's length when the transport knows it, -1 (or 0)
	// when not: a body declared larger than MaxBodyBytes is refused
	// before it is read.
	Size int64
	// Refusal, when set, is the transport's verdict that the call must
	// not run (its envelope expired, was replayed, its signature did not
	// verify...): Handle checks the caller's certificate, reads the
	// method name, then refuses the call with this fault and records
	// the refusal as a denial, as it does a call the ACL refuses.
	Refusal *gofunc.Fault
	// Details are added to every audit record of the call (the
	// envelope's issue time, deadline, signer...). Keys Handle sets
	// itself ("via", "job") win.
	Details map[string]string
}

// Reply is the minion's answer to an Inbound call.
type Reply struct {
	// ID is the call's id in the audit log.
	ID string
	// Body is the XML-RPC methodResponse: the method's result, or a
	// fault (denied, busy, bad arguments, the method's error...).
	Body []byte
	// AuditHead is where the audit log stood after the call's last
	// record ("seq:hash", see audit.Checkpoint), for the caller's own
	// log to witness; empty for calls refused before the ACL passed.
	AuditHead string
}

// Handle runs one call that came by another transport, through the same
// dispatcher as the minion's own listener: the caller's certificate
// (chain, role, CRL), the ACL, the concurrency limit, the audit record
// before the method runs and after, the method itself (or its async
// job). ctx ends the call early when the caller is gone. The server
// must be serving: before Serve and after Shutdown or Close the answer
// is a CodeUnavailable or CodeCanceled fault and nothing is recorded.
// Handle is safe for concurrent use.
func (s *Server) Handle(ctx context.Context, in Inbound) Reply {
	id := in.ID
	if id == "" {
		id = newCallID()
	}
	out := Reply{ID: id}
	var rep reply
	if f := s.admit(); f != nil {
		rep.fault(f)
	} else {
		defer s.calls.done()
		via := in.Via
		if via == "" {
			via = "unnamed"
		}
		size := in.Size
		if size <= 0 {
			size = -1
		}
		rep = s.handle(ctx, &inbound{id: id, via: via, behalf: in.OnBehalfOf, caller: in.Caller, verify: true, remote: in.Remote,
			deadline: in.Deadline, body: in.Body, size: size, refusal: in.Refusal, details: in.Details})
	}
	out.Body = rep.body
	if rep.head.Seq != 0 {
		out.AuditHead = rep.head.String()
	}
	return out
}

// admit counts a call that came through Handle as work in flight, or
// says why the server takes none: it is not serving yet, or no longer.
func (s *Server) admit() *gofunc.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return gofunc.Errorf(gofunc.CodeCanceled, "minion shutting down")
	case !s.started:
		return gofunc.Errorf(gofunc.CodeUnavailable, "minion not serving yet")
	}
	s.calls.add()
	return nil
}

// verifiedPeers remembers the callers' certificates Handle has verified
// (chain, role, CRL), so that a door without TLS sessions (a broker's:
// every call carries its certificate) walks each chain once rather than
// per call. An entry holds for the identity and the CRL it was checked
// against, until the certificate or the CA expires.
type verifiedPeers struct {
	mu sync.Mutex
	m  map[string]verifiedPeer // by certificate DER
}

type verifiedPeer struct {
	peer gofunc.Peer
	id   *identity.Identity
	crl  int64
}

// maxVerifiedPeers bounds the cache; past it, it starts over.
const maxVerifiedPeers = 1 << 14

func (v *verifiedPeers) get(cert *x509.Certificate, id *identity.Identity) (gofunc.Peer, bool) {
	v.mu.Lock()
	e, ok := v.m[string(cert.Raw)]
	v.mu.Unlock()
	now := time.Now()
	if !ok || e.id != id || e.crl != id.CRLNumber() || !now.Before(cert.NotAfter) || !now.Before(id.CACert().NotAfter) {
		return gofunc.Peer{}, false
	}
	return e.peer, true
}

func (v *verifiedPeers) put(cert *x509.Certificate, id *identity.Identity, p gofunc.Peer) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedPeers {
		v.m = make(map[string]verifiedPeer)
	}
	v.m[string(cert.Raw)] = verifiedPeer{peer: p, id: id, crl: id.CRLNumber()}
}
