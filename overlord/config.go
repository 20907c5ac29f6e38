package overlord

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/groupsfile"
)

// Defaults for Config's zero fields.
const (
	DefaultForks          = 256
	DefaultHostTimeout    = 30 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	DefaultMaxResultBytes = 64 << 20
	DefaultFactsTTL       = time.Minute
	DefaultIdleTimeout    = 90 * time.Second
)

// Files the overlord reads or writes in its identity directory.
const (
	// CacheFile is the minion list cached in an identity directory.
	CacheFile = "minions.json"
	// GroupsFile defines "@group" targets (see ParseGroups).
	GroupsFile = "groups"
)

// Resolver maps a minion to the host:port to dial. The certificate the
// minion presents must still name m.Name, whatever address is dialled.
// It is called once per new connection, concurrently.
type Resolver func(ctx context.Context, m Minion) (string, error)

// Config is the overlord's configuration. Zero fields mean the
// documented defaults. Build one with options passed to New, or pass a
// whole Config with WithConfig; each option sets the field of the same
// name.
type Config struct {
	// Identity is the overlord's certificate and key (an overlord
	// certificate issued by the CA, never the CA's own key). If nil,
	// IdentityDir is loaded.
	Identity *identity.Identity
	// IdentityDir holds ca.pem, cert.pem and key.pem, and the default
	// minion list (minions.json) and groups file (groups). Empty means
	// DefaultDir() when Identity is nil, and no directory when Identity
	// is set.
	IdentityDir string

	// Minions says where the list of known minions comes from; nil
	// means File(IdentityDir/minions.json), which
	// `func list_minions --refresh` fills from the certmaster.
	Minions Source
	// Transport carries each call to its minion; nil means direct HTTPS
	// to the minion's address over mutual TLS with Identity (the
	// Client's own transport, closed by Close). A Transport given here
	// is its owner's to close.
	Transport Transport
	// Resolver maps a minion to the address to dial; nil means
	// Minion.Addr, or the minion's name on port 51234 when it has none.
	Resolver Resolver

	// Groups maps a group name to its members' target spec, for
	// "@group" targets. They are added to the groups of GroupsPath;
	// a group defined in both is taken from Groups.
	Groups map[string]string
	// GroupsPath is the groups file (see ParseGroups); empty means
	// IdentityDir/groups when there is an IdentityDir. A missing file
	// defines no groups.
	GroupsPath string

	// Forks bounds how many hosts are called at once; zero means 256.
	Forks int
	// HostTimeout bounds each host's call (dial, TLS, call and answer);
	// zero means 30s. The context given to Call still bounds the whole
	// fan-out.
	HostTimeout time.Duration
	// DialTimeout bounds opening a connection and its TLS handshake;
	// zero means 5s.
	DialTimeout time.Duration
	// MaxHandshakes bounds the new connections (TCP connect and TLS
	// handshake) in progress at once, below Forks; zero means
	// 32 × GOMAXPROCS. A handshake is mostly CPU on both ends: hundreds
	// at once on a small overlord only stretch each one, until the
	// minion's handshake timeout (or DialTimeout) counts the
	// overlord's own CPU queue rather than the network (at 5,000 hosts
	// on 2 cores, a few hosts failed every cold run). A host waiting
	// for a slot has not dialled yet: only its HostTimeout runs. Raise
	// it for a fleet far away (each handshake is then mostly round
	// trips).
	MaxHandshakes int
	// IdleTimeout is how long an unused connection to a minion is kept
	// for reuse; zero means 90s.
	IdleTimeout time.Duration
	// MaxResultBytes bounds one host's encoded answer; zero means
	// 64 MiB. A larger answer is a CodeTooLarge error for that host.
	MaxResultBytes int64
	// FactsTTL is how long facts fetched for Selection.Where are reused;
	// zero means one minute, negative means never reuse.
	FactsTTL time.Duration

	// JobStore keeps async jobs (CallAsync, Submit, RunJob, Job,
	// WaitJob, Jobs); nil (the default) means none, and those fail with
	// ErrNoJobStore. Package overlord/sqlitejobs is the store the func
	// command uses; the Client does not close it.
	JobStore JobStore

	// Audit, if set, records every call the overlord issues: a
	// "overlord.call" record with the targets before any host is
	// called, and an "overlord.call.end" record with each host's
	// outcome. If the first record cannot be written the call is not
	// made. An *audit.Log holds its file's lock while open; several
	// processes sharing one log file use an *audit.Shared, which
	// opens the log per record.
	Audit audit.Appender

	// Certmaster is the certmaster's HOST:PORT. When set, the client
	// fetches the CRL from it as soon as it is created and every
	// CRLInterval until Close (calls wait for the first fetch to end;
	// a failed fetch is logged and the CRL already held, such as
	// IdentityDir/crl.pem, stays in force), refuses minions it
	// revokes, and saves a newer CRL in the identity's directory. When
	// Minions is nil it also lists the minions from it (see
	// Certmaster), cached in IdentityDir/minions.json. Empty (the
	// default) means no certmaster: the CRL loaded with the identity
	// is used as it is.
	Certmaster string
	// CRLInterval is how often the CRL is fetched from Certmaster;
	// zero means identity.DefaultCRLInterval (30s).
	CRLInterval time.Duration

	// Logger receives operational logs; nil discards them.
	Logger hclog.Logger

	// Observe, if set, is told how each host's call ended (package
	// overlord/overlordmetrics counts them for Prometheus). It is called
	// concurrently from the fan-out's workers and must not block. Nil
	// (the default) observes nothing.
	Observe func(Observation)

	// given names the fields options set, which must not be zero.
	given map[string]bool
}

