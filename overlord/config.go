package overlord

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
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
	// JobsFile is the SQLite database of async jobs.
	JobsFile = "jobs.db"
)

// Resolver maps a minion to the host:port to dial. The certificate the
// minion presents must still name m.Name, whatever address is dialled.
// It is called once per new connection, concurrently.
type Resolver func(ctx context.Context, m Minion) (string, error)

// Config is the overlord's configuration. Zero fields mean the
// documented defaults. Build one with options passed to New, or pass a
// whole Config with WithConfig.
type Config struct {
	// Identity is the overlord's certificate and key (an overlord
	// certificate issued by the CA, never the CA's own key). If nil,
	// IdentityDir is loaded.
	Identity *identity.Identity
	// IdentityDir holds ca.pem, cert.pem and key.pem, and the default
	// minion list (minions.json), groups file (groups) and job store
	// (jobs.db). Empty means DefaultDir() when Identity is nil, and no
	// directory when Identity is set.
	IdentityDir string

	// Minions says where the list of known minions comes from; nil
	// means File(IdentityDir/minions.json), which
	// `func list_minions --refresh` fills from the certmaster.
	Minions Source
	// Resolve maps a minion to the address to dial; nil means
	// Minion.Addr, or the minion's name on port 51234 when it has none.
	Resolve Resolver

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
	// IdleTimeout is how long an unused connection to a minion is kept
	// for reuse; zero means 90s.
	IdleTimeout time.Duration
	// MaxResultBytes bounds one host's encoded answer; zero means
	// 64 MiB. A larger answer is a CodeTooLarge error for that host.
	MaxResultBytes int64
	// FactsTTL is how long facts fetched for Selection.Where are reused;
	// zero means one minute, negative means never reuse.
	FactsTTL time.Duration

	// JobsPath is the SQLite database holding async jobs; empty means
	// IdentityDir/jobs.db when there is an IdentityDir (otherwise
	// CallAsync fails with ErrNoJobStore).
	JobsPath string

	// Audit, if set, records every call the overlord issues: a
	// "overlord.call" record with the targets before any host is
	// called, and an "overlord.call.end" record with each host's
	// outcome. If the first record cannot be written the call is not
	// made. An *audit.Log holds its file's lock while open; several
	// processes sharing one log file use an *audit.Shared, which
	// opens the log per record.
	Audit AuditLog

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
}

// Option sets one Config field; New applies options in order and keeps
// the first error for Call and Err to return.
type Option func(*Config) error

// WithConfig replaces the whole configuration; options after it adjust
// the copy.
func WithConfig(cfg Config) Option {
	return func(c *Config) error {
		*c = cfg
		return nil
	}
}

// WithIdentity uses the credentials in dir (ca.pem, cert.pem, key.pem),
// and dir's minion list, groups file and job store unless set otherwise.
func WithIdentity(dir string) Option {
	return func(c *Config) error {
		if dir == "" {
			return errors.New("overlord: identity directory is empty")
		}
		c.IdentityDir = dir
		return nil
	}
}

// WithCredentials uses an identity already loaded.
func WithCredentials(id *identity.Identity) Option {
	return func(c *Config) error {
		if id == nil {
			return errors.New("overlord: nil identity")
		}
		c.Identity = id
		return nil
	}
}

// WithMinions sets where the list of minions comes from: Static, File,
// CertDir, Certmaster or a SourceFunc.
func WithMinions(src Source) Option {
	return func(c *Config) error {
		if src == nil {
			return errors.New("overlord: nil minion source")
		}
		c.Minions = src
		return nil
	}
}

// WithResolver sets how a minion's name becomes an address to dial.
func WithResolver(r Resolver) Option {
	return func(c *Config) error {
		if r == nil {
			return errors.New("overlord: nil resolver")
		}
		c.Resolve = r
		return nil
	}
}

// WithGroups sets the groups "@name" targets refer to, on top of those
// in the groups file.
func WithGroups(groups map[string]string) Option {
	return func(c *Config) error {
		for name := range groups {
			if err := checkGroupName(name); err != nil {
				return err
			}
		}
		c.Groups = groups
		return nil
	}
}

