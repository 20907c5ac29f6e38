package ca

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/clip"
	"github.com/gofunc/gofunc/internal/pki"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown
// or Close.
var ErrServerClosed = http.ErrServerClosed

// Defaults of Service fields.
const (
	DefaultAddr         = ":51235"
	DefaultMaxBodyBytes = 64 << 10
	DefaultRateLimit    = rate.Limit(2) // requests per second per source IP
	DefaultRateBurst    = 20
	// DefaultAuthRateLimit and DefaultAuthRateBurst limit the calls of
	// one valid client certificate.
	DefaultAuthRateLimit     = rate.Limit(20)
	DefaultAuthRateBurst     = 200
	DefaultMaxConns          = 1024
	DefaultMaxConnsPerSource = 64
)

// Service is the certmaster network service: XML-RPC over TLS (never
// plain HTTP), answering
//
//	wait_for_cert(csr_pem)          -> [signed bool, cert_pem, ca_pem]   (Func's call)
//	enroll({csr, name, addr, token}) -> {status, reason, cert, ca, crl}
//	renew(csr_pem)                  -> {cert, ca, crl}    client certificate required
//	get_crl()                       -> crl_pem
//	get_ca()                        -> ca_pem
//	list_minions()                  -> [{name, addr, serial, not_after, ips, seen}]   overlords and dashboards (delegate) only
//
// and two GET paths for monitoring, over mutual TLS to certificates of
// role monitor or overlord: SDPath ("/sd/prometheus", Prometheus HTTP
// service discovery of the enrolled minions) and MetricsPath
// ("/metrics", when Metrics is set).
//
// A client certificate is optional (minions enrolling have none); when
// one is given it is verified against the CA and the CRL, and the calls
// that need one (renew, list_minions) check its role per call. Bodies
// are bounded, each source IP is rate-limited, and every answer to bad
// input is a fault with a fitting code; the service keeps serving
// others.
//
// Configure the exported fields before Serve; they are read once, at
// the first Serve or ListenAndServe.
type Service struct {
	// Authority is the CA. Required.
	Authority *Authority
	// Identity is the certmaster's own server identity (role certmaster).
	// Nil means DIR/cert.pem and DIR/key.pem, issued on first start (and
	// re-issued when past two thirds of their lifetime) for ServerNames and
	// ServerIPs.
	Identity *identity.Identity
	// ServerNames are the DNS names of an issued server certificate;
	// default the host name and "localhost". Minions do not check them
	// (they pin the CA and check the certmaster role), other clients may.
	ServerNames []string
	// ServerIPs are the IP SANs of an issued server certificate; default
	// 127.0.0.1 and ::1.
	ServerIPs []net.IP
	// Addr is the listen address of ListenAndServe; default ":51235".
	Addr string
	// Autosign is a glob (fnmatch, case-insensitive) of minion names whose
	// valid requests are signed without the admin; "" (the default)
	// means none: every request waits for `certmaster sign`.
	Autosign string
	// Logger receives operational logs; nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// MaxBodyBytes bounds a request body; default 64 KiB.
	MaxBodyBytes int64
	// RateLimit is how many calls per second one source (an IPv4
	// address, an IPv6 /64) may make without a valid client certificate,
	// with bursts of RateBurst; defaults 2/s and 20. Calls with a valid
	// certificate count against that certificate instead, at 20/s with
	// bursts of 200.
	RateLimit rate.Limit
	RateBurst int
	// MaxConns caps the connections open at once, handshakes included;
	// default 1024. A connection over it is closed at once.
	MaxConns int
	// MaxConnsPerSource caps the connections of one source (IPv4
	// address, IPv6 /64); default 64.
	MaxConnsPerSource int
	// Metrics, when set, is served at GET /metrics to certificates of
	// role monitor or overlord (ca/cametrics and metrics.Handler make
	// one); nil means no metrics on the service's port.
	Metrics http.Handler

	once       sync.Once
	initErr    error
	cfg        serviceConfig
	mu         sync.Mutex
	srv        *http.Server
	closed     bool
	limits     limiterSet // per source, for unauthenticated calls
	authLimits limiterSet // per certificate
	conns      connLimits
	crl        crlWatch
	certMu     sync.Mutex
	chain      *tls.Certificate // leaf + CA, rebuilt when the identity's leaf changes
	ownedID    bool             // Identity came from DIR: Reload re-reads it
}

