package overlord

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
)

// directTransport is the Client's own Transport: HTTP/1.1 over mutual
// TLS straight to each minion, one kept-alive connection per minion
// (up to maxIdlePerMinion when calls to one minion overlap), closed
// after IdleTimeout unused.
//
// It speaks the one exchange a minion needs itself, rather than through
// net/http's client: a POST with a body, answered with a status, a few
// headers and a body of known length. At thousands of minions net/http
// cost more than the rest of a warm call: two goroutines and two 4 KiB
// buffers per idle connection (the overlord's memory at 5,000 minions),
// and per call a Request, header maps, channels between goroutines.
// Here a call writes its head and body with one TLS record from a
// pooled buffer, reads the answer through a pooled reader, and an idle
// connection is a *tls.Conn in a map, checked for a close from the
// minion (one non-blocking peek) before it is reused. Every check is
// the one the net/http path made: the TLS config (chain, the minion's
// name, CRL, minion role) is the identity's, and the answer's framing
// is read strictly.
type directTransport struct {
	tlsConfig        *tls.Config // nil when the Client has no identity (then Err is set)
	dialer           net.Dialer
	handshakeTimeout time.Duration
	// handshakes holds a token per new connection in progress (connect
	// and handshake): Config.MaxHandshakes.
	handshakes  chan struct{}
	idleTimeout time.Duration
	// resolve gives the address to dial for a minion.
	resolve func(context.Context, Minion) (string, error)

	mu    sync.Mutex
	idle  map[string][]*minionConn // by minion name, most recently used last
	count int                      // connections in idle
	gen   uint64                   // bumped by closeIdle: older connections are not reused
	sweep *time.Timer              // closes connections idle for idleTimeout
}

// maxIdlePerMinion bounds the idle connections kept per minion: calls
// to one minion that overlap open more, and those beyond it are closed
// when their call ends. Eight: a program calling one minion from 8
// goroutines (issue 16's one-minion figure) keeps every connection
// rather than re-dialling half of them; a fan-out keeps one per minion.
const maxIdlePerMinion = 8

// maxInlineBody is the largest body sent in one write with its head
// (copied into a pooled buffer); a larger one is written after it.
const maxInlineBody = 16 << 10

// maxHeadBytes bounds an answer's status line and headers. A minion
// sends a handful of short headers.
const maxHeadBytes = 64 << 10

// readBufferSize is the pooled reader's size: an answer's head, and a
// small answer whole.
const readBufferSize = 4 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writePool  = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}
)

func newDirectTransport(tlsConfig *tls.Config, dialTimeout, idleTimeout time.Duration, maxHandshakes int,
	resolve func(context.Context, Minion) (string, error)) *directTransport {
	return &directTransport{
		handshakes:       make(chan struct{}, max(1, maxHandshakes)),
		tlsConfig:        tlsConfig,
		dialer:           net.Dialer{Timeout: dialTimeout},
		handshakeTimeout: dialTimeout,
		idleTimeout:      idleTimeout,
		resolve:          resolve,
		idle:             make(map[string][]*minionConn),
	}
}

// RoundTrip posts the call to the minion's /RPC2 and returns its
// answer; the Body's Close puts the connection back for reuse when the
// answer was read whole.
func (d *directTransport) RoundTrip(ctx context.Context, to Minion, call Outbound) (Answer, error) {
	var budget time.Duration
	if dl, ok := ctx.Deadline(); ok {
		// Leave the minion a little less than we wait, so its timeout
		// fault reaches us before our own deadline fires.
		if budget = time.Until(dl) * 95 / 100; budget < time.Microsecond {
			return Answer{}, context.DeadlineExceeded
		}
	}
	if hasCTL([]byte(call.OnBehalfOf)) {
		// A line break would end the header and start another.
		return Answer{}, fmt.Errorf("overlord: invalid %s value %q", gofunc.OnBehalfOfHeader, clip([]byte(call.OnBehalfOf)))
	}
	mc, err := d.conn(ctx, to)
	if err != nil {
		return Answer{}, err
	}
	mc.begin(ctx)
	if err := mc.send(to.Name, call, budget); err != nil {
		mc.abandon()
		return Answer{}, mc.fail(ctx, "sending the call", err)
	}
	var ans Answer
	if err := mc.readHead(&ans); err != nil {
		mc.abandon()
		return ans, mc.fail(ctx, "reading the answer", err)
	}
	ans.Body = &mc.body
	ans.CertNotAfter, ans.NewConnection = mc.notAfter, mc.calls == 0
	mc.calls++
	return ans, nil
}

