// Package brokerd is gofunc's NATS broker: nats-server, embedded, with
// gofunc's certificates for authentication and per-role, per-name
// subject permissions (see Permissions), so minions behind NAT can dial
// out to it and overlords reach them through it.
//
// Every connection is mutual TLS with a certificate from the gofunc CA,
// checked against the CRL (refreshed from the certmaster; connections
// whose certificate is revoked later are dropped) and admitted by role:
// minions, overlords, delegates and monitors as clients; brokers as
// cluster routes and leaf nodes. The broker is trusted for delivery
// only: calls and answers are signed end to end (package broker), so a
// broker that is wrong about permissions can cost privacy or
// availability, never identity.
//
//	b, err := brokerd.New(brokerd.Config{Identity: id, Certmaster: "certmaster:51235"})
//	...
//	if err := b.Start(ctx); err != nil { ... }
//	defer b.Shutdown(context.Background())
package brokerd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/version"
)

// DefaultListen is where the broker serves clients (minions, overlords)
// by default: every address, NATS's port. Nothing is served in clear
// text and every client needs a certificate from the CA.
const DefaultListen = ":4222"

// DefaultClusterName is the cluster name routes are formed under.
const DefaultClusterName = "gofunc"

// Errors from New and Start.
var (
	// ErrConfig: the configuration cannot be used; the message says why.
	ErrConfig = errors.New("brokerd: bad configuration")
	// ErrNotReady: the server did not start listening (the message
	// carries nats-server's reason, such as an address in use).
	ErrNotReady = errors.New("brokerd: broker did not start")
)

// Config is a broker's configuration. Zero fields mean the defaults
// noted.
type Config struct {
	// Identity is the broker's own certificate (role broker), key, CA
	// and CRL. Required.
	Identity *identity.Identity
	// Listen is the client address, HOST:PORT; default DefaultListen
	// (":4222"). Port 0 picks a free port (see ClientURL).
	Listen string
	// ClusterListen, when set, serves cluster routes on HOST:PORT
	// (NATS's port is 6222). Default: no cluster.
	ClusterListen string
	// ClusterAdvertise is the HOST or HOST:PORT the other brokers are
	// told to dial this one at (routes gossip it, so each broker needs
	// only one route to join the whole mesh). Default: ClusterListen's
	// host when it is a specific address, else the address the peers
	// see the route coming from; the port of ClusterListen.
	ClusterAdvertise string
	// ClusterName is the cluster's name; default DefaultClusterName.
	ClusterName string
	// Routes are the other brokers of the cluster, nats://HOST:PORT of
	// their ClusterListen. Each end must hold a broker certificate from
	// the same CA; when dialled by IP address, the certificate needs
	// that IP (certmaster issue --role broker --ip ...).
	Routes []string
	// LeafListen, when set, accepts leaf nodes (site brokers) on
	// HOST:PORT (NATS's port is 7422), with broker certificates only and
	// LeafPermissions. Default: none.
	LeafListen string
	// LeafRemotes are the hub's brokers this broker connects to as a
	// leaf node, nats://HOST:PORT of their LeafListen: one connection,
	// to one of them at a time, failing over to the others. Default:
	// none.
	LeafRemotes []string
	// Certmaster is the certmaster's HOST:PORT, from which the CRL is
	// fetched every CRLInterval. Default: none (the CRL in the
	// identity's directory is used as it is, and Recheck applies a new
	// one after Identity.Reload).
	Certmaster string
	// CRLInterval is how often the CRL is fetched; default
	// identity.DefaultCRLInterval (30s).
	CRLInterval time.Duration
	// JetStream turns NATS JetStream on, keeping its data in StoreDir
	// (required then), for jobs: at Start the broker creates the
	// streams GF_JOBS and GF_RESULTS itself (clients may not). Default
	// off.
	JetStream bool
	// StoreDir is JetStream's directory.
	StoreDir string
	// JobsMaxAge is how long a job waits for its minion and a result
	// for its collector; default DefaultJobsMaxAge (7 days).
	JobsMaxAge time.Duration
	// JetStreamSync is how often JetStream writes its files to disk;
	// default 0: at every message, so that an acknowledged job or
	// result survives a crash of the broker's machine (nats-server's
	// own default is every 2 minutes). A cluster of three brokers
	// keeping streams in R3 could use an interval instead; the streams
	// here are R1.
	JetStreamSync time.Duration
	// MonitorListen, when set, serves nats-server's monitoring endpoints
	// (/varz, /connz, /routez, /healthz ...) in plain HTTP on HOST:PORT,
	// which must be a loopback address: they name every connected
	// minion. Default: off.
	MonitorListen string
	// MaxPayload is the largest message in bytes; default nats-server's
	// (1 MiB). Larger answers are chunked by the transport.
	MaxPayload int32
	// Logger receives the broker's logs; nil discards them.
	Logger hclog.Logger
}