// Option sets one Config field; New applies options in order. Options
// only set fields: New checks the result once (Config.validate), and
// keeps its first error for Call and Err to return. A field set by an
// option must be given a real value: zero means "the default" only in a
// Config, so WithForks(0) is an error where Config{Forks: 0} is not.
type Option func(*Config) error

// set is an option storing v in the field named name that field selects.
func set[T any](name string, field func(*Config) *T, v T) Option {
	return func(c *Config) error {
		*field(c) = v
		if c.given == nil {
			c.given = map[string]bool{}
		}
		c.given[name] = true
		return nil
	}
}

// WithConfig replaces the whole configuration; options after it adjust
// the copy.
func WithConfig(cfg Config) Option {
	return func(c *Config) error {
		*c = cfg
		c.given = nil // zero fields of a Config mean their defaults
		return nil
	}
}

// WithIdentity calls with an identity already loaded (Config.Identity).
func WithIdentity(id *identity.Identity) Option {
	return set("identity", func(c *Config) **identity.Identity { return &c.Identity }, id)
}

// WithIdentityDir uses the credentials in dir (ca.pem, cert.pem,
// key.pem), and dir's minion list and groups file unless set otherwise
// (Config.IdentityDir).
func WithIdentityDir(dir string) Option {
	return set("identity directory", func(c *Config) *string { return &c.IdentityDir }, dir)
}

// WithMinions sets where the list of minions comes from: Static, File,
// CertDir, Certmaster or a SourceFunc (Config.Minions).
func WithMinions(src Source) Option {
	return set("minion source", func(c *Config) *Source { return &c.Minions }, src)
}

// WithTransport carries calls through t instead of direct HTTPS
// (Config.Transport).
func WithTransport(t Transport) Option {
	return set("transport", func(c *Config) *Transport { return &c.Transport }, t)
}

// WithResolver sets how a minion's name becomes an address to dial
// (Config.Resolver).
func WithResolver(r Resolver) Option {
	return set("resolver", func(c *Config) *Resolver { return &c.Resolver }, r)
}

// WithGroups sets the groups "@name" targets refer to, on top of those
// in the groups file (Config.Groups).
func WithGroups(groups map[string]string) Option {
	return set("groups", func(c *Config) *map[string]string { return &c.Groups }, groups)
}

// WithGroupsPath reads groups from the file at path (see ParseGroups;
// Config.GroupsPath).
func WithGroupsPath(path string) Option {
	return set("groups file path", func(c *Config) *string { return &c.GroupsPath }, path)
}

// WithForks bounds how many hosts are called at once (Config.Forks).
func WithForks(n int) Option {
	return set("forks", func(c *Config) *int { return &c.Forks }, n)
}

// WithHostTimeout bounds each host's call (Config.HostTimeout).
func WithHostTimeout(d time.Duration) Option {
	return set("host timeout", func(c *Config) *time.Duration { return &c.HostTimeout }, d)
}

// WithDialTimeout bounds opening a connection (Config.DialTimeout).
func WithDialTimeout(d time.Duration) Option {
	return set("dial timeout", func(c *Config) *time.Duration { return &c.DialTimeout }, d)
}

// WithMaxHandshakes bounds the new connections in progress at once
// (Config.MaxHandshakes).
func WithMaxHandshakes(n int) Option {
	return set("max handshakes", func(c *Config) *int { return &c.MaxHandshakes }, n)
}

// WithIdleTimeout sets how long an unused connection is kept
// (Config.IdleTimeout).
func WithIdleTimeout(d time.Duration) Option {
	return set("idle timeout", func(c *Config) *time.Duration { return &c.IdleTimeout }, d)
}

