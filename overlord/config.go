package overlord

import (
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
)

// Defaults for Config's zero fields.
const (
	DefaultForks          = 256
	DefaultHostTimeout    = 30 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	DefaultMaxResultBytes = 64 << 20
)

// Config is the overlord's configuration. Zero fields mean the
// documented defaults. Build one with options passed to New, or pass a
// whole Config with WithConfig.
type Config struct {
	// Identity is the overlord's certificate and key (an overlord
	// certificate issued by the CA, never the CA's own key). If nil,
	// IdentityDir is loaded.
	Identity *ca.Identity
	// IdentityDir holds ca.pem, cert.pem and key.pem; used when Identity
	// is nil. Empty means DefaultDir().
	IdentityDir string

	// Minions says where the list of known minions comes from; nil
	// means the cached list in the identity directory (minions.json),
	// which `func list_minions --refresh` fills from the certmaster.
	Minions Source

	// Groups maps a group name to its members' target spec, for
	// "@group" targets.
	Groups map[string]string

	// Forks bounds how many hosts are called at once; zero means 256.
	Forks int
	// HostTimeout bounds each host's call (dial, TLS, call and answer);
	// zero means 30s. The context given to Call still bounds the whole
	// fan-out.
	HostTimeout time.Duration
	// DialTimeout bounds opening a connection; zero means 5s.
	DialTimeout time.Duration
	// MaxResultBytes bounds one host's encoded answer; zero means
	// 64 MiB. A larger answer is an error for that host.
	MaxResultBytes int64

	// Audit, if set, records every call the overlord issues: who, what,
	// which targets, and each host's outcome.
	Audit *audit.Log

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

// WithIdentity uses the credentials in dir (ca.pem, cert.pem, key.pem).
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
func WithCredentials(id *ca.Identity) Option {
	return func(c *Config) error {
		if id == nil {
			return errors.New("overlord: nil identity")
		}
		c.Identity = id
		return nil
	}
}

// WithMinions sets where the list of minions comes from.
func WithMinions(src Source) Option {
	return func(c *Config) error {
		if src == nil {
			return errors.New("overlord: nil minion source")
		}
		c.Minions = src
		return nil
	}
}

// WithGroups sets the groups "@name" targets refer to.
func WithGroups(groups map[string]string) Option {
	return func(c *Config) error {
		c.Groups = groups
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

// WithAudit records every call the overlord issues in log.
func WithAudit(log *audit.Log) Option {
	return func(c *Config) error {
		c.Audit = log
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
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = DefaultMaxResultBytes
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}