// conn returns an idle connection to the minion that is still open, or
// a new one.
func (d *directTransport) conn(ctx context.Context, to Minion) (*minionConn, error) {
	for {
		mc := d.take(to.Name)
		if mc == nil {
			return d.dial(ctx, to)
		}
		if mc.alive() {
			return mc, nil
		}
		mc.close()
	}
}

// take removes the most recently used idle connection to name from the
// pool, skipping (and closing) those idle for too long.
func (d *directTransport) take(name string) *minionConn {
	d.mu.Lock()
	defer d.mu.Unlock()
	conns := d.idle[name]
	for len(conns) > 0 {
		mc := conns[len(conns)-1]
		conns[len(conns)-1] = nil
		conns = conns[:len(conns)-1]
		d.idle[name] = conns
		d.count--
		if time.Since(mc.idleSince) < d.idleTimeout {
			return mc
		}
		go mc.close() // a close_notify write must not hold the lock
	}
	return nil
}

// put makes mc idle, unless the pool was closed since it was opened
// (closeIdle: a new CRL, or Client.Close) or the minion has enough idle
// connections already.
func (d *directTransport) put(mc *minionConn) {
	d.mu.Lock()
	if mc.gen != d.gen || len(d.idle[mc.name]) >= maxIdlePerMinion {
		d.mu.Unlock()
		mc.close()
		return
	}
	mc.idleSince = time.Now()
	d.idle[mc.name] = append(d.idle[mc.name], mc)
	d.count++
	if d.sweep == nil {
		d.sweep = time.AfterFunc(d.idleTimeout, d.sweepIdle)
	} else if d.count == 1 {
		d.sweep.Reset(d.idleTimeout)
	}
	d.mu.Unlock()
}

// sweepIdle closes the connections idle for idleTimeout and schedules
// itself for when the next one will be.
func (d *directTransport) sweepIdle() {
	var expired []*minionConn
	now := time.Now()
	d.mu.Lock()
	next := time.Duration(-1)
	for name, conns := range d.idle {
		kept := conns[:0]
		for _, mc := range conns {
			if left := d.idleTimeout - now.Sub(mc.idleSince); left > 0 {
				kept = append(kept, mc)
				if next < 0 || left < next {
					next = left
				}
			} else {
				expired = append(expired, mc)
			}
		}
		clear(conns[len(kept):])
		if len(kept) == 0 {
			delete(d.idle, name)
		} else {
			d.idle[name] = kept
		}
	}
	d.count -= len(expired)
	if next >= 0 {
		d.sweep.Reset(next)
	}
	d.mu.Unlock()
	for _, mc := range expired {
		mc.close()
	}
}

// closeIdle closes the idle connections and marks those in use not to
// be reused: they were checked against the CRL in force when they were
// opened (it is called on a new CRL, and by Client.Close).
func (d *directTransport) closeIdle() {
	d.mu.Lock()
	d.gen++
	idle := d.idle
	d.idle = make(map[string][]*minionConn)
	d.count = 0
	if d.sweep != nil {
		d.sweep.Stop()
	}
	d.mu.Unlock()
	for _, conns := range idle {
		for _, mc := range conns {
			mc.close()
		}
	}
}

// errHandshakeTimeout is a TLS handshake that took longer than
// DialTimeout. It is a net.Error whose Timeout is true.
type errHandshakeTimeout struct{ after time.Duration }

func (e errHandshakeTimeout) Error() string {
	return fmt.Sprintf("TLS handshake timeout (%s)", e.after)
}
func (errHandshakeTimeout) Timeout() bool   { return true }
func (errHandshakeTimeout) Temporary() bool { return true }

// dial opens a connection to the minion and does the TLS handshake:
// the minion must prove its name with a certificate from our CA that
// is not revoked and has the minion role (the identity's TLS config and
// minionOnly). Connecting and the handshake each get DialTimeout.
func (d *directTransport) dial(ctx context.Context, to Minion) (*minionConn, error) {
	if d.tlsConfig == nil {
		return nil, errors.New("overlord: no identity to call with")
	}
	addr, err := d.resolve(ctx, to)
	if err != nil {
		return nil, err
	}
	// A slot first, then connect: the minion's handshake timeout starts
	// when it accepts, so the wait must come before.
	select {
	case d.handshakes <- struct{}{}:
		defer func() { <-d.handshakes }()
	case <-ctx.Done():
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("waiting to connect: %w", err)
	}
	raw, err := d.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err // a *net.OpError with Op "dial"
	}
	d.mu.Lock()
	gen := d.gen
	d.mu.Unlock()
	cfg := d.tlsConfig.Clone()
	cfg.ServerName = to.Name
	tc := tls.Client(raw, cfg)
	hctx, cancel := context.WithTimeout(ctx, d.handshakeTimeout)
	err = tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		raw.Close()
		if ctx.Err() == nil && errors.Is(hctx.Err(), context.DeadlineExceeded) {
			return nil, errHandshakeTimeout{after: d.handshakeTimeout}
		}
		return nil, err
	}
	mc := &minionConn{d: d, name: to.Name, gen: gen, tc: tc, raw: raw}
	if peer := tc.ConnectionState().PeerCertificates; len(peer) > 0 {
		mc.notAfter = peer[0].NotAfter
	}
	mc.body.mc = mc
	if sc, ok := raw.(syscall.Conn); ok && canPeek {
		if rc, err := sc.SyscallConn(); err == nil {
			mc.rc = rc
			mc.peekFn = mc.peek
		}
	}
	return mc, nil
}

