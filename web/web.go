package web

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// Defaults of Config's zero fields.
const (
	DefaultName          = "funcweb"
	DefaultStatusTTL     = 30 * time.Second
	DefaultStatusTimeout = 5 * time.Second
	DefaultPollInterval  = 250 * time.Millisecond
	DefaultLongJob       = 10 * time.Minute
	DefaultExpiryWarning = 14 * 24 * time.Hour
	DefaultDenialSpike   = 10
	DefaultKeepAlive     = 15 * time.Second
)

// Config configures a Dashboard. Zero fields mean the defaults noted.
type Config struct {
	// Overlord makes the dashboard's calls, as the dashboard's own
	// certificate: role delegate, so that minions accept the person it
	// acts for (on_behalf_of) and their ACLs bound what it may do.
	// Required. Its identity also checks the browsers' certificates
	// unless Identity is set.
	Overlord *overlord.Client
	// Jobs is the job store the Overlord was given (WithJobStore): the
	// Jobs page lists it and re-runs copy a job's request from it. Nil
	// means no Jobs and no Run: those pages say so.
	Jobs overlord.JobStore
	// CA serves the Enrollment page; nil means it says that no
	// certmaster is configured.
	CA CA
	// Identity checks each browser's certificate: its chain to this
	// identity's CA, its role, and this identity's CRL. Nil means the
	// Overlord's identity.
	Identity *identity.Identity
	// AuditLogs are the logs the Audit page searches and verifies, and
	// the Attention page watches for broken chains and denial spikes.
	AuditLogs []AuditLog
	// ACL says which methods each person may see (jobs, streams, audit
	// records, runs) and, for operators and admins, call. It is judged
	// with the person's certificate name and role, in minion ACL syntax
	// ("ops-*@operator = service.*"). Nil means DefaultACL.
	ACL *minion.ACL
	// Name names the dashboard in the audit records of the CA actions it
	// takes for people (by_via); empty means "funcweb".
	Name string
	// Command is how "copy as CLI" spells the func command, with its
	// global flags ("func --dir /etc/gofunc/ops"); empty means "func".
	Command string
	// StatusTTL is how long the fleet's status (facts, who answered) is
	// reused; zero means 30s.
	StatusTTL time.Duration
	// StatusTimeout bounds a refresh of the fleet's status; minions that
	// have not answered by then are shown unreachable. Zero means 5s.
	StatusTimeout time.Duration
	// PollInterval is how often a job followed by a stream is read from
	// the job store; zero means 250ms.
	PollInterval time.Duration
	// KeepAlive is how often an idle stream sends a comment; zero means
	// 15s.
	KeepAlive time.Duration
	// LongJob is how long a job may run before the Attention page lists
	// it; zero means 10 minutes.
	LongJob time.Duration
	// ExpiryWarning lists certificates that expire within it on the
	// Attention page; zero means 14 days.
	ExpiryWarning time.Duration
	// DenialSpike is how many denials within an hour, in one audit log,
	// the Attention page lists; zero means 10.
	DenialSpike int
	// Logger receives operational logs; nil discards them.
	Logger hclog.Logger
}

// DefaultACL lets every viewer, operator and admin see every method's
// jobs and records, and operators and admins run them (the minions'
// ACLs still bound what the dashboard's certificate may call).
var DefaultACL = &minion.ACL{Rules: []minion.Rule{
	{Identity: "*", Role: gofunc.RoleViewer, Methods: []string{"*"}, Source: "default"},
	{Identity: "*", Role: gofunc.RoleOperator, Methods: []string{"*"}, Source: "default"},
	{Identity: "*", Role: gofunc.RoleAdmin, Methods: []string{"*"}, Source: "default"},
}}

// AuditLog is one audit log the dashboard shows.
type AuditLog struct {
	// Name is how the pages name it ("overlord", "certmaster").
	Name string
	// Path is the log's file; rotated files beside it are read too
	// (audit.Files).
	Path string
}

// Dashboard is the web dashboard: an http.Handler serving the pages,
// their JSON twins and their streams. Serve it over TLS that asks for a
// client certificate (identity.ServerTLSConfig does): each request is
// authorized by the role of the certificate it came with. Close stops
// its streams' pollers.
type Dashboard struct {
	cfg     Config
	id      *identity.Identity
	roots   *x509.CertPool // the CA, for browsers' certificates
	handler http.Handler
	routes  []route
	pages   map[string]*template.Template
	log     hclog.Logger

	watches  *jobWatches
	status   *fleetStatus
	verified verifyCache
	runs     pendingRuns

	// closeCtx ends when Close is called: streams and pollers watch it.
	closeCtx  context.Context
	closeNow  context.CancelFunc
	closeOnce sync.Once
}

// ErrConfig is wrapped by New's errors.
var ErrConfig = errors.New("web: bad configuration")

// New returns a dashboard for cfg.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Overlord == nil {
		return nil, fmt.Errorf("%w: Overlord is required", ErrConfig)
	}
	if err := cfg.Overlord.Err(); err != nil {
		return nil, fmt.Errorf("%w: overlord: %w", ErrConfig, err)
	}
	cfg.setDefaults()
	if err := cfg.ACL.Validate(); err != nil {
		return nil, fmt.Errorf("%w: ACL: %w", ErrConfig, err)
	}
	d := &Dashboard{cfg: cfg, id: cfg.Identity, log: cfg.Logger}
	d.closeCtx, d.closeNow = context.WithCancel(context.Background())
	if d.id == nil {
		d.id = cfg.Overlord.Identity()
	}
	if d.id == nil {
		return nil, fmt.Errorf("%w: no identity to check certificates with", ErrConfig)
	}
	d.roots = x509.NewCertPool()
	d.roots.AddCert(d.id.CACert())
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	d.pages = pages
	d.watches = newJobWatches(d)
	d.status = &fleetStatus{d: d}
	d.routes = d.routeTable()
	h, err := d.buildHandler()
	if err != nil {
		return nil, err
	}
	d.handler = h
	return d, nil
}

func (c *Config) setDefaults() {
	if c.ACL == nil {
		c.ACL = DefaultACL
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Command == "" {
		c.Command = "func"
	}
	if c.StatusTTL == 0 {
		c.StatusTTL = DefaultStatusTTL
	}
	if c.StatusTimeout == 0 {
		c.StatusTimeout = DefaultStatusTimeout
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.LongJob == 0 {
		c.LongJob = DefaultLongJob
	}
	if c.ExpiryWarning == 0 {
		c.ExpiryWarning = DefaultExpiryWarning
	}
	if c.DenialSpike == 0 {
		c.DenialSpike = DefaultDenialSpike
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// ServeHTTP serves the dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.handler.ServeHTTP(w, r) }

// Close ends the streams and stops the job pollers, waiting for them.
// It is idempotent. The Overlord and the job store are the caller's to
// close, after the dashboard.
func (d *Dashboard) Close() error {
	d.closeOnce.Do(func() {
		d.closeNow()
		d.watches.close()
	})
	return nil
}

// untilClose returns a context that ends with ctx or with Close.
func (d *Dashboard) untilClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.closeCtx, cancel)
	return ctx, func() { stop(); cancel() }
}
