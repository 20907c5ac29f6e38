// Package door is a minion's door to a gofunc broker: it takes the
// signed calls addressed to the minion from its call subject, checks
// their envelopes cheapest first, hands them to the minion's dispatcher
// (minion.Server.Handle: certificate chain and CRL, ACL, write-ahead
// audit, the method) and publishes the signed answers.
//
// The broker is trusted for delivery only. A call that was forged,
// replayed, redirected, altered or sent to another minion than the one
// its caller signed for is refused, and the refusal is in the audit
// log like any denial (rate limited per caller, as the minion limits
// every refusal record).
package door

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/broker/internal/workpool"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
)

// Via is how calls through the door are named in the audit log.
const Via = "nats"

// Defaults of Config.
const (
	DefaultSkew        = 30 * time.Second
	DefaultMaxValidity = 5 * time.Minute
	DefaultMaxInFlight = 256
	DefaultRenewCheck  = 30 * time.Second
)

// ErrConfig: Open was given an incomplete Config.
var ErrConfig = errors.New("door: bad config")

// Config describes a door. Zero fields mean the defaults noted.
type Config struct {
	// Server is the minion whose dispatcher runs the calls; it must be
	// started (Start or Serve). Required.
	Server *minion.Server
	// Conn is the connection to the broker, made with the minion's
	// certificate. Required. The door does not close it.
	Conn *nats.Conn
	// AuditPath is the minion's audit log, read at Open to reseed the
	// replay cache with the call ids of the last MaxValidity+Skew; empty
	// means Server.Audit's own path when it is an *audit.Log, else no
	// reseeding (a call replayed across a restart would then run
	// again: always set it in production).
	AuditPath string
	// Skew is how far in the future a call may be issued (the caller's
	// clock ahead of ours); default DefaultSkew (30s).
	Skew time.Duration
	// MaxValidity bounds a call's deadline minus its issue time; default
	// DefaultMaxValidity (5m). It also bounds how long call ids are
	// remembered against replay.
	MaxValidity time.Duration
	// MaxInFlight bounds the calls the door handles at once; more wait
	// in the broker connection's buffer. Default DefaultMaxInFlight.
	// The minion's own limit (MaxConcurrent) answers "busy" beyond its
	// slots, as on the HTTPS door.
	MaxInFlight int
	// RenewCheck is how often a door made by Dial looks whether the
	// minion's certificate changed (renewed, or SetIdentity) and then
	// reconnects with the new one at once, rather than when the broker
	// drops the old one at its expiry; default DefaultRenewCheck (30s).
	// Any reconnection presents the current certificate anyway.
	RenewCheck time.Duration
	// Logger receives the door's logs; nil discards them.
	Logger hclog.Logger
	// Now is the clock; nil means time.Now. For tests.
	Now func() time.Time
}

// handlers run the calls of every door of the process (see workpool).
var handlers workpool.Pool

// Door is an open door. Close stops it.
type Door struct {
	cfg    Config
	srv    *minion.Server
	nc     *nats.Conn
	own    bool // Dial made nc: Close closes it
	name   string
	log    hclog.Logger
	sub    *nats.Subscription
	bsub   *nats.Subscription // broadcasts
	seen   replayCache
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	jobs   atomic.Pointer[Jobs] // OpenJobs's, closed by Close
	closed atomic.Bool          // Close ran
}

