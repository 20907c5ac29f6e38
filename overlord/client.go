package overlord

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"

	"github.com/gofunc/gofunc/identity"
)

// Client fans calls out to minions. It is safe for concurrent use; keep
// one for the life of the program so connections (one per minion) are
// reused, and Close it when done.
type Client struct {
	cfg Config
	err error // kept from New, returned by Err and every Call
	id  *identity.Identity
	// transport carries each call to its minion: Config.Transport, or
	// direct, the HTTPS transport made from the identity.
	transport Transport
	direct    *directTransport

	// bg is the context async jobs run under; Close cancels it and
	// waits for them (jobs).
	bg       context.Context
	cancelBG context.CancelFunc
	jobs     sync.WaitGroup

	// refresher fetches the CRL from Config.Certmaster (nil without
	// one); calls wait for its first attempt.
	refresher *identity.Refresher

	mu     sync.Mutex
	addrs  map[string]Minion // lower-case minion name -> minion, for dialing
	closed bool

	facts factCache
	docs  argDocCache // minions' get_method_args, for audit redaction

	timing jobTiming
	// chunk is the size of one copyfile.append or getfile.read:
	// copyChunk, smaller in tests that need many chunks of little data.
	chunk int
}

// New returns a client configured by opts. It never fails: a bad option
// or unreadable identity is kept and returned by Err and by every Call,
// so the one-line form works:
//
//	res, err := overlord.New().Targets("web*").Call(ctx, "test", "ping")
//
// With no options it reads its identity, minion list and groups from
// DefaultDir().
func New(opts ...Option) *Client {
	c := &Client{addrs: make(map[string]Minion), timing: defaultJobTiming, chunk: copyChunk}
	c.bg, c.cancelBG = context.WithCancel(context.Background())
	for _, opt := range opts {
		if err := opt(&c.cfg); err != nil && c.err == nil {
			c.err = err
		}
	}
	if c.err == nil {
		c.err = c.cfg.validate()
	}
	c.cfg.setDefaults()
	if c.err == nil {
		c.err = c.loadIdentity()
	}
	c.direct = c.newDirectTransport()
	c.transport = c.cfg.Transport
	if c.transport == nil {
		c.transport = c.direct
	}
	if c.err == nil && c.cfg.Certmaster != "" {
		c.refresher = &identity.Refresher{Identity: c.id, Certmaster: c.cfg.Certmaster,
			CRLInterval: c.cfg.CRLInterval, Timeout: 2 * c.cfg.DialTimeout, Logger: c.cfg.Logger,
			// Connections kept alive were checked against the old CRL.
			OnCRL: c.direct.closeIdle}
		c.err = c.refresher.Start()
	}
	return c
}

// waitCRL waits for the first CRL fetch, so that no call goes out
// before the certmaster had its say.
func (c *Client) waitCRL(ctx context.Context) error {
	if c.refresher == nil {
		return nil
	}
	select {
	case <-c.refresher.Ready():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DefaultDir is the identity directory used when none is configured:
// $GOFUNC_DIR, else ~/.gofunc.
func DefaultDir() string {
	if d := os.Getenv("GOFUNC_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".gofunc"
	}
	return filepath.Join(home, ".gofunc")
}

func (c *Client) loadIdentity() error {
	if c.cfg.Identity != nil {
		c.id = c.cfg.Identity
	} else {
		if c.cfg.IdentityDir == "" {
			c.cfg.IdentityDir = DefaultDir()
		}
		id, err := identity.Load(c.cfg.IdentityDir)
		if err != nil {
			return fmt.Errorf("overlord: identity: %w", err)
		}
		c.id = id
	}
	if c.cfg.Minions == nil && c.cfg.Certmaster != "" {
		cm := Certmaster{Addr: c.cfg.Certmaster, Identity: c.id, Logger: c.cfg.Logger}
		if c.cfg.IdentityDir != "" {
			cm.Cache = filepath.Join(c.cfg.IdentityDir, CacheFile)
		}
		c.cfg.Minions = cm
	}
	if dir := c.cfg.IdentityDir; dir != "" {
		if c.cfg.Minions == nil {
			c.cfg.Minions = File(filepath.Join(dir, CacheFile))
		}
		if c.cfg.GroupsPath == "" {
			c.cfg.GroupsPath = filepath.Join(dir, GroupsFile)
		}
	}
	if c.cfg.Minions == nil {
		return errors.New("overlord: no minion source configured (use WithMinions or WithIdentity)")
	}
	return nil
}

func (c *Client) remember(ms map[string]Minion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.Copy(c.addrs, ms)
}

// Err returns the configuration error New kept, if any.
func (c *Client) Err() error { return c.err }

// Close cancels async jobs still running in this client (they are
// recorded as interrupted), waits for their goroutines and closes idle
// connections; the job store is its owner's to close. Calls after Close
// fail with ErrClosed. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancelBG()
	c.jobs.Wait()
	if c.refresher != nil {
		c.refresher.Stop()
	}
	c.direct.closeIdle()
	return nil
}

// ErrClosed is returned by calls on a closed Client.
var ErrClosed = errors.New("overlord: client closed")

func (c *Client) usable() error {
	if c.err != nil {
		return c.err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// Targets selects minions by spec (see the package documentation for
// the grammar). The spec is resolved when the selection is used; a bad
// spec is kept and returned by Call.
func (c *Client) Targets(spec string) *Selection {
	return &Selection{c: c, spec: spec}
}

// Minions lists the minions the client knows, from its Source.
func (c *Client) Minions(ctx context.Context) ([]Minion, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.knownMinions(ctx)
}

// knownMinions lists the Source's minions whose names are valid host
// names (identity.ValidateName), in canonical (lower-case) form. Others are
// left out with a warning in the log, whatever the source: a name such
// as "../x" must never reach a file path or a TLS check.
func (c *Client) knownMinions(ctx context.Context) ([]Minion, error) {
	all, err := c.cfg.Minions.Minions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Minion, 0, len(all))
	for _, m := range all {
		name, err := identity.ValidateName(m.Name)
		if err != nil {
			c.cfg.Logger.Warn("minion left out: invalid name", "error", err)
			continue
		}
		m.Name = name
		out = append(out, m)
	}
	return out, nil
}

// Groups returns the groups "@name" targets can use: the groups file's,
// then those given by WithGroups.
func (c *Client) Groups() (map[string]string, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	out := map[string]string{}
	if c.cfg.GroupsPath != "" {
		g, err := LoadGroups(c.cfg.GroupsPath)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, g)
	}
	maps.Copy(out, c.cfg.Groups)
	return out, nil
}

// Identity returns the identity the client calls with, nil if it has
// none (see Err).
func (c *Client) Identity() *identity.Identity { return c.id }
