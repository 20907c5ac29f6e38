package minion

import (
	"container/list"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// gateListener hands http.Server only connections that have finished
// their TLS handshake, and keeps connections in two pools:
//
//   - Handshaking: at most maxPending, each given handshakeTimeout.
//     When a connection arrives and the pool is full, the oldest
//     handshake from the source with the most of them is closed to
//     make room (evicted): a flood of connections that never
//     authenticate cannot keep out the callers that do, and a caller
//     from another address is never the one evicted while a flooding
//     address holds more.
//   - Authenticated: at most max in all and perIP from one address;
//     beyond them a connection is closed as soon as its handshake is
//     done.
//
// Accept never blocks on a handshake: they run on their own goroutines,
// which the listener owns and Close waits for.
type gateListener struct {
	raw        net.Listener
	tlsConfig  *tls.Config
	timeout    time.Duration
	maxPending int
	max, perIP int
	events     gateEvents

	ready     chan *tls.Conn
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	wg        sync.WaitGroup // the accept loop and the handshakes

	mu       sync.Mutex
	closed   bool
	pending  list.List // of *pendingConn, oldest first
	bySource map[netip.Prefix]int
	total    int
	byIP     map[netip.Addr]int
}

// gateEvents are the listener's reports to the server. They run on the
// listener's goroutines, never under its lock.
type gateEvents struct {
	evicted     func()                                        // a handshake was closed to make room
	refused     func()                                        // an authenticated connection over MaxConns or MaxConnsPerIP
	handshake   func(remote net.Addr, c *tls.Conn, err error) // a handshake failed (not by eviction or Close)
	acceptError func(err error)                               // Accept failed and will be retried
}

// pendingConn is a connection in its handshake.
type pendingConn struct {
	conn    net.Conn
	source  netip.Prefix
	elem    *list.Element
	evicted bool
}

func newGateListener(raw net.Listener, cfg *tls.Config, s *Server) *gateListener {
	l := &gateListener{
		raw:        raw,
		tlsConfig:  cfg,
		timeout:    orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout),
		maxPending: orDefault(s.MaxHandshakes, DefaultMaxHandshakes),
		max:        orDefault(s.MaxConns, DefaultMaxConns),
		perIP:      orDefault(s.MaxConnsPerIP, DefaultMaxConnsPerIP),
		events:     s.gateEvents(),
		ready:      make(chan *tls.Conn),
		done:       make(chan struct{}),
		bySource:   make(map[netip.Prefix]int),
		byIP:       make(map[netip.Addr]int),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next authenticated connection, a *tls.Conn whose
// handshake is complete.
func (l *gateListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *gateListener) Addr() net.Addr { return l.raw.Addr() }

// Close stops accepting, closes the connections still in their
// handshake and waits for the listener's goroutines. Connections
// already handed out are the server's to close.
func (l *gateListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		err = l.raw.Close()
		l.mu.Lock()
		l.closed = true
		for e := l.pending.Front(); e != nil; e = e.Next() {
			e.Value.(*pendingConn).conn.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
	return err
}

func (l *gateListener) acceptLoop() {
	defer l.wg.Done()
	var delay time.Duration
	for {
		c, err := l.raw.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little, as
			// net/http does, rather than spin or give up.
			l.events.acceptError(err)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(delay):
				continue
			case <-l.done:
				return
			}
		}
		delay = 0
		l.admit(c)
	}
}

// admit puts c in the handshake pool, making room if it is full, and
// starts its handshake.
func (l *gateListener) admit(c net.Conn) {
	pc := &pendingConn{conn: c, source: sourceOf(c.RemoteAddr())}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	var victim *pendingConn
	if l.pending.Len() >= l.maxPending {
		victim = l.evictLocked()
	}
	pc.elem = l.pending.PushBack(pc)
	l.bySource[pc.source]++
	l.wg.Add(1)
	l.mu.Unlock()
	if victim != nil {
		victim.conn.Close()
		l.events.evicted()
	}
	go l.handshake(pc)
}

// handshaking counts the connections in their handshake; a nil
// listener (not serving) has none.
func (l *gateListener) handshaking() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending.Len()
}

// evictLocked takes out of the pool the oldest handshake of the source
// with the most of them (of those sources, the one with the oldest).
func (l *gateListener) evictLocked() *pendingConn {
	most := 0
	for _, n := range l.bySource {
		most = max(most, n)
	}
	for e := l.pending.Front(); e != nil; e = e.Next() {
		if pc := e.Value.(*pendingConn); l.bySource[pc.source] == most {
			l.leaveLocked(pc)
			pc.evicted = true
			return pc
		}
	}
	return nil
}

func (l *gateListener) leaveLocked(pc *pendingConn) {
	l.pending.Remove(pc.elem)
	if l.bySource[pc.source]--; l.bySource[pc.source] <= 0 {
		delete(l.bySource, pc.source)
	}
}

// leave takes pc out of the pool after its handshake, and reports
// whether it had been evicted (or the listener closed) meanwhile.
func (l *gateListener) leave(pc *pendingConn) (gone bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if pc.evicted {
		return true
	}
	l.leaveLocked(pc)
	return l.closed
}

func (l *gateListener) handshake(pc *pendingConn) {
	defer l.wg.Done()
	_ = pc.conn.SetDeadline(time.Now().Add(l.timeout))
	sc := &slotConn{Conn: pc.conn}
	tc := tls.Server(sc, l.tlsConfig)
	err := tc.Handshake()
	if gone := l.leave(pc); gone || err != nil {
		tc.Close()
		if !gone {
			l.events.handshake(pc.conn.RemoteAddr(), tc, err)
		}
		return
	}
	_ = pc.conn.SetDeadline(time.Time{})
	ip := addrOf(pc.conn.RemoteAddr())
	if !l.acquire(ip) {
		tc.Close()
		l.events.refused()
		return
	}
	if !sc.hold(func() { l.release(ip) }) {
		l.release(ip) // closed meanwhile
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}

func (l *gateListener) acquire(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.byIP[ip] >= l.perIP {
		return false
	}
	l.total++
	l.byIP[ip]++
	return true
}

func (l *gateListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

// addrOf is the IP a connection comes from (IPv4-mapped addresses
// unmapped, so one host counts once).
func addrOf(a net.Addr) netip.Addr {
	if tcp, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(tcp.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// sourceOf groups addresses the way one party controls them: an IPv4
// address alone, an IPv6 address by its /64 (a host is commonly given a
// whole /64).
func sourceOf(a net.Addr) netip.Prefix {
	ip := addrOf(a)
	bits := ip.BitLen()
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// slotConn gives back its authenticated-connection slot once, on the
// first Close after it took one.
type slotConn struct {
	net.Conn
	mu      sync.Mutex
	closed  bool
	release func()
}

// hold makes Close call release; it reports false (and keeps nothing)
// when the connection is already closed.
func (c *slotConn) hold(release func()) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.release = release
	return true
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	release := c.release
	c.closed, c.release = true, nil
	c.mu.Unlock()
	if release != nil {
		release()
	}
	return err
}