// Open subscribes the minion to its call subject and serves calls until
// Close. The minion's name is its certificate's.
func Open(cfg Config) (*Door, error) {
	if cfg.Server == nil || cfg.Conn == nil {
		return nil, fmt.Errorf("%w: Server and Conn are required", ErrConfig)
	}
	if cfg.Skew <= 0 {
		cfg.Skew = DefaultSkew
	}
	if cfg.MaxValidity <= 0 {
		cfg.MaxValidity = DefaultMaxValidity
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.AuditPath == "" {
		if l, ok := cfg.Server.Audit.(*audit.Log); ok && l != nil {
			cfg.AuditPath = l.Path()
		}
	}
	id := cfg.Server.CurrentIdentity()
	if id == nil {
		return nil, fmt.Errorf("%w: the minion has no identity", ErrConfig)
	}
	d := &Door{cfg: cfg, srv: cfg.Server, nc: cfg.Conn, name: id.Name(), log: cfg.Logger,
		sem: make(chan struct{}, cfg.MaxInFlight)}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	if cfg.AuditPath != "" {
		window := cfg.MaxValidity + cfg.Skew
		n, err := d.seen.reseed(cfg.AuditPath, cfg.Now(), window, window, func(r audit.Record) string { return r.CallID })
		if err != nil {
			d.cancel()
			return nil, fmt.Errorf("door: replay cache from %s: %w", cfg.AuditPath, err)
		}
		d.log.Debug("replay cache reseeded", "ids", n)
	}
	subject, err := broker.CallSubject(d.name)
	if err != nil {
		d.cancel()
		return nil, err
	}
	sub, err := d.nc.Subscribe(subject, d.receive)
	if err != nil {
		d.cancel()
		return nil, fmt.Errorf("door: subscribe %s: %w", subject, err)
	}
	// A minion of a large fleet may get bursts; the handlers bound the
	// work, the buffer only holds messages.
	_ = sub.SetPendingLimits(64<<10, 256<<20)
	d.sub = sub
	// Discovery broadcasts: checked like any call (their audience is
	// broker.AudienceAll, for broker.BroadcastMethod methods only).
	if d.bsub, err = d.nc.Subscribe(broker.BroadcastAll, d.receive); err != nil {
		_ = sub.Unsubscribe()
		d.cancel()
		return nil, fmt.Errorf("door: subscribe %s: %w", broker.BroadcastAll, err)
	}
	// Make sure the broker has the subscription before callers are told
	// the minion is up.
	if err := d.nc.FlushTimeout(10 * time.Second); err != nil && !d.nc.IsReconnecting() {
		d.log.Warn("broker flush after subscribing", "error", err)
	}
	handlers.Open()
	return d, nil
}

// Dial connects to the broker at urls (nats://HOST:PORT, several for a
// cluster) with the minion's certificate and opens the door on that
// connection (cfg.Conn is ignored). A broker that cannot be reached yet
// is no error: the connection keeps trying, with jitter, for ever, and
// after every reconnection the broker has the subscription again, so
// minions come back by themselves when a broker restarts. Close closes
// the connection too.
func Dial(ctx context.Context, urls []string, cfg Config) (*Door, error) {
	if cfg.Server == nil || cfg.Server.CurrentIdentity() == nil {
		return nil, fmt.Errorf("%w: Server with an identity is required", ErrConfig)
	}
	id := cfg.Server.CurrentIdentity()
	inbox, err := broker.MinionInbox(id.Name())
	if err != nil {
		return nil, err
	}
	nc, err := natsconn.Connect(ctx, urls, id, natsconn.Options{Name: "minion " + id.Name(), Background: true,
		Logger: cfg.Logger, Identity: cfg.Server.CurrentIdentity, InboxPrefix: inbox})
	if err != nil {
		return nil, err
	}
	cfg.Conn = nc
	d, err := Open(cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	d.own = true
	every := cfg.RenewCheck
	if every <= 0 {
		every = DefaultRenewCheck
	}
	d.wg.Add(1)
	go d.followIdentity(id.Leaf(), every)
	return d, nil
}

// followIdentity reconnects to the broker when the minion's certificate
// changes, so that the broker knows it by the new one (and keeps the
// connection past the old one's expiry, or its revocation after a
// rekey). The reconnection takes one handshake; nats.go buffers what is
// published meanwhile and subscribes again.
func (d *Door) followIdentity(leaf *x509.Certificate, every time.Duration) {
	defer d.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-tick.C:
		}
		cur := d.srv.CurrentIdentity().Leaf()
		if cur.Equal(leaf) {
			continue
		}
		leaf = cur
		d.log.Info("certificate changed; reconnecting to the broker with it", "serial", cur.SerialNumber.Text(16),
			"not_after", cur.NotAfter)
		if err := d.nc.ForceReconnect(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			d.log.Warn("reconnecting with the new certificate", "error", err)
		}
	}
}

// Conn is the door's connection to the broker (made by Dial, or
// Config.Conn), for what else the minion sends there: PublishEvents.
func (d *Door) Conn() *nats.Conn { return d.nc }

// Close unsubscribes, cancels the calls in flight and waits for them
// (Shutdown the minion first to let them finish); it closes the door's
// Jobs first, when OpenJobs opened them.
func (d *Door) Close() error {
	if j := d.jobs.Load(); j != nil {
		_ = j.Close()
	}
	err := errors.Join(d.sub.Unsubscribe(), d.bsub.Unsubscribe())
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		err = nil
	}
	d.cancel()
	d.wg.Wait()
	if d.closed.CompareAndSwap(false, true) {
		handlers.Close()
	}
	if d.own {
		d.nc.Close()
	}
	return err
}