type serviceConfig struct {
	logger   hclog.Logger
	maxBody  int64
	autosign string
}

func (s *Service) init() error {
	s.once.Do(func() { s.initErr = s.setup() })
	return s.initErr
}

func (s *Service) setup() error {
	if s.Authority == nil {
		return errors.New("ca: Service.Authority is nil")
	}
	s.cfg = serviceConfig{logger: s.Logger, maxBody: s.MaxBodyBytes, autosign: strings.ToLower(s.Autosign)}
	if s.cfg.logger == nil {
		s.cfg.logger = hclog.NewNullLogger()
	}
	if s.cfg.maxBody <= 0 {
		s.cfg.maxBody = DefaultMaxBodyBytes
	}
	rl, burst := s.RateLimit, s.RateBurst
	if rl <= 0 {
		rl = DefaultRateLimit
	}
	if burst <= 0 {
		burst = DefaultRateBurst
	}
	s.limits = limiterSet{limit: rl, burst: burst, m: map[string]*limiterEntry{}}
	s.authLimits = limiterSet{limit: DefaultAuthRateLimit, burst: DefaultAuthRateBurst, m: map[string]*limiterEntry{}}
	s.conns = connLimits{max: s.MaxConns, perSource: s.MaxConnsPerSource, bySource: map[string]int{}}
	if s.conns.max <= 0 {
		s.conns.max = DefaultMaxConns
	}
	if s.conns.perSource <= 0 {
		s.conns.perSource = DefaultMaxConnsPerSource
	}
	s.crl = crlWatch{path: s.Authority.path(fileCRL), ca: s.Authority.cert}
	if s.Identity == nil {
		id, err := s.Authority.ServerIdentity(s.ServerNames, s.ServerIPs)
		if err != nil {
			return err
		}
		s.Identity, s.ownedID = id, true
	}
	if identity.RoleOf(s.Identity.Leaf()) != gofunc.RoleCertmaster {
		return fmt.Errorf("ca: Service.Identity has role %q, want certmaster", identity.RoleOf(s.Identity.Leaf()))
	}
	if !s.Identity.CACert().Equal(s.Authority.cert) {
		return errors.New("ca: Service.Identity was not issued by Service.Authority")
	}
	return nil
}

// Reload re-reads what can change under a running service (SIGHUP): the
// server certificate when it came from DIR (renewing it when due). The
// CRL needs no reload: every handshake checks DIR/crl.pem for changes.
func (s *Service) Reload() error {
	if err := s.init(); err != nil {
		return err
	}
	if !s.ownedID {
		return nil
	}
	// ServerIdentity renews the certificate in DIR when due; the
	// identity the service holds then re-reads it from there.
	if _, err := s.Authority.ServerIdentity(s.ServerNames, s.ServerIPs); err != nil {
		return err
	}
	if err := s.Identity.Reload(); err != nil {
		return err
	}
	c := s.Identity.Certificate()
	s.logger().Info("certmaster identity reloaded", "serial", serialHex(c.Leaf.SerialNumber), "not_after", c.Leaf.NotAfter)
	return nil
}

func (s *Service) logger() hclog.Logger { return s.cfg.logger }

// TLSConfig returns the service's server TLS config: its certificate
// plus the CA certificate in the chain (so an enrolling minion sees the
// CA it pins), client certificates optional but verified against the CA
// and the CRL when given.
func (s *Service) TLSConfig() (*tls.Config, error) {
	if err := s.init(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     pki.TLSMinVersion,
		CipherSuites:   pki.TLSCipherSuites,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      s.Identity.Roots(),
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certChain(), nil },
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 && s.crl.revoked(cs.PeerCertificates[0]) {
				return fmt.Errorf("%w: %s", identity.ErrRevoked, cs.PeerCertificates[0].Subject.CommonName)
			}
			return nil
		},
	}, nil
}

func (s *Service) certChain() *tls.Certificate {
	cur := s.Identity.Certificate()
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if s.chain == nil || s.chain.Leaf != cur.Leaf {
		s.chain = &tls.Certificate{
			Certificate: [][]byte{cur.Leaf.Raw, s.Identity.CACert().Raw},
			PrivateKey:  cur.PrivateKey,
			Leaf:        cur.Leaf,
		}
	}
	return s.chain
}

