// Package caller carries an overlord's calls through a gofunc broker:
// an overlord.Transport that signs each call with the overlord's own key
// and publishes it on the minion's call subject, and accepts only
// answers signed by the minion addressed, bound to that call.
//
//	t, err := caller.Dial(ctx, []string{"nats://broker:4222"}, id, caller.Options{})
//	...
//	defer t.Close()
//	c := overlord.New(overlord.WithIdentity(id), overlord.WithTransport(t))
//
// The package is separate from overlord so that a program that never
// uses a broker never links a NATS client.
//
// Every target ends in one state: no minion subscribed to its subject
// (the broker says "no responders") is unreachable at once; no
// acknowledgement within the ack timeout is unreachable; acknowledged
// but no answer by the deadline is a timeout; an answer is the minion's
// result or fault, as on the direct path.
package caller

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/broker/internal/workpool"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/overlord"
)

// Defaults of Options.
const (
	DefaultAckTimeout     = 10 * time.Second
	DefaultMaxAnswerBytes = 64 << 20
	// DefaultDeadline is a call's deadline when its context has none.
	DefaultDeadline = time.Minute
)

// Errors of RoundTrip, beside those the overlord classifies itself
// (they arrive wrapped in the overlord's ErrUnreachable, ErrTimeout,
// ErrImpersonation or ErrUntrusted).
var (
	// ErrNoResponders: the broker knows no minion subscribed to the
	// call subject: the minion is not connected.
	ErrNoResponders = errors.New("broker: no minion connected on its call subject")
	// ErrNoAck: nothing acknowledged the call within the ack timeout.
	ErrNoAck = errors.New("broker: call not acknowledged")
	// ErrForged: a final frame did not verify (signature, digest,
	// request binding); it came from someone other than the minion.
	ErrForged = errors.New("broker: forged or corrupt answer")
	// ErrUnreadable: the minion could not read the call's envelope (it
	// speaks another envelope version, or the call was malformed or too
	// large) and said so. Errors wrapping it also wrap
	// overlord.ErrProtocol and name the minion.
	ErrUnreadable = errors.New("broker: the minion could not read the call's envelope")
	// ErrTooLarge: the answer is larger than Options.MaxAnswerBytes.
	ErrTooLarge = errors.New("broker: answer too large")
	// ErrClosed: the transport was closed.
	ErrClosed = errors.New("broker: transport closed")
	// ErrRefused: Dial's connection was refused, by the broker (this
	// certificate revoked, expired, or of a role it does not admit) or
	// by us (the broker's certificate untrusted). The error names the
	// reason; it is not ErrUnreachable, since retrying will not help.
	ErrRefused = natsconn.ErrRefused
)

// Options tune a Transport. Zero fields mean the defaults noted.
type Options struct {
	// AckTimeout is how long a minion has to acknowledge a call before
	// it counts as unreachable; default DefaultAckTimeout (10s), at most
	// the call's deadline.
	AckTimeout time.Duration
	// MaxAnswerBytes bounds one answer (all its frames); default
	// DefaultMaxAnswerBytes (64 MiB). The overlord's own
	// MaxResultBytes applies after.
	MaxAnswerBytes int
	// Logger receives the connection's logs; nil discards them.
	Logger hclog.Logger
	// Audit, if set, records each Discover broadcast before it is
	// published (an overlord.call record, targets "*", the envelope id
	// as call id) and the minions found after (overlord.call.end), as
	// an overlord.Client records its calls; when the first record
	// cannot be written, nothing is broadcast. Calls made through
	// RoundTrip are the Client's to record. Default nil: no records.
	Audit audit.Appender
}

// Transport is an overlord.Transport over a broker. It is safe for
// concurrent use; Close it when done.
type Transport struct {
	nc    *nats.Conn
	own   bool // Dial made nc: Close closes it
	id    *identity.Identity
	opts  Options
	inbox string
	sub   *nats.Subscription

	mu      sync.Mutex
	pending map[string]*pending
	closed  bool

	peers peerCache
}

