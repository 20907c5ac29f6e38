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
	"github.com/gofunc/gofunc/ca"
)

// DefaultAddr is where a minion listens when Server.Addr is empty.
const DefaultAddr = ":51234"

// Defaults for the Server's limits.
const (
	DefaultMaxBodyBytes      = 8 << 20
	DefaultMaxResultBytes    = 64 << 20
	DefaultMaxConcurrent     = 64
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxCallTimeout    = time.Hour
)

// Errors returned by Serve and friends.
var (
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = http.ErrServerClosed
	// ErrNoIdentity and ErrNoAudit: a minion without a certificate or
	// without an audit log refuses to serve; there is no insecure zero.
	ErrNoIdentity = errors.New("minion: Server.Identity is required")
	ErrNoAudit    = errors.New("minion: Server.Audit is required")
)

// Server is a minion: it serves XML-RPC over HTTPS to callers that show
// a certificate signed by the CA, authorizes each call against the ACL,
// writes it to the audit log before it runs, and runs it.
//
// Configure the exported fields, Register modules, then call Serve or
// ListenAndServe. Zero fields mean the documented defaults, applied once
// when serving starts. A Server must not be copied after first use.
type Server struct {
	// Addr is the TCP address ListenAndServe listens on; empty means
	// ":51234".
	Addr string

	// Identity is the minion's certificate, key and CA. Required.
	// Callers must present a certificate signed by the same CA, not
	// revoked by the CRL the identity holds.
	Identity *ca.Identity

	// Audit receives a record of every request before it runs.
	// Required: without an audit log the minion does not serve.
	Audit *audit.Log

	// ACL decides who may call what; nil means DefaultACL: overlord
	// certificates may call every method that is not Dangerous, minion
	// and certmaster certificates nothing.
	ACL *ACL

	// Logger receives operational logs; nil discards them.
	Logger hclog.Logger

	// MaxBodyBytes bounds a request body; zero means 8 MiB.
	MaxBodyBytes int64
	// MaxResultBytes bounds an encoded result; zero means 64 MiB. A
	// larger result is replaced by a CodeTooLarge fault.
	MaxResultBytes int64
	// MaxConcurrent bounds calls in flight; zero means 64. Calls beyond
	// it are refused at once with CodeBusy rather than queued, so a
	// flood cannot build an unbounded backlog.
	MaxConcurrent int
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout are passed to
	// http.Server; zero means 10s, 60s and 120s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// Intercept, if set, wraps every authorized, audited call: it may
	// observe it, delay it, or answer in the method's place (metrics,
	// rate limits per caller, fault injection in tests). Nil means the
	// method runs directly.
	Intercept Interceptor

	// MaxCallTimeout caps the deadline a caller may ask for, and is the
	// deadline of calls that ask for none; zero means one hour.
	MaxCallTimeout time.Duration

	reg       registry
	aclLoaded atomic.Pointer[ACL]

	mu       sync.Mutex
	started  bool
	closed   bool
	http     *http.Server
	sem      chan struct{}
	baseCtx  context.Context
	cancel   context.CancelFunc
	inflight sync.WaitGroup
}

// Call describes a call to an Interceptor.
type Call struct {
	ID     string // the call's id in the audit log
	Peer   gofunc.Peer
	Method string // "module.method"
	Params []any  // decoded arguments; do not modify
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
	hs, err := s.start()
	if err != nil {
		ln.Close()
		return err
	}
	return hs.Serve(tls.NewListener(ln, hs.TLSConfig))
}

func (s *Server) start() (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.started {
		return nil, errors.New("minion: Serve called twice")
	}
	if s.Identity == nil {
		return nil, ErrNoIdentity
	}
	if s.Audit == nil {
		return nil, ErrNoAudit
	}
	if err := s.registerSystem(); err != nil {
		return nil, err
	}
	s.baseCtx, s.cancel = context.WithCancel(context.Background())
	s.sem = make(chan struct{}, orDefault(s.MaxConcurrent, DefaultMaxConcurrent))
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		TLSConfig:         s.Identity.ServerTLSConfig(),
		ReadHeaderTimeout: orDefault(s.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       orDefault(s.ReadTimeout, DefaultReadTimeout),
		IdleTimeout:       orDefault(s.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.logger().StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
	}
	s.started = true
	return s.http, nil
}

// Shutdown stops accepting connections and waits for calls in flight to
// finish, or for ctx to end; then it cancels the calls still running.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	hs, cancel := s.http, s.cancel
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	err := hs.Shutdown(ctx)
	cancel()
	s.inflight.Wait()
	return err
}

// Close stops the server at once: listeners and connections are closed
// and calls in flight are cancelled. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	hs, cancel := s.http, s.cancel
	s.mu.Unlock()
	if hs == nil {
		return nil
	}
	cancel()
	err := hs.Close()
	s.inflight.Wait()
	return err
}

func (s *Server) logger() hclog.Logger {
	if s.Logger == nil {
		return hclog.NewNullLogger()
	}
	return s.Logger
}

// SetACL replaces the ACL while the server runs (funcd calls it on
// SIGHUP); calls that start afterwards are judged by the new rules.
func (s *Server) SetACL(a *ACL) {
	s.aclLoaded.Store(a)
}

func (s *Server) acl() *ACL {
	if a := s.aclLoaded.Load(); a != nil {
		return a
	}
	if s.ACL == nil {
		return DefaultACL
	}
	return s.ACL
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Modules returns the names of the registered modules, sorted.
func (s *Server) Modules() []string { return s.reg.moduleNames() }

// CurrentACL returns the ACL calls are judged by now.
func (s *Server) CurrentACL() *ACL { return s.acl() }