// minionConn is one connection to a minion. One call uses it at a
// time: from RoundTrip to its answer's Close.
type minionConn struct {
	d         *directTransport
	name      string
	gen       uint64
	tc        *tls.Conn
	raw       net.Conn
	notAfter  time.Time // the minion's certificate's
	idleSince time.Time
	calls     int // calls answered on the connection before this one

	// rc and peekFn check an idle connection (alive); nil where the
	// platform has no non-blocking peek.
	rc     syscall.RawConn
	peekFn func(fd uintptr) bool
	peeked bool // what peekFn found: the connection is done for

	// The call in progress.
	br        *bufio.Reader // pooled, from begin to end
	stop      func() bool   // stops the cancellation watch
	remaining int64         // body bytes still to read; -1: until the connection closes
	chunked   io.Reader     // the body's reader when it is chunked
	reusable  bool          // the minion keeps the connection open after this answer
	body      answerBody
}

// begin starts a call: a reader, the context's deadline on the
// connection, and a watch that cuts the connection's I/O short when the
// context ends first (cancelled: a Stream left early, Ctrl-C).
func (mc *minionConn) begin(ctx context.Context) {
	mc.br = readerPool.Get().(*bufio.Reader)
	mc.br.Reset(mc.tc)
	dl, _ := ctx.Deadline()
	_ = mc.tc.SetDeadline(dl)
	mc.stop = context.AfterFunc(ctx, mc.interrupt)
	mc.remaining, mc.chunked, mc.reusable = 0, nil, true
	mc.body.closed, mc.body.err = false, nil
}