// peerCache remembers the minion certificates already verified, so that
// a warm fan-out walks each chain once rather than per answer: an entry
// holds while the CRL is the one it was checked against and the
// certificate has not expired.
type peerCache struct {
	mu sync.Mutex
	m  map[string]cachedPeer // by certificate DER
}

type cachedPeer struct {
	peer gofunc.Peer
	crl  int64
}

// maxCachedPeers bounds the cache; past it, it starts over.
const maxCachedPeers = 1 << 16

// verifyPeer is identity.VerifyPeer with the cache.
func (t *Transport) verifyPeer(cert *x509.Certificate) (gofunc.Peer, error) {
	crl := t.id.CRLNumber()
	key := string(cert.Raw)
	c := &t.peers
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && e.crl == crl && time.Now().Before(cert.NotAfter) {
		return e.peer, nil
	}
	peer, err := t.id.VerifyPeer(cert)
	if err != nil {
		return peer, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedPeers {
		c.m = make(map[string]cachedPeer)
	}
	c.m[key] = cachedPeer{peer: peer, crl: crl}
	c.mu.Unlock()
	return peer, nil
}

var _ overlord.Transport = (*Transport)(nil)

// transportInbox is where one transport takes its answers: a subtree of
// its own under the caller's inbox (broker.ReplyInbox, which the
// broker lets the caller read and each minion checks a call's reply
// subject against), so that other transports of the same identity (two
// func commands of one operator, a dashboard beside them, the job
// requests under ".in") neither receive its answers nor send it theirs.
// With one shared subscription the broker delivered every answer to
// every transport of the identity, each decoding and dropping the
// others'.
func transportInbox(cert *x509.Certificate) string {
	var token [8]byte
	_, _ = rand.Read(token[:])
	return broker.ReplyInbox(cert) + "." + hex.EncodeToString(token[:])
}

// waiters run every transport's per-minion waits (publish, collect the
// frames, verify the answer) on kept goroutines (see workpool).
var waiters workpool.Pool

// Dial connects to the broker at urls (nats://HOST:PORT, several for a
// cluster) with id's certificate and returns a transport for
// overlord.WithTransport.
func Dial(ctx context.Context, urls []string, id *identity.Identity, opts Options) (*Transport, error) {
	nc, err := natsconn.Connect(ctx, urls, id, natsconn.Options{Name: "overlord " + id.Name(), Logger: opts.Logger})
	if errors.Is(err, ErrRefused) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", overlord.ErrUnreachable, err)
	}
	t, err := New(nc, id, opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t.own = true
	return t, nil
}

// New makes a transport on a connection made with id's certificate
// (which the broker's permissions know as the caller). Close does not
// close nc.
func New(nc *nats.Conn, id *identity.Identity, opts Options) (*Transport, error) {
	if opts.AckTimeout <= 0 {
		opts.AckTimeout = DefaultAckTimeout
	}
	if opts.MaxAnswerBytes <= 0 {
		opts.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	t := &Transport{nc: nc, id: id, opts: opts, inbox: transportInbox(id.Leaf()), pending: map[string]*pending{}}
	sub, err := nc.Subscribe(t.inbox+".>", t.receive)
	if err != nil {
		return nil, fmt.Errorf("broker: subscribe to answers: %w", err)
	}
	_ = sub.SetPendingLimits(-1, 512<<20)
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("broker: subscribe to answers: %w", err)
	}
	t.sub = sub
	waiters.Open()
	return t, nil
}

// Close stops taking answers; calls in flight end with ErrClosed.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	for _, p := range t.pending {
		p.fail(ErrClosed)
	}
	t.mu.Unlock()
	waiters.Close()
	err := t.sub.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = nil
	}
	if t.own {
		t.nc.Close()
	}
	return err
}

// pending is one call waiting for its frames.
type pending struct {
	mu     sync.Mutex
	frames []*nats.Msg
	bytes  int
	err    error // set by Close or overflow
	notify chan struct{}
	max    int
}

