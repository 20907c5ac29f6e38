package ca

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// connLimits counts the service's open connections, in all and per
// source (IPv4 address, IPv6 /64).
type connLimits struct {
	max, perSource int
	mu             sync.Mutex
	total          int
	bySource       map[string]int
	refused        int       // since the last log line
	logged         time.Time // when refusals were last logged
}

// take counts a new connection from key, or reports false when a cap is
// reached.
func (c *connLimits) take(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= c.max || c.bySource[key] >= c.perSource {
		c.refused++
		return false
	}
	c.total++
	c.bySource[key]++
	return true
}

func (c *connLimits) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.bySource[key]--; c.bySource[key] <= 0 {
		delete(c.bySource, key)
	}
}

// refusedSince returns the refusals to log, at most once a minute.
func (c *connLimits) refusedSince(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refused == 0 || now.Sub(c.logged) < time.Minute {
		return 0
	}
	n := c.refused
	c.refused, c.logged = 0, now
	return n
}

// limitListener closes connections over the caps as soon as they are
// accepted, before any TLS work: a flood of bare TCP connections costs
// the certmaster a file descriptor for an instant, and cannot pile up.
// (The handshake itself is bounded by the server's header timeout.)
type limitListener struct {
	net.Listener
	limits *connLimits
	logger hclog.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := SourceKey(c.RemoteAddr().String())
		if l.limits.take(key) {
			return &limitedConn{Conn: c, release: func() { l.limits.release(key) }}, nil
		}
		c.Close()
		if n := l.limits.refusedSince(time.Now()); n > 0 {
			l.logger.Warn("connections refused: too many open", "refused", n, "last_source", key,
				"max", l.limits.max, "max_per_source", l.limits.perSource)
		}
	}
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