// WithMaxResultBytes bounds one host's encoded answer
// (Config.MaxResultBytes).
func WithMaxResultBytes(n int64) Option {
	return set("max result bytes", func(c *Config) *int64 { return &c.MaxResultBytes }, n)
}

// WithFactsTTL sets how long facts are cached; negative disables the
// cache (Config.FactsTTL).
func WithFactsTTL(d time.Duration) Option {
	return set("facts TTL", func(c *Config) *time.Duration { return &c.FactsTTL }, d)
}

// WithJobStore keeps async jobs in store, for example a
// sqlitejobs.Store (Config.JobStore).
func WithJobStore(store JobStore) Option {
	return set("job store", func(c *Config) *JobStore { return &c.JobStore }, store)
}

// WithAudit records every call the overlord issues in log; nil records
// nothing (Config.Audit).
func WithAudit(log audit.Appender) Option {
	if l, ok := log.(*audit.Log); ok && l == nil {
		log = nil // a nil *audit.Log must not become a non-nil Appender
	}
	return set("audit", func(c *Config) *audit.Appender { return &c.Audit }, log)
}

// WithCertmaster fetches the CRL from the certmaster at addr
// (HOST:PORT) now and every CRLInterval, and lists minions from it
// unless a minion source is set (Config.Certmaster).
func WithCertmaster(addr string) Option {
	return set("certmaster address", func(c *Config) *string { return &c.Certmaster }, addr)
}

// WithCRLInterval sets how often the CRL is fetched from the
// certmaster (Config.CRLInterval).
func WithCRLInterval(d time.Duration) Option {
	return set("CRL interval", func(c *Config) *time.Duration { return &c.CRLInterval }, d)
}

// WithObserver tells fn how each host's call ended (Config.Observe).
func WithObserver(fn func(Observation)) Option {
	return set("observer", func(c *Config) *func(Observation) { return &c.Observe }, fn)
}

// WithLogger sends operational logs to l (Config.Logger).
func WithLogger(l hclog.Logger) Option {
	return set("logger", func(c *Config) *hclog.Logger { return &c.Logger }, l)
}

func (c *Config) setDefaults() {
	if c.Forks == 0 {
		c.Forks = DefaultForks
	}
	if c.HostTimeout == 0 {
		c.HostTimeout = DefaultHostTimeout
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.MaxHandshakes == 0 {
		c.MaxHandshakes = 32 * runtime.GOMAXPROCS(0)
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = DefaultMaxResultBytes
	}
	if c.FactsTTL == 0 {
		c.FactsTTL = DefaultFactsTTL
	}
	if c.CRLInterval == 0 {
		c.CRLInterval = identity.DefaultCRLInterval
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// validate is the one check of a configuration, however it was built
// (options, WithConfig or both), before defaults are applied: sizes and
// durations may be zero (the default) but not negative, and a field an
// option set must not be zero or nil.
func (c *Config) validate() error {
	positive := []struct {
		name  string
		v     int64
		show  any
		given bool
	}{
		{"forks", int64(c.Forks), c.Forks, c.given["forks"]},
		{"host timeout", int64(c.HostTimeout), c.HostTimeout, c.given["host timeout"]},
		{"dial timeout", int64(c.DialTimeout), c.DialTimeout, c.given["dial timeout"]},
		{"max handshakes", int64(c.MaxHandshakes), c.MaxHandshakes, c.given["max handshakes"]},
		{"idle timeout", int64(c.IdleTimeout), c.IdleTimeout, c.given["idle timeout"]},
		{"max result bytes", c.MaxResultBytes, c.MaxResultBytes, c.given["max result bytes"]},
		{"CRL interval", int64(c.CRLInterval), c.CRLInterval, c.given["CRL interval"]},
	}
	for _, p := range positive {
		if p.v < 0 || p.v == 0 && p.given {
			return fmt.Errorf("overlord: %s must be positive, got %v", p.name, p.show)
		}
	}
	required := []struct {
		name  string
		unset bool
	}{
		{"identity", c.Identity == nil},
		{"identity directory", c.IdentityDir == ""},
		{"minion source", c.Minions == nil},
		{"resolver", c.Resolver == nil},
		{"transport", c.Transport == nil},
		{"groups file path", c.GroupsPath == ""},
		{"job store", c.JobStore == nil},
		{"certmaster address", c.Certmaster == ""},
		{"observer", c.Observe == nil},
	}
	for _, r := range required {
		if r.unset && c.given[r.name] {
			return fmt.Errorf("overlord: %s is empty", r.name)
		}
	}
	for name := range c.Groups {
		if err := groupsfile.CheckName(name); err != nil {
			return err
		}
	}
	return nil
}
