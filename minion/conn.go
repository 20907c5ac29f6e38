package minion

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener closes connections beyond a total and a per-address
// limit as soon as they are accepted. Unlike netutil.LimitListener it
// never blocks Accept: a host that opens connections and sends nothing
// must not hold the door shut for everyone else until its handshakes
// time out.
type limitListener struct {
	net.Listener
	max, perIP int
	refused    *atomic.Uint64

	mu    sync.Mutex
	total int
	byIP  map[string]int
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c)
		if !l.acquire(ip) {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &limitConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *limitListener) acquire(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.byIP[ip] >= l.perIP {
		return false
	}
	if l.byIP == nil {
		l.byIP = make(map[string]int)
	}
	l.total++
	l.byIP[ip]++
	return true
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func remoteIP(c net.Conn) string {
	addr := c.RemoteAddr()
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// limitConn gives its slot back once, on the first Close.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