// interrupt unblocks the connection's reads and writes; the call then
// fails and the connection is closed.
func (mc *minionConn) interrupt() { _ = mc.tc.SetDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// fail describes an I/O error of the call; when the context ended it
// is the context's error that counts (cancelled, or the host timeout).
func (mc *minionConn) fail(ctx context.Context, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %w (%v)", what, cerr, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// send writes the request: the head, then the body, in one TLS record
// when the body is small.
func (mc *minionConn) send(host string, call Outbound, budget time.Duration) error {
	body := call.Body
	bp := writePool.Get().(*[]byte)
	b := append((*bp)[:0], "POST /RPC2 HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, ':')
	b = strconv.AppendInt(b, gofunc.DefaultMinionPort, 10)
	b = append(b, "\r\nUser-Agent: gofunc\r\nContent-Type: text/xml\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	if call.OnBehalfOf != "" {
		b = append(b, "\r\n"+gofunc.OnBehalfOfHeader+": "...)
		b = append(b, call.OnBehalfOf...)
	}
	if budget > 0 {
		b = append(b, "\r\n"+gofunc.TimeoutHeader+": "...)
		b = strconv.AppendInt(b, budget.Microseconds(), 10)
		b = append(b, "us"...)
	}
	b = append(b, "\r\n\r\n"...)
	var err error
	if len(body) <= maxInlineBody {
		b = append(b, body...)
		_, err = mc.tc.Write(b)
	} else if _, err = mc.tc.Write(b); err == nil {
		_, err = mc.tc.Write(body)
	}
	if cap(b) <= 2*maxInlineBody {
		*bp = b[:0]
		writePool.Put(bp)
	}
	return err
}

// readHead reads the answer's status line and headers (skipping
// interim 1xx answers), sets ans's CallID and AuditHead, and prepares
// the body's framing. A status other than 200 is a protocol error.
func (mc *minionConn) readHead(ans *Answer) error {
	for {
		h, err := readResponseHead(mc.br)
		if err != nil {
			return err
		}
		if h.callID != nil {
			ans.CallID = string(h.callID)
		}
		if h.auditHead != nil {
			ans.AuditHead = string(h.auditHead)
		}
		if h.status >= 100 && h.status < 200 && h.status != 101 {
			continue
		}
		mc.reusable = !h.close
		switch {
		case h.chunked:
			mc.chunked = httputil.NewChunkedReader(mc.br)
		case h.length >= 0:
			mc.remaining = h.length
		default:
			mc.remaining, mc.reusable = -1, false // until the minion closes
		}
		if h.status != 200 {
			_, _ = io.Copy(io.Discard, io.LimitReader(&mc.body, 4096))
			mc.abandon()
			return fmt.Errorf("%w: HTTP status %d %s", ErrProtocol, h.status, h.reason)
		}
		return nil
	}
}

// answerBody is an answer's body as the Client reads it: Close ends
// the call.
type answerBody struct {
	mc     *minionConn
	closed bool
	err    error // the first read error, returned again
}

func (b *answerBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("overlord: read of a closed answer")
	}
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.mc.readBody(p)
	if err != nil {
		b.err = err
	}
	return n, err
}

// Close ends the call. The connection goes back to the pool when the
// answer was read whole (a few bytes left over are read first) and the
// call was not cut short; otherwise it is closed.
func (b *answerBody) Close() error {
	if b.closed {
		return nil
	}
	mc := b.mc
	if b.err == nil && (mc.remaining > 0 && mc.remaining <= readBufferSize || mc.chunked != nil) {
		_, _ = io.Copy(io.Discard, io.LimitReader(b, readBufferSize))
	}
	done := errors.Is(b.err, io.EOF) || b.err == nil && mc.chunked == nil && mc.remaining == 0
	b.closed = true
	if !done || !mc.reusable {
		mc.abandon()
		return nil
	}
	mc.end()
	return nil
}

func (mc *minionConn) readBody(p []byte) (int, error) {
	if mc.chunked != nil {
		n, err := mc.chunked.Read(p)
		if err == io.EOF {
			// The last chunk leaves its trailer (usually one empty line)
			// for us to read: the connection is clean only after it.
			if terr := readTrailer(mc.br); terr != nil {
				return n, terr
			}
		}
		return n, err
	}
	if mc.remaining == 0 {
		return 0, io.EOF
	}
	if mc.remaining > 0 && int64(len(p)) > mc.remaining {
		p = p[:mc.remaining]
	}
	n, err := mc.br.Read(p)
	if mc.remaining > 0 {
		mc.remaining -= int64(n)
		if err == io.EOF && mc.remaining > 0 {
			err = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// readTrailer reads a chunked answer's trailer: header lines up to an
// empty one, at most maxHeadBytes, ignored.
func readTrailer(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return headReadError(err, "the trailer")
		}
		if total += len(line); total > maxHeadBytes {
			return fmt.Errorf("%w: trailer over %d bytes", errResponseHead, maxHeadBytes)
		}
		if len(trimEOL(line)) == 0 {
			return nil
		}
	}
}

// end finishes a call whose answer was read whole and puts the
// connection back in the pool. Bytes after the answer are a protocol
// error: the connection is closed.
func (mc *minionConn) end() {
	if !mc.stop() || mc.br.Buffered() > 0 {
		mc.abandon()
		return
	}
	mc.releaseReader()
	// The call's deadline must not outlive it: once past, it would make
	// the reuse check (alive: a read on the socket) fail with a timeout,
	// and a connection idle for longer than the last call's host timeout
	// would be dialled again for nothing.
	if err := mc.tc.SetDeadline(time.Time{}); err != nil {
		mc.close()
		return
	}
	mc.d.put(mc)
}

// abandon finishes a call that failed or was cut short, closing the
// connection.
func (mc *minionConn) abandon() {
	if mc.stop != nil {
		mc.stop()
	}
	mc.releaseReader()
	mc.close()
}

func (mc *minionConn) releaseReader() {
	if mc.br != nil {
		mc.br.Reset(nil)
		readerPool.Put(mc.br)
		mc.br = nil
	}
	mc.stop, mc.chunked = nil, nil
}

func (mc *minionConn) close() { _ = mc.tc.Close() }

// alive reports whether an idle connection may be reused: the minion
// has not closed it (after its idle timeout, or a restart) nor sent
// anything, which a peek at the socket, without blocking, tells.
func (mc *minionConn) alive() bool {
	if mc.rc == nil {
		return true
	}
	mc.peeked = false
	if err := mc.rc.Read(mc.peekFn); err != nil {
		return false
	}
	return !mc.peeked
}
