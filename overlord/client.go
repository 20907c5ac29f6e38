package overlord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gofunc/gofunc/ca"
)

// Client fans calls out to minions. It is safe for concurrent use; keep
// one for the life of the program so connections (one per minion) are
// reused, and Close it when done.
type Client struct {
	cfg  Config
	err  error // kept from New, returned by Err and every Call
	id   *ca.Identity
	http *http.Client
	tr   *http.Transport

	// bg is the context async jobs run under; Close cancels it and
	// waits for them (jobs).
	bg       context.Context
	cancelBG context.CancelFunc
	jobs     sync.WaitGroup

	mu     sync.Mutex
	addrs  map[string]Minion // lower-case minion name -> minion, for dialing
	closed bool

	facts factCache

	storeOnce sync.Once
	store     *jobStore
	storeErr  error
}

// New returns a client configured by opts. It never fails: a bad option
// or unreadable identity is kept and returned by Err and by every Call,
// so the one-line form works:
//
//	res, err := overlord.New().Targets("web*").Call(ctx, "test", "ping")
//
// With no options it reads its identity, minion list, groups and job
// store from DefaultDir().
func New(opts ...Option) *Client {
	c := &Client{addrs: make(map[string]Minion)}
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
	c.tr = c.transport()
	c.http = &http.Client{Transport: c.tr}
	return c
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
		id, err := ca.LoadIdentity(c.cfg.IdentityDir)
		if err != nil {
			return fmt.Errorf("overlord: identity: %w", err)
		}
		c.id = id
	}
	if dir := c.cfg.IdentityDir; dir != "" {
		if c.cfg.Minions == nil {
			c.cfg.Minions = File(filepath.Join(dir, CacheFile))
		}
		if c.cfg.GroupsPath == "" {
			c.cfg.GroupsPath = filepath.Join(dir, GroupsFile)
		}
		if c.cfg.JobsPath == "" {
			c.cfg.JobsPath = filepath.Join(dir, JobsFile)
		}
	}
	if c.cfg.Minions == nil {
		return errors.New("overlord: no minion source configured (use WithMinions or WithIdentity)")
	}
	return nil
}

// transport dials minions by name: the URL's host is the minion's name
// (so TLS checks the certificate names it), and dial looks up the
// address the name was listed with. TLS sessions are cached so that a
// connection reopened after going idle resumes instead of doing a full
// handshake.
func (c *Client) transport() *http.Transport {
	var tlsCfg *tls.Config
	if c.id != nil {
		tlsCfg = c.id.ClientTLSConfig("")
		tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4096)
	}
	dialer := &net.Dialer{Timeout: c.cfg.DialTimeout}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, err := c.dialAddr(ctx, addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, to)
		},
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: c.cfg.DialTimeout,
		MaxIdleConns:        0, // no global cap: one idle connection per minion is the point
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     c.cfg.IdleTimeout,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
		// 4 KiB buffers (net/http's default) per connection: at 1000
		// minions, larger ones cost more memory (16 KiB read buffers
		// were 40% of the heap) than they save in reads.
		WriteBufferSize: 4 << 10,
		ReadBufferSize:  4 << 10,
	}
}

// dialAddr maps the URL's host:port (the minion's name) to the address
// to dial.
func (c *Client) dialAddr(ctx context.Context, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, nil
	}
	c.mu.Lock()
	m, ok := c.addrs[strings.ToLower(host)]
	c.mu.Unlock()
	if !ok {
		m = Minion{Name: host}
	}
	if c.cfg.Resolve != nil {
		to, err := c.cfg.Resolve(ctx, m)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", m.Name, err)
		}
		return to, nil
	}
	return m.dialAddr(), nil
}

func (c *Client) remember(ms map[string]Minion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maps.Copy(c.addrs, ms)
}

// Err returns the configuration error New kept, if any.
func (c *Client) Err() error { return c.err }

// Close cancels async jobs still running in this client (they are
// recorded as interrupted), waits for their goroutines, closes idle
// connections and the job store. Calls after Close fail with ErrClosed.
// It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancelBG()
	c.jobs.Wait()
	c.http.CloseIdleConnections()
	var err error
	c.storeOnce.Do(func() { c.storeErr = ErrClosed }) // no store after Close
	if c.store != nil {
		err = c.store.close()
	}
	return err
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
	return c.cfg.Minions.Minions(ctx)
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
func (c *Client) Identity() *ca.Identity { return c.id }