// Broker is a configured gofunc broker. New makes one, Start starts it,
// Shutdown stops it.
type Broker struct {
	cfg       Config
	id        *identity.Identity
	log       hclog.Logger
	srv       *server.Server
	opts      *server.Options // as given to srv, which writes chosen ports back
	logs      *natsLogger
	refresher *identity.Refresher
	// adminToken admits the broker's own in-process connection while
	// it creates the job streams at Start ("" otherwise).
	adminToken atomic.Pointer[string]
	conns      connTable
	counts     counters

	startOnce, stopOnce sync.Once
	stopped             chan struct{} // closed when Shutdown's work is done
}

// New checks cfg and builds the broker; nothing listens until Start.
// Errors match ErrConfig.
func New(cfg Config) (*Broker, error) {
	if cfg.Identity == nil {
		return nil, fmt.Errorf("%w: no identity", ErrConfig)
	}
	if r := cfg.Identity.Role(); r != gofunc.RoleBroker {
		return nil, fmt.Errorf("%w: the identity is a %s certificate, not a broker one (certmaster issue --role broker)", ErrConfig, r)
	}
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	b := &Broker{cfg: cfg, id: cfg.Identity, log: log, logs: &natsLogger{log: log.Named("nats")}, stopped: make(chan struct{})}
	opts, err := b.options()
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	srv.SetLoggerV2(b.logs, log.IsDebug(), log.IsTrace(), false)
	b.srv, b.opts = srv, opts
	b.conns.connected = b.connected
	return b, nil
}

// options translates the Config into nats-server's.
func (b *Broker) options() (*server.Options, error) {
	c := b.cfg
	o := &server.Options{
		ServerName: b.id.Name(),
		NoSigs:     true, // signals are the daemon's
		NoLog:      false,
		MaxPayload: c.MaxPayload,
		// Clients: mutual TLS only, then CustomClientAuthentication
		// decides the permissions.
		TLS: true, TLSVerify: true, TLSConfig: b.id.ServerTLSConfig(),
		TLSTimeout:  10, // seconds; a loaded machine handshakes slowly
		AuthTimeout: 10,

		CustomClientAuthentication: &clientAuth{b: b},
		CustomRouterAuthentication: &routeAuth{b: b},
	}
	c.jetStreamOptions(o)
	var err error
	listen := c.Listen
	if listen == "" {
		listen = DefaultListen
	}
	if o.Host, o.Port, err = hostPort("listen", listen); err != nil {
		return nil, err
	}
	if c.JetStream && c.StoreDir == "" {
		return nil, fmt.Errorf("%w: JetStream needs a StoreDir", ErrConfig)
	}
	if err := b.clusterOptions(o); err != nil {
		return nil, err
	}
	if err := b.leafOptions(o); err != nil {
		return nil, err
	}
	if c.MonitorListen != "" {
		if o.HTTPHost, o.HTTPPort, err = hostPort("monitor listen", c.MonitorListen); err != nil {
			return nil, err
		}
		if ip := net.ParseIP(o.HTTPHost); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("%w: monitor listen %s: only a loopback address (the endpoints are plain HTTP and name every minion)", ErrConfig, c.MonitorListen)
		}
	}
	return o, nil
}