func (p *pending) push(m *nats.Msg) {
	p.mu.Lock()
	if p.err == nil {
		p.bytes += len(m.Data)
		if p.bytes > p.max+p.max/8 {
			p.err = fmt.Errorf("%w: over %d bytes", ErrTooLarge, p.max)
		} else {
			p.frames = append(p.frames, m)
		}
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *pending) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// take returns the frames received since the last take.
func (p *pending) take() ([]*nats.Msg, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.frames
	p.frames = nil
	return f, p.err
}

// receive runs on the subscription's goroutine and never blocks: it
// files each frame with its call.
func (t *Transport) receive(m *nats.Msg) {
	key, ok := strings.CutPrefix(m.Subject, t.inbox+".") // the call id, and the minion's index in a batch
	if !ok {
		return
	}
	t.mu.Lock()
	p := t.pending[key]
	t.mu.Unlock()
	if p != nil {
		p.push(m)
	}
}

// RoundTrip signs the call for to.Name alone, publishes it on its call
// subject and waits for the acknowledgement and the signed answer.
func (t *Transport) RoundTrip(ctx context.Context, to overlord.Minion, call overlord.Outbound) (overlord.Answer, error) {
	var ans overlord.Answer
	var err error
	t.RoundTripBatch(ctx, []overlord.Minion{to}, call, func(_ int, a overlord.Answer, e error) { ans, err = a, e })
	return ans, err
}

// MaxBatch is the most minions one signed call names
// (broker.MaxAudience).
func (t *Transport) MaxBatch() int { return broker.MaxAudience }

var _ overlord.BatchTransport = (*Transport)(nil)

// RoundTripBatch signs the call once for every minion of to (up to
// MaxBatch names in its audience), publishes it on each one's call
// subject with each one's reply subject (broker.Call.ReplySubject) and
// waits for each acknowledgement and signed answer, calling answer as
// each minion's comes. Each minion checks that it is in the signed
// audience and that its reply subject is its own.
func (t *Transport) RoundTripBatch(ctx context.Context, to []overlord.Minion, call overlord.Outbound, answer func(int, overlord.Answer, error)) {
	var wg sync.WaitGroup
	for from := 0; from < len(to); from += broker.MaxAudience {
		group := to[from:min(from+broker.MaxAudience, len(to))]
		t.sendGroup(ctx, group, call, func(i int, a overlord.Answer, err error) { answer(from+i, a, err) }, &wg)
	}
	wg.Wait()
}

// sendGroup signs and publishes one call to the minions of to (at most
// MaxAudience) and starts, in wg, a wait for each minion's answer. A
// minion the call cannot be sent to is answered at once.
func (t *Transport) sendGroup(ctx context.Context, to []overlord.Minion, call overlord.Outbound, answer func(int, overlord.Answer, error), wg *sync.WaitGroup) {
	failAll := func(err error) {
		for i := range to {
			answer(i, overlord.Answer{}, err)
		}
	}
	subjects := make([]string, 0, len(to))
	index := make([]int, 0, len(to)) // audience position → index in to
	audience := make([]string, 0, len(to))
	for i, m := range to {
		subject, err := broker.CallSubject(m.Name)
		if err != nil {
			answer(i, overlord.Answer{}, err)
			continue
		}
		subjects, index, audience = append(subjects, subject), append(index, i), append(audience, m.Name)
	}
	if len(audience) == 0 {
		return
	}
	now := time.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(DefaultDeadline)
	}
	// Leave the minion a little less than we wait, so its timeout fault
	// reaches us before our own deadline fires (as the direct path).
	budget := deadline.Sub(now) * 95 / 100
	if budget <= 0 {
		failAll(context.DeadlineExceeded)
		return
	}
	method, err := methodOf(call.Body)
	if err != nil {
		failAll(fmt.Errorf("broker: the call's body: %w", err))
		return
	}
	env := &broker.Call{ID: broker.NewID(), Issued: now, Deadline: now.Add(budget), Method: method,
		Audience: audience, OnBehalfOf: call.OnBehalfOf}
	env.ReplyTo = t.inbox + "." + env.ID
	h, err := broker.SignCall(t.id.Certificate(), env, call.Body)
	if err != nil {
		failAll(err)
		return
	}
	request := (&broker.SignedCall{Call: *env}).RequestSum()
	header := nats.Header(h)
	for k, name := range audience {
		reply, _ := env.ReplySubject(name)
		p := &pending{notify: make(chan struct{}, 1), max: t.opts.MaxAnswerBytes}
		key := reply[len(t.inbox)+1:]
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			answer(index[k], overlord.Answer{}, ErrClosed)
			continue
		}
		t.pending[key] = p
		t.mu.Unlock()
		wg.Add(1)
		waiters.Go(func() {
			defer wg.Done()
			defer func() {
				t.mu.Lock()
				delete(t.pending, key)
				t.mu.Unlock()
			}()
			if err := t.nc.PublishMsg(&nats.Msg{Subject: subjects[k], Reply: reply, Header: header, Data: call.Body}); err != nil {
				answer(index[k], overlord.Answer{}, unreachable(t.refusedToo(fmt.Errorf("publish: %w", err))))
				return
			}
			ans, err := t.wait(ctx, to[index[k]], p, env, request)
			answer(index[k], ans, err)
		})
	}
}

