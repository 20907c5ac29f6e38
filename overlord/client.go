package overlord

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gofunc/gofunc/ca"
)

// Client fans calls out to minions. It is safe for concurrent use; keep
// one for the life of the program so connections are reused, and Close
// it when done.
type Client struct {
	cfg  Config
	err  error // kept from New, returned by Err and every Call
	id   *ca.Identity
	http *http.Client

	mu     sync.Mutex
	addrs  map[string]string // lower-case minion name -> host:port, for dialing
	closed bool
}

// New returns a client configured by opts. It never fails: a bad option
// or unreadable identity is kept and returned by Err and by every Call,
// so the one-line form works:
//
//	res, err := overlord.New().Targets("web*").Call(ctx, "test", "ping")
func New(opts ...Option) *Client {
	c := &Client{addrs: make(map[string]string)}
	for _, opt := range opts {
		if err := opt(&c.cfg); err != nil && c.err == nil {
			c.err = err
		}
	}
	c.cfg.setDefaults()
	if c.err == nil {
		c.err = c.loadIdentity()
	}
	c.http = &http.Client{Transport: c.transport()}
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
		dir := c.cfg.IdentityDir
		if dir == "" {
			dir = DefaultDir()
		}
		id, err := ca.LoadIdentity(dir)
		if err != nil {
			return fmt.Errorf("overlord: identity: %w", err)
		}
		c.id = id
		if c.cfg.Minions == nil {
			c.cfg.Minions = File(filepath.Join(dir, CacheFile))
		}
	}
	if c.cfg.Minions == nil {
		return errors.New("overlord: no minion source configured (use WithMinions)")
	}
	return nil
}

// transport dials minions by name: the URL's host is the minion's name
// (so TLS checks the certificate names it), and dial looks up the
// address the name was listed with.
func (c *Client) transport() *http.Transport {
	var tlsCfg *tls.Config
	if c.id != nil {
		tlsCfg = c.id.ClientTLSConfig("")
	}
	dialer := &net.Dialer{Timeout: c.cfg.DialTimeout}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, c.resolve(addr))
		},
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: c.cfg.DialTimeout,
		MaxIdleConns:        0, // no global cap: one idle connection per minion is the point
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     DefaultHostTimeout * 3,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
	}
}

func (c *Client) resolve(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := c.addrs[strings.ToLower(host)]; ok {
		return a
	}
	return addr
}

func (c *Client) remember(ms map[string]Minion) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, m := range ms {
		c.addrs[k] = m.dialAddr()
	}
}

// Err returns the configuration error New kept, if any.
func (c *Client) Err() error { return c.err }

// Close closes idle connections. Calls after Close fail.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.http.CloseIdleConnections()
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
	return c.cfg.Minions.Minions(ctx)
}