// receive runs on the subscription's goroutine: it acknowledges the
// call at once (the caller learns the minion is there, before any check
// or queueing costs time), takes a handler slot (waiting when all are
// busy, which leaves messages in the buffer) and handles the call on
// a worker of its own (handlers).
func (d *Door) receive(msg *nats.Msg) {
	// A broadcast is not acknowledged: its caller counts answers, not
	// targets, and every minion's ack would double its inbox's load.
	if id := msg.Header.Get(broker.HeaderID); id != "" && msg.Subject != broker.BroadcastAll && isReplyFor(msg.Reply, id) {
		d.ack(msg.Reply, id)
	}
	select {
	case d.sem <- struct{}{}:
	case <-d.ctx.Done():
		return
	}
	d.wg.Add(1)
	handlers.Go(func() {
		defer d.wg.Done()
		defer func() { <-d.sem }()
		d.serve(msg)
	})
}

// isReplyFor reports whether reply looks like the reply subject of call
// id, alone (ReplyPrefix...id) or in a batch (ReplyPrefix...id.N): the
// unsigned acknowledgement goes nowhere else.
func isReplyFor(reply, id string) bool {
	if !strings.HasPrefix(reply, broker.ReplyPrefix) {
		return false
	}
	if strings.HasSuffix(reply, "."+id) {
		return true
	}
	rest, index, ok := strings.Cut(reply[len(broker.ReplyPrefix):], "."+id+".")
	if !ok || rest == "" || index == "" {
		return false
	}
	for _, c := range index {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// serve checks one call's envelope, cheapest first, has the minion
// handle it (or refuse it, with an audit record) and answers.
func (d *Door) serve(msg *nats.Msg) {
	sc, refusal := d.check(msg, d.cfg.Now())
	in := inbound(msg.Subject, msg.Data, sc, refusal)
	if sc == nil {
		// Not even a readable envelope: the attempt is recorded (as a
		// call without a certificate) and the caller told why.
		d.srv.Handle(d.ctx, in)
		d.refuseUnread(msg, refusal)
		return
	}
	answerable := refusal == nil || !(errors.Is(refusal, broker.ErrReplyTo) || errors.Is(refusal, broker.ErrSignature))
	ctx, cancel := context.WithDeadline(d.ctx, sc.Deadline)
	defer cancel()
	rep := d.srv.Handle(ctx, in)
	if !answerable {
		// The reply subject is not the caller's own, or the caller did
		// not sign it: answering would deliver to whoever redirected
		// the call.
		return
	}
	if err := d.answer(msg.Reply, sc, rep); err != nil {
		d.log.Warn("answer not sent", "call_id", sc.ID, "error", err)
	}
}

// inbound is what the minion's dispatcher is told of a call that came
// through the broker on subject: the envelope sc (nil when unreadable)
// and why the door refuses it (nil when it may run).
func inbound(subject string, data []byte, sc *broker.SignedCall, refusal error) minion.Inbound {
	in := minion.Inbound{Via: Via, Remote: "broker", Body: bytes.NewReader(data), Size: int64(len(data)),
		Details: map[string]string{"subject": clip(subject, 128)}}
	if refusal != nil {
		in.Details["envelope"] = refusal.Error()
		in.Refusal = gofunc.Errorf(gofunc.CodeDenied, "%v", refusal)
	}
	if sc == nil {
		return in
	}
	in.Caller = sc.Cert
	in.Deadline = sc.Deadline
	in.OnBehalfOf = sc.OnBehalfOf
	in.ID = sc.ID
	fp := sha256.Sum256(sc.Cert.Raw)
	in.Details["envelope_id"] = sc.ID
	in.Details["issued"] = sc.Issued.Format(broker.TimeLayout)
	in.Details["deadline"] = sc.Deadline.Format(broker.TimeLayout)
	in.Details["signer"] = "sha256:" + hex.EncodeToString(fp[:])
	if len(sc.Audience) > 1 || sc.Broadcast() {
		in.Details["audience"] = clip(strings.Join(sc.Audience, ","), 256)
	}
	if refusal != nil {
		// Only a call that ran its course through the envelope checks
		// owns its id in the audit log: the log reseeds the replay
		// cache at start, and an envelope refused before (or at) its
		// signature check may carry a genuine call's id to have that
		// call refused after a restart. A replay's id belongs to the
		// first call. The id stays in the details for the reader.
		in.ID = ""
	}
	return in
}

// check runs the envelope checks that need no certificate authority,
// cheapest first: the headers and the body's digest, the method the
// body names, the times, the audience, the reply subject, the
// signature, and last the replay cache (so that only signed ids enter
// it). The chain, CRL and role are Handle's. It returns the call (nil
// when unreadable) and why it must be refused (nil when it may run).
func (d *Door) check(msg *nats.Msg, now time.Time) (*broker.SignedCall, error) {
	return d.checkEnvelope(broker.Header(msg.Header), msg.Data, now, d.cfg.MaxValidity, &d.seen, func(sc *broker.SignedCall) error {
		if want, _ := sc.ReplySubject(d.name); msg.Reply != want || !strings.HasPrefix(sc.ReplyTo, broker.ReplyInbox(sc.Cert)+".") {
			return &broker.EnvelopeError{Err: broker.ErrReplyTo, Detail: fmt.Sprintf("signed %s, delivered with %s", clip(want, 128), clip(msg.Reply, 128))}
		}
		return nil
	})
}

// checkEnvelope is check for a call (or job) with headers h and body
// data, valid for at most maxValidity, whose reply subject replyOK
// judges, remembered in seen.
func (d *Door) checkEnvelope(h broker.Header, data []byte, now time.Time, maxValidity time.Duration, seen *replayCache,
	replyOK func(*broker.SignedCall) error) (*broker.SignedCall, error) {
	limit := d.srv.MaxBodyBytes
	if limit <= 0 {
		limit = minion.DefaultMaxBodyBytes
	}
	if int64(len(data)) > limit {
		return nil, &broker.EnvelopeError{Err: broker.ErrMalformed, Detail: fmt.Sprintf("body of %d bytes over the %d-byte limit", len(data), limit)}
	}
	sc, err := broker.ParseCall(h, data)
	if err != nil {
		return nil, err
	}
	if m, err := methodOf(data, limit); err != nil || m != sc.Method {
		return sc, &broker.EnvelopeError{Err: broker.ErrMethod, Detail: fmt.Sprintf("envelope says %s, body %s", sc.Method, clip(m, 64))}
	}
	if err := sc.CheckTimes(now, d.cfg.Skew, maxValidity); err != nil {
		return sc, err
	}
	if err := sc.CheckAudience(d.name); err != nil {
		return sc, err
	}
	if err := replyOK(sc); err != nil {
		return sc, err
	}
	if err := sc.VerifySignature(); err != nil {
		return sc, err
	}
	if !seen.add(sc.ID, sc.Deadline.Add(d.cfg.Skew), now) {
		return sc, &broker.EnvelopeError{Err: broker.ErrReplayed, Detail: sc.ID}
	}
	return sc, nil
}

// methodOf reads the methodName of an XML-RPC call.
func methodOf(body []byte, limit int64) (string, error) {
	r, err := xmlrpc.ReadCallHead(bytes.NewReader(body), xmlrpc.Limits{MaxBytes: limit})
	if err != nil {
		return "", err
	}
	defer r.Close()
	return r.Method(), nil
}

// ack tells the caller the call reached a live minion (frame 0), before
// any check. It is not signed: a forged acknowledgement can only make a
// missing minion look slow (timeout instead of unreachable), never
// forge an answer; and a call refused without an answer (bad
// signature, redirected) ends in a timeout.
func (d *Door) ack(reply, id string) {
	h := nats.Header{}
	h.Set(broker.HeaderVersion, broker.Version)
	h.Set(broker.HeaderID, id)
	h.Set(broker.HeaderMinion, d.name)
	h.Set(broker.HeaderSeq, "0")
	if err := d.nc.PublishMsg(&nats.Msg{Subject: reply, Header: h}); err != nil {
		d.log.Debug("acknowledgement not sent", "call_id", id, "error", err)
	}
}

// refuseUnread tells the caller of a call whose envelope could not be
// read (another version, malformed, over the size limit) why, so that
// it fails at once as a protocol error rather than after the ack
// timeout as "unreachable". The frame is signed (broker.SignRefusal)
// over the call id, the reply subject, the minion's name and the
// reason, so that the caller takes it only from the minion it addressed:
// not from the broker, nor from another minion of a batch (which sees
// the same call id), who could otherwise fail this minion's result.
// It binds no request (the envelope is unreadable), so it can only
// fail a call, never pass for a result; signing costs one ECDSA
// operation, as an answer would. It goes only where the ack went
// (isReplyFor).
func (d *Door) refuseUnread(msg *nats.Msg, why error) {
	id := msg.Header.Get(broker.HeaderID)
	if id == "" || msg.Subject == broker.BroadcastAll || !isReplyFor(msg.Reply, id) {
		return
	}
	class := "malformed"
	if errors.Is(why, broker.ErrVersion) {
		class = "version"
		why = fmt.Errorf("%w; this minion speaks envelope version %s", why, broker.Version)
	}
	r := &broker.Refusal{ID: id, ReplyTo: msg.Reply, Minion: d.name, Class: class, Reason: clip(why.Error(), 512)}
	h, err := broker.SignRefusal(d.srv.CurrentIdentity().Certificate(), r)
	if err == nil {
		err = d.nc.PublishMsg(&nats.Msg{Subject: msg.Reply, Header: nats.Header(h), Data: []byte(r.Reason)})
	}
	if err != nil {
		d.log.Debug("refusal not sent", "call_id", id, "error", err)
	}
}

// answer publishes the minion's answer: data frames 1..n-1 when it is
// larger than one message may be, then the signed final frame, which
// covers the digest of the whole answer and the request it answers.
func (d *Door) answer(reply string, sc *broker.SignedCall, rep minion.Reply) error {
	chunk := frameSize(d.nc.MaxPayload())
	body := rep.Body
	seq := 1
	for ; len(body)-chunkStart(seq, chunk) > chunk; seq++ {
		start := chunkStart(seq, chunk)
		h := dataFrameHeader(sc.ID, seq)
		if err := d.nc.PublishMsg(&nats.Msg{Subject: reply, Header: nats.Header(h), Data: body[start : start+chunk]}); err != nil {
			return err
		}
	}
	r := &broker.Reply{ID: sc.ID, Request: sc.RequestSum(), Minion: d.name, Seq: seq, AuditHead: rep.AuditHead, CallID: rep.ID}
	id := d.srv.CurrentIdentity()
	h, err := broker.SignReply(id.Certificate(), r, body)
	if err != nil {
		return err
	}
	return d.nc.PublishMsg(&nats.Msg{Subject: reply, Header: nats.Header(h), Data: body[chunkStart(seq, chunk):]})
}

// frameHeadroom is what a frame's headers may take of the broker's
// maximum payload (the certificate and signature are ~1.2 KiB).
const frameHeadroom = 8 << 10

// frameSize is how much of an answer one frame carries under the
// broker's maximum payload.
func frameSize(maxPayload int64) int {
	return max(int(maxPayload)-frameHeadroom, 1024)
}

// dataFrameHeader is the header of data frame seq of call id's answer
// (unsigned: the final frame's signature covers the whole answer).
func dataFrameHeader(id string, seq int) broker.Header {
	h := broker.Header{}
	h[broker.HeaderVersion] = []string{broker.Version}
	h[broker.HeaderID] = []string{id}
	h[broker.HeaderSeq] = []string{strconv.Itoa(seq)}
	return h
}

// chunkStart is where frame seq's data starts in the answer.
func chunkStart(seq, chunk int) int { return (seq - 1) * chunk }

// replayCache remembers the ids of signed calls until their deadline
// (plus the skew) has passed; a call whose id it holds is a replay.
type replayCache struct {
	mu     sync.Mutex
	ids    map[string]time.Time // id → when it may be forgotten
	nextGC time.Time
}

// add records id until expiry and reports whether it was new.
func (c *replayCache) add(id string, expiry, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = make(map[string]time.Time)
	}
	if now.After(c.nextGC) {
		for k, exp := range c.ids {
			if now.After(exp) {
				delete(c.ids, k)
			}
		}
		c.nextGC = now.Add(time.Minute)
	}
	if exp, ok := c.ids[id]; ok && !now.After(exp) {
		return false
	}
	c.ids[id] = expiry
	return true
}

// reseed fills the cache from the audit log, which is the durable
// replay cache: a call that ran has a record before it ran, so a
// restart cannot make it runnable again. It reads the `via: nats` call
// records of the last window; idOf names the id a record holds ("" for
// none), kept until the recorded deadline plus keep (the record's time
// plus window when no deadline was recorded).
func (c *replayCache) reseed(path string, now time.Time, window, keep time.Duration, idOf func(audit.Record) string) (int, error) {
	files, err := audit.Files(path)
	if err != nil || len(files) == 0 {
		return 0, err
	}
	n := 0
	err = audit.Query(files, audit.Filter{Since: now.Add(-window), Kind: "call.*"}, func(r audit.Record) error {
		id := idOf(r)
		if r.Details["via"] != Via || id == "" {
			return nil
		}
		expiry := r.Time.Add(window)
		if dl, err := time.Parse(broker.TimeLayout, r.Details["deadline"]); err == nil {
			expiry = dl.Add(keep)
		}
		if c.add(id, expiry, now) {
			n++
		}
		return nil
	})
	if errors.Is(err, audit.ErrTorn) {
		err = nil // a torn last line is a crash mid-write, not tampering
	}
	return n, err
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// Name is the minion's name the door answers for.
func (d *Door) Name() string { return d.name }