// Serve accepts TLS connections on ln (a plain TCP listener: Serve adds
// TLS) until Shutdown or Close, and then returns ErrServerClosed. It
// always returns a non-nil error.
func (s *Service) Serve(ln net.Listener) error {
	cfg, err := s.TLSConfig()
	if err != nil {
		ln.Close()
		return err
	}
	srv, err := s.server()
	if err != nil {
		ln.Close()
		return err
	}
	s.logger().Info("certmaster serving", "addr", ln.Addr().String(), "ca", s.Authority.Fingerprint(), "autosign", s.cfg.autosign)
	return srv.Serve(tls.NewListener(&limitListener{Listener: ln, limits: &s.conns, logger: s.logger()}, cfg))
}

// ListenAndServe listens on Addr (default ":51235") and calls Serve.
func (s *Service) ListenAndServe() error {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	if _, err := s.server(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

func (s *Service) server() (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	if s.srv == nil {
		s.srv = &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          s.logger().StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		}
	}
	return s.srv, nil
}

// Shutdown stops accepting connections and waits for the calls in
// flight, or for ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// Close stops the service at once. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	srv := s.srv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Close()
}

// ServeHTTP handles one XML-RPC call. Exported so the service can be
// mounted in another server; that server must provide TLS with
// TLSConfig for the client-certificate calls to work.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.init(); err != nil {
		http.Error(w, "certmaster misconfigured", http.StatusInternalServerError)
		return
	}
	if s.serveGet(w, r) {
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "XML-RPC wants POST", http.StatusMethodNotAllowed)
		return
	}
	source := r.RemoteAddr
	if key, limits := s.limiterFor(r); !limits.allow(key, time.Now()) {
		s.logger().Warn("rate limit hit", "source", key)
		s.writeFault(w, gofunc.Errorf(gofunc.CodeBusy, "too many requests from %s; slow down", key))
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.maxBody+1)
	call, err := xmlrpc.DecodeCall(body, xmlrpc.Limits{MaxBytes: s.cfg.maxBody, MaxDepth: 8, MaxValues: 256})
	if err != nil {
		s.writeFault(w, toFault(err))
		return
	}
	res, err := s.dispatch(r, call, source)
	if err != nil {
		f := toFault(err)
		if f.Code == gofunc.CodeInternal {
			s.logger().Error("certmaster call failed", "method", call.Method, "source", source, "error", err)
		}
		s.writeFault(w, f)
		return
	}
	var buf bytes.Buffer
	if err := xmlrpc.EncodeResponse(&buf, res); err != nil {
		s.logger().Error("encode response", "method", call.Method, "error", err)
		s.writeFault(w, gofunc.Errorf(gofunc.CodeInternal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(buf.Bytes())
}

// limiterFor returns the rate limit r counts against: its certificate's
// when it shows a valid one (overlords reading the CRL and the minion
// list, holders renewing), else its source's (IPv4 address or IPv6
// /64). The per-source limit is meant for unauthenticated enrollment
// floods; a script running func ten times in a row must not hit it.
func (s *Service) limiterFor(r *http.Request) (string, *limiterSet) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		if leaf := r.TLS.VerifiedChains[0][0]; !s.crl.revoked(leaf) {
			return "serial " + pki.SerialHex(leaf.SerialNumber), &s.authLimits
		}
	}
	return SourceKey(r.RemoteAddr), &s.limits
}

// maxFaultText bounds the message of a fault sent back: it may quote
// the request.
const maxFaultText = 1 << 10

func (s *Service) writeFault(w http.ResponseWriter, f *gofunc.Fault) {
	if len(f.Message) > maxFaultText {
		f = &gofunc.Fault{Code: f.Code, Message: clip.String(f.Message, maxFaultText)}
	}
	var buf bytes.Buffer
	if err := xmlrpc.EncodeFault(&buf, f); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.Write(buf.Bytes())
}

// toFault is the fault a client receives for err: the code of the
// *gofunc.Fault in err's chain (every error of this package that a
// client may see is one), with the whole error's text so the detail
// wrapped around a sentinel travels too. Any other error is
// CodeInternal with no detail: the log has it.
func toFault(err error) *gofunc.Fault {
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		return gofunc.Errorf(gofunc.CodeInternal, "internal error")
	}
	msg := f.Message
	if error(f) != err {
		msg = strings.Replace(err.Error(), f.Error(), f.Message, 1)
	}
	return &gofunc.Fault{Code: f.Code, Message: strings.TrimPrefix(msg, "ca: ")}
}