// wait collects the frames of one call until its final frame verifies,
// the ack timeout passes unacknowledged, or ctx ends.
func (t *Transport) wait(ctx context.Context, to overlord.Minion, p *pending, env *broker.Call, request [32]byte) (overlord.Answer, error) {
	var ans overlord.Answer
	ackTimer := time.NewTimer(t.opts.AckTimeout)
	defer ackTimer.Stop()
	acked := false
	var body []byte
	var forged error // the last frame that did not verify; a genuine one may still come
	next := 1
	for {
		select {
		case <-ctx.Done():
			if forged != nil {
				return ans, forged
			}
			if !acked {
				return ans, unreachable(t.refusedToo(fmt.Errorf("%w before the deadline", ErrNoAck)))
			}
			return ans, ctx.Err()
		case <-ackTimer.C:
			if !acked {
				if forged != nil {
					return ans, forged
				}
				return ans, unreachable(t.refusedToo(fmt.Errorf("%w within %s", ErrNoAck, t.opts.AckTimeout)))
			}
		case <-p.notify:
			frames, err := p.take()
			if err != nil {
				return ans, err
			}
			for _, m := range frames {
				if m.Header.Get("Status") == "503" {
					return ans, unreachable(ErrNoResponders)
				}
				if m.Header.Get(broker.HeaderID) != env.ID {
					continue // not a frame of this call
				}
				if m.Header.Get(broker.HeaderRefused) != "" {
					err := t.verifyRefusal(to, m)
					if errors.Is(err, ErrUnreadable) {
						return ans, err
					}
					forged = err // not the addressed minion's: a genuine answer may still come
					continue
				}
				seq, err := strconv.Atoi(m.Header.Get(broker.HeaderSeq))
				if err != nil {
					continue
				}
				acked = true
				switch {
				case seq == 0:
				case m.Header.Get(broker.HeaderFinal) == "1":
					ans, err := t.verify(to, m, append(body, m.Data...), request)
					if err == nil {
						return ans, nil
					}
					forged = err
				case seq == next:
					body = append(body, m.Data...)
					next++
				}
			}
		}
	}
}

