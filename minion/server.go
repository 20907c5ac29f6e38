package minion

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/identity"
)

// DefaultAddr is where a minion listens when Server.Addr is empty.
const DefaultAddr = ":51234"

// Defaults for the Server's limits: the values zero fields stand for.
const (
	DefaultMaxBodyBytes      = 8 << 20
	DefaultMaxResultBytes    = 64 << 20
	DefaultMaxConcurrent     = 64
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerIP     = 128
	DefaultMaxHandshakes     = 256
	DefaultHandshakeTimeout  = 5 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxCallTimeout    = time.Hour
	DefaultMaxJobs           = 64
	DefaultJobRetention      = time.Hour
)

// maxHeaderBytes bounds a request's headers; XML-RPC needs few.
const maxHeaderBytes = 64 << 10

// Errors returned by Serve and friends.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = http.ErrServerClosed
	// ErrNoIdentity and ErrNoAudit: a minion without a certificate or
	// without an audit log refuses to serve; there is no insecure zero.
	ErrNoIdentity = errors.New("minion: Server.Identity is required")
	ErrNoAudit    = errors.New("minion: Server.Audit is required")
	// ErrServing is returned by Serve when the server is already serving.
	ErrServing = errors.New("minion: Serve called twice")
)

// Server is a minion: it serves XML-RPC over HTTPS to callers that show
// a certificate signed by the CA, authorizes each call against the ACL,
// writes it to the audit log before it runs, and runs it.
//
// Configure the exported fields, Register modules, then call Serve or
// ListenAndServe. Zero fields mean the documented defaults, applied once
// when serving starts; later changes to the fields have no effect, except
// through SetIdentity and SetACL. A Server must not be copied after first
// use.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on; empty means
	// ":51234".
	Addr string

	// Identity is the minion's certificate, key and CA. Required.
	// Callers must present a certificate signed by the same CA, not
	// revoked by the CRL the identity holds. SetIdentity replaces it
	// while the server runs.
	Identity *identity.Identity

	// Certmaster is the certmaster's HOST:PORT. When set, the minion
	// keeps its identity fresh while it serves: it fetches the CRL at
	// once and every CRLInterval, so callers the CA revokes are refused
	// within that time, and renews its certificate when it is two
	// thirds into its lifetime; a newer CRL and a renewed certificate
	// are saved in the identity's directory when it has one. Shutdown
	// and Close stop both; SetIdentity moves them to the new identity.
	// Empty (the default) means neither: the CRL the identity holds
	// stays as it is and the certificate expires.
	Certmaster string
	// CRLInterval is how often the CRL is fetched from Certmaster; zero
	// means identity.DefaultCRLInterval (30s).
	CRLInterval time.Duration

	// Audit receives a record of every request before it runs: an
	// *audit.Log, or an *audit.Shared for a log file several processes
	// write. Required: without an audit log the minion does not serve.
	Audit audit.Appender

	// ACL decides who may call what; nil means DefaultACL: overlord
	// certificates may call every method that is not Dangerous, minion
	// and certmaster certificates nothing. SetACL replaces it while the
	// server runs.
	ACL *ACL

	// Logger receives operational logs; nil discards them.
	Logger hclog.Logger

	// MaxBodyBytes bounds a request body; zero means 8 MiB. A larger
	// body is refused with CodeTooLarge. Values nested deeper than 32
	// levels are refused the same way.
	MaxBodyBytes int64
	// MaxResultBytes bounds an encoded result; zero means 64 MiB. A
	// larger result is replaced by a CodeTooLarge fault.
	MaxResultBytes int64
	// MaxConcurrent bounds calls in flight; zero means 64. Calls beyond
	// it are refused at once with CodeBusy rather than queued, so a
	// flood cannot build an unbounded backlog. The slot is taken before
	// the parameters are decoded, which bounds the memory calls take to
	// about MaxConcurrent times MaxBodyBytes (several times over while
	// decoding); an async call holds one until its job has started.
	// Busy refusals cost no audit write (nothing ran); they are counted
	// in Stats.
	MaxConcurrent int
	// MaxHandshakes bounds connections still in their TLS handshake;
	// zero means 256. HandshakeTimeout bounds one handshake; zero means
	// 5s. When a connection arrives and MaxHandshakes are in progress,
	// the oldest handshake from the address (IPv6: the /64) with the
	// most of them is closed to make room, rather than the newcomer
	// refused: connections that never authenticate cannot keep out the
	// callers that do. Stats counts evictions and failed handshakes;
	// handshakes refused for their certificate (revoked, unknown CA,
	// expired, no gofunc role, none at all) are logged and audited as
	// tls.refused, rate limited per address like call refusals.
	MaxHandshakes    int
	HandshakeTimeout time.Duration
	// MaxConns bounds authenticated connections; zero means 1024.
	// MaxConnsPerIP bounds those from one remote address; zero means
	// 128. A connection beyond either is closed as soon as its
	// handshake is done, so one host cannot crowd out the others.
	MaxConns      int
	MaxConnsPerIP int
	// ReadHeaderTimeout bounds the reading of a request's headers,
	// ReadTimeout the whole request including its body, IdleTimeout a
	// kept-alive connection between requests; zero means 10s, 60s and
	// 120s. A slow client is cut off, never waited for.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// WriteTimeout bounds the writing of a response once the call is
	// done (a caller that does not read its answer); zero means 60s.
	// It does not limit how long the method runs.
	WriteTimeout time.Duration

	// MaxCallTimeout caps the deadline a caller may ask for (the
	// Gofunc-Timeout header), and is the deadline of calls that ask
	// for none and of async jobs; zero means one hour.
	MaxCallTimeout time.Duration

	// JobDir is where async jobs keep their state and results, one file
	// per job (0600, written atomically), so that jobs.job_status
	// answers across restarts; a job that was running when the process
	// died is reported lost. Empty means jobs live in memory only.
	JobDir string
	// MaxJobs bounds async jobs running at once; zero means 64. Beyond
	// it, async calls are refused with CodeBusy. Jobs do not count
	// against MaxConcurrent.
	MaxJobs int
	// JobRetention is how long a finished job's result is kept; zero
	// means one hour (Func's retention). At most 4096 finished jobs are
	// kept, the oldest dropped first.
	JobRetention time.Duration

	// Intercept, if set, wraps every authorized, audited call: it may
	// observe it, delay it, or answer in the method's place (metrics,
	// rate limits per caller, fault injection in tests). Nil means the
	// method runs directly.
	Intercept Interceptor

	// Events is the minion's event journal. The built-in module events
	// serves it (events.since, a long-poll, to whom the ACL allows: by
	// default overlord and monitor certificates), and the server writes
	// its lifecycle events to it: started, stopping, certificate renewed
	// (by its Certmaster or through SetIdentity), ACL reloaded (SetACL).
	// Nil (the default) means no journal: events.since answers
	// CodeUnavailable. The server does not close it; close it after
	// Shutdown.
	Events *events.Journal
	// MaxPolls bounds the events.since long-polls waiting at once; they
	// have their own slots so that readers cannot take MaxConcurrent's
	// from calls. Zero means DefaultMaxPolls (256).
	MaxPolls int
	// Activity, if set, counts the module calls running (not those of
	// the minion's own modules: system, events, jobs), so that watchers
	// set to pause during calls (events/watch) wait for them.
	Activity *events.Activity
	// Observe, if set, is told how every request the dispatcher took
	// ended (minion/minionmetrics counts them), and how every async
	// call's job ended (CallObservation.Job). It is called
	// concurrently, from the calls' goroutines, and must not block.
	Observe func(CallObservation)
	// Metrics, if set, is served at GET /metrics on the TLS port to
	// certificates of a role that reads metrics (monitor, overlord);
	// others get 401 or 403. Nil means /metrics is not served.
	Metrics http.Handler

	reg       registry
	aclLoaded atomic.Pointer[ACL]
	tlsState  atomic.Pointer[tlsState]
	stats     counters
	jobs      jobTable
	refusals  refusalLog
	verified  verifiedPeers // callers Handle has verified
	gate      atomic.Pointer[gateListener]

	mu        sync.Mutex
	started   bool
	listening bool // Serve has a listener (Start alone has none)
	closed    bool
	http      *http.Server
	sem       chan struct{}
	baseCtx   context.Context
	cancel    context.CancelFunc
	calls     tracker // requests in handlers and jobs in flight
	lastLog   atomic.Int64
	pollSem   chan struct{} // events.since slots (MaxPolls)
	polls     pollAudit

	refresher *identity.Refresher // keeps the identity fresh (Certmaster); under mu

	sweepStop chan struct{} // closed to stop sweepRefusals
	sweepDone chan struct{} // closed when it has stopped
	sweepOnce sync.Once
}