// errNotAllowed refuses a caller that the call does not accept: no
// verified certificate, a revoked one, or the wrong role.
var errNotAllowed = &gofunc.Fault{Code: gofunc.CodeDenied, Message: "ca: not allowed"}

func (s *Service) dispatch(r *http.Request, call *xmlrpc.Call, source string) (any, error) {
	switch call.Method {
	case "wait_for_cert":
		csr, err := stringArgs(call, "csr_pem")
		if err != nil {
			return nil, err
		}
		return s.waitForCert(r.Context(), csr[0], source)
	case "enroll":
		return s.enroll(r.Context(), call, source)
	case "renew":
		csr, err := stringArgs(call, "csr_pem")
		if err != nil {
			return nil, err
		}
		return s.renew(r, csr[0], source)
	case "get_crl":
		if _, err := stringArgs(call); err != nil {
			return nil, err
		}
		crl, err := s.Authority.CRLPEM()
		return string(crl), err
	case "get_ca":
		if _, err := stringArgs(call); err != nil {
			return nil, err
		}
		return string(s.Authority.certPE), nil
	case "list_minions":
		if _, err := stringArgs(call); err != nil {
			return nil, err
		}
		return s.listMinions(r)
	}
	return nil, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no method %q", call.Method)
}

// stringArgs checks that call has exactly the named string parameters.
func stringArgs(call *xmlrpc.Call, names ...string) ([]string, error) {
	if len(call.Params) != len(names) {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s takes %d argument(s) (%s), got %d",
			call.Method, len(names), strings.Join(names, ", "), len(call.Params))
	}
	out := make([]string, len(names))
	for i, p := range call.Params {
		v, ok := p.(string)
		if !ok {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s: want string, got %T", names[i], p)
		}
		out[i] = v
	}
	return out, nil
}

// waitForCert is Func's call: [signed, cert_pem, ca_pem]. Pending is
// [false, "", ""]; a rejection or conflict, which Func could not express,
// is a fault (CodeDenied, CodeConflict) so a client stops polling.
func (s *Service) waitForCert(ctx context.Context, csrPEM, source string) (any, error) {
	res, err := s.Authority.Submit(ctx, Request{CSR: []byte(csrPEM), Source: source}, s.cfg.autosign)
	if err != nil {
		return nil, err
	}
	switch res.Status {
	case StatusSigned:
		return []any{true, string(res.CertPEM), string(s.Authority.certPE)}, nil
	case StatusRejected:
		return nil, gofunc.Errorf(gofunc.CodeDenied, "request rejected")
	case StatusConflict:
		return nil, gofunc.Errorf(gofunc.CodeConflict, "%s", res.Reason)
	}
	return []any{false, "", ""}, nil
}

var enrollFields = map[string]bool{"csr": true, "name": true, "addr": true, "token": true}

func (s *Service) enroll(ctx context.Context, call *xmlrpc.Call, source string) (any, error) {
	if len(call.Params) != 1 {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "enroll takes 1 argument (a struct), got %d", len(call.Params))
	}
	m, ok := call.Params[0].(map[string]any)
	if !ok {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "enroll: want struct, got %T", call.Params[0])
	}
	f := map[string]string{}
	for k, v := range m {
		if !enrollFields[k] {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "enroll: unknown field %q", k)
		}
		str, ok := v.(string)
		if !ok {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "enroll.%s: want string, got %T", k, v)
		}
		f[k] = str
	}
	if f["name"] == "" {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "enroll: name is required")
	}
	res, err := s.Authority.Submit(ctx, Request{CSR: []byte(f["csr"]), Name: f["name"], Addr: f["addr"],
		Token: identity.Token(f["token"]), Source: source}, s.cfg.autosign)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"status": string(res.Status), "reason": res.Reason, "cert": "", "ca": "", "crl": ""}
	if res.Status == StatusSigned {
		crl, err := s.Authority.CRLPEM()
		if err != nil {
			return nil, err
		}
		out["cert"], out["ca"], out["crl"] = string(res.CertPEM), string(s.Authority.certPE), string(crl)
	}
	return out, nil
}