// WithGroupsFile reads groups from path (see ParseGroups).
func WithGroupsFile(path string) Option {
	return func(c *Config) error {
		if path == "" {
			return errors.New("overlord: groups file path is empty")
		}
		c.GroupsPath = path
		return nil
	}
}

// WithForks bounds how many hosts are called at once.
func WithForks(n int) Option {
	return func(c *Config) error {
		if n < 1 {
			return fmt.Errorf("overlord: forks must be positive, got %d", n)
		}
		c.Forks = n
		return nil
	}
}

// WithHostTimeout bounds each host's call.
func WithHostTimeout(d time.Duration) Option {
	return func(c *Config) error {
		if d <= 0 {
			return fmt.Errorf("overlord: host timeout must be positive, got %v", d)
		}
		c.HostTimeout = d
		return nil
	}
}

// WithDialTimeout bounds opening a connection.
func WithDialTimeout(d time.Duration) Option {
	return func(c *Config) error {
		if d <= 0 {
			return fmt.Errorf("overlord: dial timeout must be positive, got %v", d)
		}
		c.DialTimeout = d
		return nil
	}
}

// WithMaxResultBytes bounds one host's encoded answer.
func WithMaxResultBytes(n int64) Option {
	return func(c *Config) error {
		if n < 1 {
			return fmt.Errorf("overlord: max result bytes must be positive, got %d", n)
		}
		c.MaxResultBytes = n
		return nil
	}
}

// WithFactsTTL sets how long facts are cached; negative disables the
// cache.
func WithFactsTTL(d time.Duration) Option {
	return func(c *Config) error {
		c.FactsTTL = d
		return nil
	}
}

// WithJobStore keeps async jobs in the SQLite database at path.
func WithJobStore(path string) Option {
	return func(c *Config) error {
		if path == "" {
			return errors.New("overlord: job store path is empty")
		}
		c.JobsPath = path
		return nil
	}
}

// AuditLog is where the overlord records its calls: an *audit.Log, or an
// *audit.Shared for a log file several processes write.
type AuditLog = audit.Appender

// WithAudit records every call the overlord issues in log; nil records
// nothing.
func WithAudit(log AuditLog) Option {
	return func(c *Config) error {
		if l, ok := log.(*audit.Log); ok && l == nil {
			log = nil // a nil *audit.Log must not become a non-nil AuditLog
		}
		c.Audit = log
		return nil
	}
}

// WithCertmaster fetches the CRL from the certmaster at addr
// (HOST:PORT) now and every CRLInterval, and lists minions from it
// unless a minion source is set (see Config.Certmaster).
func WithCertmaster(addr string) Option {
	return func(c *Config) error {
		if addr == "" {
			return errors.New("overlord: certmaster address is empty")
		}
		c.Certmaster = addr
		return nil
	}
}

// WithCRLInterval sets how often the CRL is fetched from the
// certmaster.
func WithCRLInterval(d time.Duration) Option {
	return func(c *Config) error {
		if d <= 0 {
			return fmt.Errorf("overlord: CRL interval must be positive, got %v", d)
		}
		c.CRLInterval = d
		return nil
	}
}

// WithLogger sends operational logs to l.
func WithLogger(l hclog.Logger) Option {
	return func(c *Config) error {
		c.Logger = l
		return nil
	}
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

// validate checks fields a WithConfig may have set out of range.
func (c *Config) validate() error {
	switch {
	case c.Forks < 0:
		return fmt.Errorf("overlord: forks must be positive, got %d", c.Forks)
	case c.HostTimeout < 0:
		return fmt.Errorf("overlord: host timeout must be positive, got %v", c.HostTimeout)
	case c.DialTimeout < 0:
		return fmt.Errorf("overlord: dial timeout must be positive, got %v", c.DialTimeout)
	case c.MaxResultBytes < 0:
		return fmt.Errorf("overlord: max result bytes must be positive, got %d", c.MaxResultBytes)
	case c.CRLInterval < 0:
		return fmt.Errorf("overlord: CRL interval must be positive, got %v", c.CRLInterval)
	}
	for name := range c.Groups {
		if err := checkGroupName(name); err != nil {
			return err
		}
	}
	return nil
}