// tlsState is the identity in force and the TLS config made from it.
type tlsState struct {
	id  *identity.Identity
	cfg *tls.Config
}

// Call describes a call to an Interceptor.
type Call struct {
	ID     string // the call's id in the audit log
	Peer   gofunc.Peer
	Method string // "module.method"
	Params []any  // decoded arguments; do not modify
	JobID  string // set when the call runs as an async job
}

// Interceptor wraps a call; next runs the method (or the next
// interceptor). It runs on the call's goroutine, concurrently with
// other calls.
type Interceptor func(ctx context.Context, call *Call, next func(context.Context) (any, error)) (any, error)

// Register adds a module under name. Every exported method of v (except
// Doc and Close) becomes "name.method_name" on the wire; see the package
// documentation for the method shapes accepted. Register may be called
// while the server runs.
func (s *Server) Register(name string, v any) error {
	return s.reg.register(name, v, false)
}

// ListenAndServe listens on s.Addr and serves. It always returns a
// non-nil error; after Shutdown or Close it is ErrServerClosed.
func (s *Server) ListenAndServe() error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("minion: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts TLS connections on ln, which must be a plain TCP
// listener: the server adds TLS itself. It always returns a non-nil
// error; after Shutdown or Close it is ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	if ln == nil {
		return errors.New("minion: Serve needs a listener")
	}
	if err := s.claimListener(); err != nil {
		ln.Close()
		return err
	}
	return s.serve(ln)
}