// verify checks a final frame: signed by a certificate of the CA, not
// revoked, of a minion, naming the minion addressed, over this call's
// request and this body.
func (t *Transport) verify(to overlord.Minion, m *nats.Msg, body []byte, request [32]byte) (overlord.Answer, error) {
	var ans overlord.Answer
	sr, err := broker.ParseReply(broker.Header(m.Header), request)
	if err != nil {
		return ans, fmt.Errorf("%w: %w", ErrForged, err)
	}
	if err := sr.VerifySignature(); err != nil {
		return ans, fmt.Errorf("%w: %w", ErrForged, err)
	}
	if err := sr.CheckBody(body); err != nil {
		return ans, fmt.Errorf("%w: %w", ErrForged, err)
	}
	peer, err := t.verifyPeer(sr.Cert)
	if err != nil {
		var unknown x509.UnknownAuthorityError
		if errors.As(err, &unknown) || errors.Is(err, identity.ErrRevoked) {
			return ans, err // the overlord's ErrUntrusted
		}
		return ans, fmt.Errorf("%w: %w", overlord.ErrUntrusted, err)
	}
	if peer.Role != gofunc.RoleMinion || !strings.EqualFold(peer.Name, to.Name) || !strings.EqualFold(sr.Minion, to.Name) {
		// The direct path's rule: the certificate must name the host
		// addressed (an x509.HostnameError is what TLS would say).
		return ans, fmt.Errorf("answer signed by %s (%s): %w", peer.Name, peer.Role, x509.HostnameError{Certificate: sr.Cert, Host: to.Name})
	}
	ans.Body = io.NopCloser(bytes.NewReader(body))
	ans.CallID, ans.AuditHead = sr.CallID, sr.AuditHead
	return ans, nil
}

// clip bounds text an unsigned frame put in an error.
func clip(s string) string {
	if len(s) > 256 {
		return s[:256] + "..."
	}
	return s
}

// verifyRefusal checks a refusal frame (see door.refuseUnread): signed
// by a certificate of the CA, not revoked, of a minion, naming the
// minion addressed, for this reply subject. It returns the protocol
// error the call ends with (wrapping ErrUnreadable), or why the frame
// is not to be believed.
func (t *Transport) verifyRefusal(to overlord.Minion, m *nats.Msg) error {
	sr, err := broker.ParseRefusal(broker.Header(m.Header), m.Subject, m.Data)
	if err == nil {
		err = sr.VerifySignature()
	}
	if err != nil {
		return fmt.Errorf("%w: refusal frame: %w", ErrForged, err)
	}
	peer, err := t.verifyPeer(sr.Cert)
	if err != nil {
		return fmt.Errorf("%w: refusal frame: %w", overlord.ErrUntrusted, err)
	}
	if peer.Role != gofunc.RoleMinion || !strings.EqualFold(peer.Name, to.Name) || !strings.EqualFold(sr.Minion, to.Name) {
		return fmt.Errorf("refusal signed by %s (%s): %w", peer.Name, peer.Role, x509.HostnameError{Certificate: sr.Cert, Host: to.Name})
	}
	return fmt.Errorf("%w: %w: %s (%s): %s", overlord.ErrProtocol, ErrUnreadable, to.Name, clip(sr.Class), clip(sr.Reason))
}

// refusedToo adds to err why the broker refuses this transport's
// connection, when it does (a certificate revoked since Dial): the
// calls fail for that reason, not for a minion's absence.
func (t *Transport) refusedToo(err error) error {
	if r := natsconn.LastRefusal(t.nc); r != nil && !t.nc.IsConnected() {
		return fmt.Errorf("%w (%w)", err, r)
	}
	return err
}

// unreachable is how the overlord learns that no connection to the
// minion exists: it classifies a dial error as unreachable whatever the
// deadline says.
func unreachable(err error) error {
	return &net.OpError{Op: "dial", Net: "nats", Err: err}
}

// methodOf reads the methodName the call's body names, which the
// envelope signs beside it.
func methodOf(body []byte) (string, error) {
	r, err := xmlrpc.ReadCallHead(bytes.NewReader(body), xmlrpc.Limits{MaxBytes: int64(len(body)) + 1})
	if err != nil {
		return "", err
	}
	defer r.Close()
	return r.Method(), nil
}