func (b *Broker) clusterOptions(o *server.Options) error {
	c := b.cfg
	if c.ClusterListen == "" {
		if len(c.Routes) > 0 {
			return fmt.Errorf("%w: routes need a cluster listen address", ErrConfig)
		}
		return nil
	}
	host, port, err := hostPort("cluster listen", c.ClusterListen)
	if err != nil {
		return err
	}
	name := c.ClusterName
	if name == "" {
		name = DefaultClusterName
	}
	advertise := c.ClusterAdvertise
	if ip := net.ParseIP(host); advertise == "" && ip != nil && !ip.IsUnspecified() {
		advertise = host // the port is the one chosen at listen time
	}
	o.Cluster = server.ClusterOpts{Name: name, Host: host, Port: port, Advertise: advertise,
		TLSConfig: b.peerTLS(), TLSTimeout: 10}
	o.Routes, err = parseURLs("route", c.Routes)
	return err
}

func (b *Broker) leafOptions(o *server.Options) error {
	c := b.cfg
	if c.LeafListen != "" {
		host, port, err := hostPort("leaf listen", c.LeafListen)
		if err != nil {
			return err
		}
		o.LeafNode.Host, o.LeafNode.Port = host, port
		o.LeafNode.TLSConfig, o.LeafNode.TLSTimeout = b.peerTLS(), 10
	}
	urls, err := parseURLs("leaf remote", c.LeafRemotes)
	if err != nil {
		return err
	}
	if len(urls) > 0 {
		// One remote: one leaf connection, failing over among the hub's
		// brokers (one connection per URL would join a hub cluster twice).
		o.LeafNode.Remotes = []*server.RemoteLeafOpts{{URLs: urls, TLS: true, TLSConfig: b.peerTLS(), TLSTimeout: 10}}
	}
	return nil
}

// hostPort splits HOST:PORT for nats-server, where port 0 means its
// default and -1 a free port: here 0 means a free port, as in net.Listen.
func hostPort(what, addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %s %q: %w", ErrConfig, what, addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: %s %q: bad port", ErrConfig, what, addr)
	}
	if port == 0 {
		port = -1
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

func parseURLs(what string, raw []string) ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q: %w", ErrConfig, what, r, err)
		}
		if (u.Scheme != "nats" && u.Scheme != "tls") || u.Host == "" || u.Port() == "" || u.User != nil {
			return nil, fmt.Errorf("%w: %s %q: want nats://HOST:PORT", ErrConfig, what, r)
		}
		out = append(out, u)
	}
	return out, nil
}

// peerTLS is the TLS config between brokers (routes, leaf nodes), for
// both ends of a connection: the broker's certificate, the peer's
// verified against the CA alone, not revoked, and of role broker.
func (b *Broker) peerTLS() *tls.Config {
	cfg := b.id.ServerTLSConfig()
	cfg.RootCAs = b.id.Roots()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return b.id.Certificate(), nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return identity.ErrUnverified
		}
		return b.checkBroker(cs.PeerCertificates[0])
	}
	return cfg
}

// checkBroker admits a peer broker's certificate (already verified).
func (b *Broker) checkBroker(cert *x509.Certificate) error {
	if b.id.Revoked(cert) {
		return fmt.Errorf("%w: %s", identity.ErrRevoked, cert.Subject.CommonName)
	}
	if r := identity.RoleOf(cert); r != gofunc.RoleBroker {
		return fmt.Errorf("%w: %s is a %q certificate, brokers only", ErrRoleRefused, cert.Subject.CommonName, r)
	}
	return nil
}

// Start starts the broker and, given a Certmaster, its CRL refresher,
// and returns once it accepts clients (or ctx ends first). Errors match
// ErrNotReady. Start runs once.
func (b *Broker) Start(ctx context.Context) error {
	err := errors.New("brokerd: already started")
	b.startOnce.Do(func() { err = b.start(ctx) })
	return err
}