// claimListener starts the server (unless Start did) and takes the
// listener's place: one Serve per server.
func (s *Server) claimListener() error {
	if _, err := s.start(); err != nil && !errors.Is(err, ErrServing) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listening {
		return ErrServing
	}
	s.listening = true
	return nil
}

func (s *Server) serve(ln net.Listener) error {
	s.mu.Lock()
	hs := s.http
	s.mu.Unlock()
	gate := newGateListener(ln, hs.TLSConfig, s)
	s.gate.Store(gate)
	return hs.Serve(gate)
}

// start applies the defaults and builds the http.Server, once.
func (s *Server) start() (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.started {
		return nil, ErrServing
	}
	if s.Identity == nil {
		return nil, ErrNoIdentity
	}
	if l, ok := s.Audit.(*audit.Log); s.Audit == nil || ok && l == nil {
		return nil, ErrNoAudit
	}
	if s.tlsState.Load() == nil {
		s.setIdentity(s.Identity)
	}
	if err := s.registerBuiltins(); err != nil {
		return nil, err
	}
	if err := s.jobs.open(s); err != nil {
		return nil, err
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.sem = make(chan struct{}, orDefault(s.MaxConcurrent, DefaultMaxConcurrent))
	s.pollSem = make(chan struct{}, orDefault(s.MaxPolls, DefaultMaxPolls))
	s.sweepStop, s.sweepDone = make(chan struct{}), make(chan struct{})
	go s.sweepRefusals(s.sweepStop, s.sweepDone)
	s.http = &http.Server{
		Handler: http.HandlerFunc(s.serveHTTP),
		TLSConfig: &tls.Config{
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) { return s.tlsState.Load().cfg, nil },
		},
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(s.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       orDefault(s.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeaderBytes,
		// Handshake failures from scanners and expired clients are noise
		// at info level; they are visible with debug logging.
		ErrorLog:    s.logger().StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		BaseContext: func(net.Listener) context.Context { return s.baseCtx },
	}
	s.started = true
	s.refreshLocked(s.CurrentIdentity())
	started := certLifecycle(events.PhaseStarted, s.CurrentIdentity())
	started.Version = buildVersion()
	s.lifecycle(started)
	return s.http, nil
}

// refreshLocked stops the refresher of the identity that was in force
// and starts one for id, when the server has a certmaster and serves.
// The caller holds mu.
func (s *Server) refreshLocked(id *identity.Identity) {
	if s.refresher != nil {
		s.refresher.Stop()
		s.refresher = nil
	}
	if s.Certmaster == "" || !s.started || s.closed {
		return
	}
	r := &identity.Refresher{Identity: id, Certmaster: s.Certmaster, CRLInterval: s.CRLInterval,
		Renew: true, Logger: s.logger().Named("identity"),
		OnRenew: func() { s.lifecycle(certLifecycle(events.PhaseCertRenewed, id)) }}
	if err := r.Start(); err != nil {
		s.logger().Error("identity refresh not started", "error", err)
		return
	}
	s.refresher = r
}

// Shutdown stops accepting connections and waits for calls and async
// jobs in flight to finish, or for ctx to end; then it cancels what is
// still running and waits for it to return. Methods must honour their
// context for Shutdown to be prompt. Jobs cancelled this way are
// recorded as finished with a CodeCanceled fault.
func (s *Server) Shutdown(ctx context.Context) error {
	hs, cancel := s.stop()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	if werr := s.calls.wait(ctx); err == nil {
		err = werr
	}
	cancel()
	s.calls.wait(context.Background())
	s.stopSweeper()
	s.reg.closeModules(s.logger())
	return err
}

// Close stops the server at once: listeners and connections are closed
// and calls and jobs in flight are cancelled; it waits for their
// methods to return. It is idempotent.
func (s *Server) Close() error {
	hs, cancel := s.stop()
	if hs == nil {
		return nil
	}
	cancel()
	err := hs.Close()
	s.calls.wait(context.Background())
	s.stopSweeper()
	s.reg.closeModules(s.logger())
	return err
}

// stopSweeper stops the refusal summaries' loop once nothing runs any
// more, and writes the summaries still pending.
func (s *Server) stopSweeper() {
	s.sweepOnce.Do(func() {
		close(s.sweepStop)
		<-s.sweepDone
		s.writeSuppressed(s.refusals.due(time.Now(), true))
	})
}

func (s *Server) stop() (*http.Server, context.CancelFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started && !s.closed {
		s.lifecycle(events.Lifecycle{Phase: events.PhaseStopping})
	}
	s.closed = true
	s.jobs.close()
	s.refreshLocked(nil) // closed: stops the refresher, starts none
	return s.http, s.cancel
}

func (s *Server) logger() hclog.Logger {
	if s.Logger == nil {
		return hclog.NewNullLogger()
	}
	return s.Logger
}

// SetACL replaces the ACL while the server runs (funcd calls it on
// SIGHUP); calls that start afterwards are judged by the new rules. A
// nil ACL restores s.ACL, or DefaultACL when that is nil.
func (s *Server) SetACL(a *ACL) {
	s.aclLoaded.Store(a)
	s.lifecycle(events.Lifecycle{Phase: events.PhaseACLReloaded, Detail: s.CurrentACL().summary()})
}

// CurrentACL returns the ACL calls are judged by now.
func (s *Server) CurrentACL() *ACL {
	if a := s.aclLoaded.Load(); a != nil {
		return a
	}
	if s.ACL == nil {
		return DefaultACL
	}
	return s.ACL
}

// SetIdentity replaces the minion's certificate, key, CA and CRL while
// the server runs (funcd calls it on SIGHUP after reading its identity
// directory again). New connections use it from their handshake on,
// and every request, on old connections too, is checked against its
// CRL. Connections already open keep the TLS session they made.
//
// With a Certmaster, the CRL is fetched into id before it takes over
// (the one in its directory may be older than the one in force, and no
// revocation may be forgotten), and the refreshing moves to id.
func (s *Server) SetIdentity(id *identity.Identity) error {
	if id == nil {
		return ErrNoIdentity
	}
	if s.Certmaster != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := identity.FetchCRL(ctx, id, s.Certmaster); err != nil {
			s.logger().Warn("crl fetch for the new identity failed; its own crl is in force", "error", err)
		}
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.CurrentIdentity().Leaf()
	s.setIdentity(id)
	s.refreshLocked(id)
	if !id.Leaf().Equal(old) {
		s.lifecycle(certLifecycle(events.PhaseCertRenewed, id))
	}
	return nil
}

func (s *Server) setIdentity(id *identity.Identity) {
	s.tlsState.Store(&tlsState{id: id, cfg: serverTLSConfig(id)})
}

// CurrentIdentity returns the identity in force: the last one given to
// SetIdentity, else Identity.
func (s *Server) CurrentIdentity() *identity.Identity {
	if st := s.tlsState.Load(); st != nil {
		return st.id
	}
	return s.Identity
}

// Modules returns the names of the registered modules, sorted.
func (s *Server) Modules() []string { return s.reg.moduleNames() }

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Stats counts what the server has done since it started.
type Stats struct {
	Calls        uint64 // calls that reached their method (sync and async)
	Denied       uint64 // calls the ACL refused
	Rejected     uint64 // requests that never reached a method: bad XML, no such method, bad arguments
	Busy         uint64 // calls refused with CodeBusy
	AuditFailed  uint64 // calls refused because the audit log failed
	ConnsRefused uint64 // authenticated connections closed for MaxConns or MaxConnsPerIP

	HandshakesEvicted uint64 // connections closed in their handshake to make room (MaxHandshakes)
	HandshakesFailed  uint64 // handshakes that failed or timed out, refused certificates included
	Handshaking       int    // connections in their TLS handshake now
	InFlight          int    // calls and jobs running now
	JobsRunning       int    // async jobs running now
}

type counters struct {
	calls, denied, rejected, busy, auditFailed, connsRefused atomic.Uint64
	handshakesEvicted, handshakesFailed                      atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Calls:        s.stats.calls.Load(),
		Denied:       s.stats.denied.Load(),
		Rejected:     s.stats.rejected.Load(),
		Busy:         s.stats.busy.Load(),
		AuditFailed:  s.stats.auditFailed.Load(),
		ConnsRefused: s.stats.connsRefused.Load(),

		HandshakesEvicted: s.stats.handshakesEvicted.Load(),
		HandshakesFailed:  s.stats.handshakesFailed.Load(),
		Handshaking:       s.gate.Load().handshaking(),
		InFlight:          s.calls.count(),
		JobsRunning:       s.jobs.running(),
	}
}

// tracker counts work in flight and lets Shutdown wait for it. Unlike
// sync.WaitGroup it allows new work to start while someone waits.
type tracker struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0; nil means closed
}

func (t *tracker) add() {
	t.mu.Lock()
	if t.n == 0 {
		t.idle = make(chan struct{})
	}
	t.n++
	t.mu.Unlock()
}

func (t *tracker) done() {
	t.mu.Lock()
	t.n--
	if t.n == 0 {
		close(t.idle)
	}
	t.mu.Unlock()
}

func (t *tracker) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// wait returns when nothing is in flight or ctx ends.
func (t *tracker) wait(ctx context.Context) error {
	for {
		t.mu.Lock()
		if t.n == 0 {
			t.mu.Unlock()
			return nil
		}
		idle := t.idle
		t.mu.Unlock()
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