// verifiedPeer returns the verified, unrevoked client certificate of r.
func (s *Service) verifiedPeer(r *http.Request) (*x509.Certificate, gofunc.Peer, error) {
	if r.TLS == nil {
		return nil, gofunc.Peer{}, fmt.Errorf("%w: %w", errNotAllowed, identity.ErrUnverified)
	}
	p, err := identity.PeerFromConnState(*r.TLS)
	if err != nil {
		return nil, p, fmt.Errorf("%w: %w", errNotAllowed, err)
	}
	leaf := r.TLS.VerifiedChains[0][0]
	// Checked again per call: the connection may predate a revocation.
	if s.crl.revoked(leaf) {
		return nil, p, fmt.Errorf("%w: %w: %s", errNotAllowed, identity.ErrRevoked, p.Name)
	}
	p.Addr = r.RemoteAddr
	return leaf, p, nil
}

func (s *Service) renew(r *http.Request, csrPEM, source string) (any, error) {
	leaf, _, err := s.verifiedPeer(r)
	if err != nil {
		return nil, err
	}
	certPEM, err := s.Authority.Renew(r.Context(), leaf, []byte(csrPEM), source)
	if err != nil {
		return nil, err
	}
	crl, err := s.Authority.CRLPEM()
	if err != nil {
		return nil, err
	}
	return map[string]any{"cert": string(certPEM), "ca": string(s.Authority.certPE), "crl": string(crl)}, nil
}

func (s *Service) listMinions(r *http.Request) (any, error) {
	_, p, err := s.verifiedPeer(r)
	if err != nil {
		return nil, err
	}
	if p.Role != gofunc.RoleOverlord && p.Role != gofunc.RoleDelegate {
		return nil, fmt.Errorf("%w: list_minions is for overlords and dashboards, %s is a %s", errNotAllowed, p.Name, p.Role)
	}
	ms, err := s.Authority.Minions()
	if err != nil {
		return nil, err
	}
	out := make([]any, len(ms))
	for i, m := range ms {
		out[i] = map[string]any{"name": m.Name, "addr": m.Addr, "serial": m.Serial, "not_after": m.NotAfter.UTC(),
			"ips": m.IPs, "seen": m.Seen}
	}
	return out, nil
}

// limiterSet is a token bucket per source IP. Idle buckets are dropped
// when the set grows, so a scan from many addresses cannot grow it
// without bound for long.
type limiterSet struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*limiterEntry
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	limiterPruneAt = 4096
	limiterIdle    = 10 * time.Minute
)

func (ls *limiterSet) allow(host string, now time.Time) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	e := ls.m[host]
	if e == nil {
		if len(ls.m) >= limiterPruneAt {
			for h, old := range ls.m {
				if now.Sub(old.seen) > limiterIdle {
					delete(ls.m, h)
				}
			}
		}
		e = &limiterEntry{lim: rate.NewLimiter(ls.limit, ls.burst)}
		ls.m[host] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// crlWatch is the service's view of DIR/crl.pem: re-read when the file
// changes (an admin's `certmaster revoke` in another process writes it),
// checked with one stat per handshake.
type crlWatch struct {
	path    string
	ca      *x509.Certificate
	mu      sync.Mutex
	modTime time.Time
	size    int64
	set     map[string]struct{} // revoked serials
}

func (c *crlWatch) revoked(cert *x509.Certificate) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, err := os.Stat(c.path); err == nil && (!st.ModTime().Equal(c.modTime) || st.Size() != c.size) {
		if set, err := c.load(); err == nil {
			c.set, c.modTime, c.size = set, st.ModTime(), st.Size()
		}
	}
	_, ok := c.set[serialHex(cert.SerialNumber)]
	return ok
}

func (c *crlWatch) load() (map[string]struct{}, error) {
	b, err := os.ReadFile(c.path)
	if err != nil {
		return nil, err
	}
	der, err := decodeOnePEM(b, pemCRL, maxCRLBytes)
	if err != nil {
		return nil, err
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return nil, err
	}
	if err := rl.CheckSignatureFrom(c.ca); err != nil {
		return nil, err
	}
	set := make(map[string]struct{}, len(rl.RevokedCertificateEntries))
	for _, e := range rl.RevokedCertificateEntries {
		set[serialHex(e.SerialNumber)] = struct{}{}
	}
	return set, nil
}