func (b *Broker) start(ctx context.Context) error {
	if st := b.id.CRLStatus(); b.cfg.Certmaster == "" && !st.Installed {
		b.log.Warn("no CRL and no certmaster: revoked certificates are admitted")
	}
	b.srv.Start()
	if err := b.waitReady(ctx); err != nil {
		b.srv.Shutdown()
		b.srv.WaitForShutdown()
		return err
	}
	if b.cfg.JetStream {
		if err := b.makeStreams(ctx); err != nil {
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
			return err
		}
	}
	if b.cfg.Certmaster != "" {
		b.refresher = &identity.Refresher{Identity: b.id, Certmaster: b.cfg.Certmaster, CRLInterval: b.cfg.CRLInterval,
			OnCRL: func() { b.Recheck() }, Logger: b.log.Named("crl")}
		if err := b.refresher.Start(); err != nil {
			b.srv.Shutdown()
			return fmt.Errorf("%w: %w", ErrNotReady, err)
		}
	}
	b.log.Info("broker ready", "client_url", b.ClientURL(), "name", b.id.Name(), "version", version.Read().String())
	return nil
}

// waitReady waits until the server accepts clients, it gives up (a
// "fatal" log: an address in use), or ctx ends; 30s without a deadline.
func (b *Broker) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if b.srv.ReadyForConnections(50 * time.Millisecond) {
			return nil
		}
		if reason := b.logs.lastFatal(); reason != "" {
			return fmt.Errorf("%w: %s", ErrNotReady, reason)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: not listening yet: %w", ErrNotReady, ctx.Err())
		}
	}
}

// Shutdown closes every connection and stops the broker and its CRL
// refresher. It waits for them until ctx ends, then returns ctx.Err()
// while they finish in the background. It is safe to call more than
// once, and before Start.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.stopOnce.Do(func() {
		b.startOnce.Do(func() {}) // a Start after Shutdown does nothing
		go func() {
			defer close(b.stopped)
			if b.refresher != nil {
				b.refresher.Stop()
			}
			b.srv.Shutdown()
			b.srv.WaitForShutdown()
		}()
	})
	// A second Shutdown waits for the first one's work, not for ctx.
	select {
	case <-b.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ClientURL is the URL clients dial, nats://HOST:PORT (with the port
// chosen when Listen asked for port 0).
func (b *Broker) ClientURL() string { return b.srv.ClientURL() }

// ClusterURL is the URL other brokers list in their Routes to reach this
// one, or "" without a ClusterListen.
func (b *Broker) ClusterURL() string {
	a := b.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats://" + a.String()
}

// LeafURL is the URL site brokers list in their LeafRemotes to reach
// this one, or "" without a LeafListen.
func (b *Broker) LeafURL() string {
	// The port is written back under the server's lock before
	// ReadyForConnections, which takes that lock, reports ready.
	if b.cfg.LeafListen == "" || !b.srv.Running() {
		return ""
	}
	return "nats://" + net.JoinHostPort(b.opts.LeafNode.Host, strconv.Itoa(b.opts.LeafNode.Port))
}

// Peers names the other brokers of the cluster this one has routes to
// (their certificates' names), each once: nats-server keeps a pool of
// several route connections per peer.
func (b *Broker) Peers() []string {
	rz, err := b.srv.Routez(nil)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, r := range rz.Routes {
		if !seen[r.RemoteID] {
			seen[r.RemoteID] = true
			out = append(out, r.RemoteName)
		}
	}
	slices.Sort(out)
	return out
}

// NumLeafNodes is how many leaf node connections this broker has
// (accepted and made).
func (b *Broker) NumLeafNodes() int { return b.srv.NumLeafNodes() }

// NumClients is how many clients are connected.
func (b *Broker) NumClients() int { return b.srv.NumClients() }

// Server is the embedded nats-server, for what this package does not
// wrap (monitoring, statistics). Do not change its options.
func (b *Broker) Server() *server.Server { return b.srv }
