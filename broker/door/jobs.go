package door

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/minion"
)

// Defaults of JobsConfig.
const (
	// DefaultJobMaxValidity bounds a job's start-by minus its issue
	// time, and how long job ids are remembered against replay: the
	// brokers' GF_JOBS keeps a job 7 days by default.
	DefaultJobMaxValidity = 7 * 24 * time.Hour
	// DefaultJobRunLimit bounds how long one job runs (the minion's
	// MaxCallTimeout caps it too).
	DefaultJobRunLimit = time.Hour
	// DefaultJobPoll is how often the minion looks for jobs without a
	// doorbell (one lost while the job was stored) or a reconnection.
	DefaultJobPoll = 5 * time.Minute
)

// JobDetail is the audit detail naming the job a call came from.
const JobDetail = "job"

// JobsConfig describes a minion's jobs over the broker. Zero fields
// mean the defaults noted.
type JobsConfig struct {
	// Dir keeps the jobs' state: the last job handled ("cursor") and
	// the results not yet acknowledged by the broker ("results/", one
	// file each, 0600). Required; made 0700 if missing.
	Dir string
	// MaxValidity: default DefaultJobMaxValidity (7 days).
	MaxValidity time.Duration
	// RunLimit: default DefaultJobRunLimit (1h).
	RunLimit time.Duration
	// Poll: default DefaultJobPoll (5m).
	Poll time.Duration
}

// Jobs takes the minion's jobs from the broker's GF_JOBS stream: at
// start, after each reconnection, on each doorbell and every Poll, it
// reads the jobs stored for it since the last one it handled, by direct
// get (no consumer on the broker), checks each at execution time like a
// call (signature, times against the job's start-by, audience, the
// result subject, replay across restarts, then the chain, CRL, role,
// ACL and write-ahead audit of Handle), runs it once, and keeps its
// signed answer in a spool on disk until GF_RESULTS acknowledges it.
type Jobs struct {
	d       *Door
	cfg     JobsConfig
	subject string // the minion's job subject
	cursor  cursor // the last job handled; under the run goroutine
	// recheck: look whether GF_JOBS was made afresh (its sequences
	// start again at 1) before the next drain; set at start and on
	// every reconnection.
	recheck atomic.Bool
	seen    replayCache
	spool   spool
	kick    chan struct{}
	bell    *nats.Subscription
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	closeOnce sync.Once
}

// OpenJobs starts taking jobs through the door's connection, which
// must use broker.MinionInbox(name) as its inbox prefix (Dial's
// does). The door's Close closes them; open them once per door.
func (d *Door) OpenJobs(cfg JobsConfig) (*Jobs, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: jobs need a Dir", ErrConfig)
	}
	if cfg.MaxValidity <= 0 {
		cfg.MaxValidity = DefaultJobMaxValidity
	}
	if cfg.RunLimit <= 0 {
		cfg.RunLimit = DefaultJobRunLimit
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultJobPoll
	}
	subject, err := broker.JobSubject(d.name)
	if err != nil {
		return nil, err
	}
	j := &Jobs{d: d, cfg: cfg, subject: subject, kick: make(chan struct{}, 1), spool: spool{dir: filepath.Join(cfg.Dir, "results")}}
	if err := os.MkdirAll(j.spool.dir, 0o700); err != nil {
		return nil, fmt.Errorf("door: jobs: %w", err)
	}
	if j.cursor, err = readCursor(j.cursorPath()); err != nil {
		return nil, err
	}
	j.recheck.Store(true)
	if d.cfg.AuditPath != "" {
		// The jobs handled within MaxValidity+Skew, so that a job runs
		// once even across restarts and a lost cursor.
		n, err := j.seen.reseed(d.cfg.AuditPath, d.cfg.Now(), j.cfg.MaxValidity+d.cfg.Skew, d.cfg.Skew,
			func(r audit.Record) string { return r.Details[JobDetail] })
		if err != nil {
			return nil, fmt.Errorf("door: job replay cache from %s: %w", d.cfg.AuditPath, err)
		}
		d.log.Debug("job replay cache reseeded", "ids", n)
	}
	bell, err := broker.BellSubject(d.name)
	if err != nil {
		return nil, err
	}
	if j.bell, err = d.nc.Subscribe(bell, func(*nats.Msg) { j.ring() }); err != nil {
		return nil, fmt.Errorf("door: subscribe %s: %w", bell, err)
	}
	// Missed doorbells while disconnected: look again after each
	// reconnection (keeping whatever handler the connection had).
	prev := d.nc.Opts.ReconnectedCB
	d.nc.SetReconnectHandler(func(nc *nats.Conn) {
		if prev != nil {
			prev(nc)
		}
		j.recheck.Store(true)
		j.ring()
	})
	var ctx context.Context
	ctx, j.cancel = context.WithCancel(d.ctx)
	j.wg.Add(1)
	go j.run(ctx)
	d.jobs.Store(j)
	return j, nil
}

// Close stops taking jobs and waits for the one running; the door's
// Close calls it. It may be called more than once.
func (j *Jobs) Close() error {
	var err error
	j.closeOnce.Do(func() { err = j.close() })
	return err
}

func (j *Jobs) close() error {
	err := j.bell.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		err = nil
	}
	j.cancel()
	j.wg.Wait()
	return err
}

// ring asks the run loop to look for jobs and send results now.
func (j *Jobs) ring() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

func (j *Jobs) run(ctx context.Context) {
	defer j.wg.Done()
	for {
		j.flush(ctx)
		j.drain(ctx)
		wait := j.cfg.Poll
		if !j.flush(ctx) {
			// A result the broker has not acknowledged yet: try again
			// soon, not at the next poll (a reconnection rings at once).
			wait = min(wait, flushRetry)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-j.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// flushRetry is how soon a result the broker did not acknowledge is
// sent again, and how long one answer of the broker (a PubAck, a direct
// get) is waited for: a request lost with a connection is not answered
// at all. A result sent twice is stored once (its Nats-Msg-Id).
const flushRetry = 10 * time.Second

// drain handles the jobs stored after the cursor, in order.
func (j *Jobs) drain(ctx context.Context) {
	if j.recheck.Swap(false) && !j.checkReset(ctx) {
		j.recheck.Store(true)
		return
	}
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, flushRetry)
		m, err := jsget.Next(rctx, j.d.nc, broker.JobStream, j.subject, j.cursor.seq+1)
		cancel()
		switch {
		case errors.Is(err, jsget.ErrNoMessage):
			return
		case err != nil:
			j.d.log.Debug("jobs not read", "error", err)
			return
		}
		j.handle(ctx, m)
		j.save(cursor{seq: m.Seq, stamp: stampOf(m)})
	}
}

// checkReset starts the cursor over when GF_JOBS holds nothing for this
// minion (nothing can be missed by reading from its start), or was
// made afresh: its first message for this minion has a sequence at or
// before the cursor but was stored after the job the cursor names. A
// new stream's jobs would otherwise sit below the cursor, unread. The
// replay cache keeps old jobs from running again. It reports false when
// the broker could not tell.
func (j *Jobs) checkReset(ctx context.Context) bool {
	if j.cursor.seq == 0 {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, flushRetry)
	defer cancel()
	m, err := jsget.Next(rctx, j.d.nc, broker.JobStream, j.subject, 1)
	switch {
	case errors.Is(err, jsget.ErrNoMessage):
		j.save(cursor{})
	case err != nil:
		j.d.log.Debug("jobs not read", "error", err)
		return false
	case m.Seq <= j.cursor.seq && stampOf(m).After(j.cursor.stamp):
		j.d.log.Warn("the broker's job stream was made afresh: reading it from its start", "cursor", j.cursor.seq)
		j.save(cursor{})
	}
	return true
}

// cursor is the last job handled: its sequence in GF_JOBS and when the
// broker stored it.
type cursor struct {
	seq   uint64
	stamp time.Time
}

// stampOf is when the broker stored m (zero if it does not say).
func stampOf(m *jsget.Msg) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
	return t
}

// save moves the cursor and writes it down.
func (j *Jobs) save(c cursor) {
	j.cursor = c
	line := strconv.FormatUint(c.seq, 10) + " " + c.stamp.UTC().Format(time.RFC3339Nano) + "\n"
	if err := writeFile(j.cursorPath(), []byte(line)); err != nil {
		j.d.log.Error("job cursor not saved", "error", err)
	}
}

// handle checks and runs one job and spools its answer.
func (j *Jobs) handle(ctx context.Context, m *jsget.Msg) {
	now := j.d.cfg.Now()
	sc, refusal := j.d.checkEnvelope(broker.Header(m.Header), m.Data, now, j.cfg.MaxValidity, &j.seen, func(sc *broker.SignedCall) error {
		// A job is for one minion: the result subject of a batch's
		// audience (ReplyTo.N) is no result subject.
		if want, _ := sc.ReplySubject(j.d.name); want != j.resultSubject(sc.ID) {
			return &broker.EnvelopeError{Err: broker.ErrReplyTo, Detail: fmt.Sprintf("signed %s, not this minion's result subject", clip(sc.ReplyTo, 128))}
		}
		return nil
	})
	in := inbound(m.Subject, m.Data, sc, refusal)
	in.Details["stream_seq"] = strconv.FormatUint(m.Seq, 10)
	if sc == nil {
		j.d.srv.Handle(ctx, in)
		return
	}
	if refusal == nil || errors.Is(refusal, broker.ErrReplayed) {
		// Only a job whose signature verified is named as one: the
		// audit log reseeds the job replay cache, and an unsigned
		// envelope must not block the genuine job with its id.
		in.Details[JobDetail] = sc.ID
	}
	in.Deadline = now.Add(j.cfg.RunLimit)
	rctx, cancel := context.WithDeadline(ctx, in.Deadline)
	defer cancel()
	rep := j.d.srv.Handle(rctx, in)
	if want, _ := sc.ReplySubject(j.d.name); want != j.resultSubject(sc.ID) || errors.Is(refusal, broker.ErrSignature) || errors.Is(refusal, broker.ErrReplayed) {
		// Not this minion's result subject (the broker would refuse it
		// anyway), not signed by its caller, or run already (its first
		// answer is the one kept).
		return
	}
	if err := j.keep(sc, rep); err != nil {
		j.d.log.Error("job result not kept", "job", sc.ID, "error", err)
	}
}

// keep signs the answer and writes it to the spool: like a call's
// answer (Door.answer), data frames 1..n-1 when it is larger than one
// message may be, then the signed final frame over the digest of the
// whole answer; all in one spool file, each frame with its own
// Nats-Msg-Id so that a spool sent again is stored once.
func (j *Jobs) keep(sc *broker.SignedCall, rep minion.Reply) error {
	body := rep.Body
	chunk := frameSize(j.d.nc.MaxPayload())
	msgID := sc.ID + "." + strings.TrimPrefix(j.subject, broker.JobPrefix)
	var frames []spooledFrame
	seq := 1
	for ; len(body)-chunkStart(seq, chunk) > chunk; seq++ {
		frames = append(frames, spooledFrame{MsgID: msgID + "." + strconv.Itoa(seq), Header: dataFrameHeader(sc.ID, seq),
			Data: body[chunkStart(seq, chunk) : chunkStart(seq, chunk)+chunk]})
	}
	r := &broker.Reply{ID: sc.ID, Request: sc.RequestSum(), Minion: j.d.name, Seq: seq, AuditHead: rep.AuditHead, CallID: rep.ID}
	h, err := broker.SignReply(j.d.srv.CurrentIdentity().Certificate(), r, body)
	if err != nil {
		return err
	}
	h[broker.HeaderRequest] = []string{base64.StdEncoding.EncodeToString(sc.SignedBytes())}
	// The final frame of a one-frame answer keeps the id results had
	// before they were chunked.
	final := msgID
	if seq > 1 {
		final += "." + strconv.Itoa(seq)
	}
	frames = append(frames, spooledFrame{MsgID: final, Header: h, Data: body[chunkStart(seq, chunk):]})
	return j.spool.put(spooled{Subject: sc.ReplyTo, Frames: frames})
}

// flush publishes the spooled results, oldest first, deleting each
// once the broker acknowledged it; it stops at the first failure and
// reports false (run tries again after flushRetry, or on a
// reconnection or doorbell).
func (j *Jobs) flush(ctx context.Context) bool {
	return j.spool.each(j.d.log, func(r spooled) error {
		for _, f := range r.Frames {
			pctx, cancel := context.WithTimeout(ctx, flushRetry)
			_, err := jsget.Publish(pctx, j.d.nc, &nats.Msg{Subject: r.Subject, Header: nats.Header(f.Header), Data: f.Data}, f.MsgID)
			cancel()
			if err != nil {
				if !errors.Is(err, jsget.ErrNotStored) {
					j.d.log.Debug("job result not sent yet", "subject", r.Subject, "frame", f.MsgID, "error", err)
				}
				return err
			}
		}
		return nil
	})
}

// resultSubject is where this minion's answer to job goes.
func (j *Jobs) resultSubject(job string) string {
	s, err := broker.ResultSubject(job, j.d.name)
	if err != nil {
		return ""
	}
	return s
}

func (j *Jobs) cursorPath() string { return filepath.Join(j.cfg.Dir, "cursor") }

// readCursor reads "SEQ STAMP" back; a missing file is the start.
func readCursor(path string) (cursor, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cursor{}, nil
	}
	if err != nil {
		return cursor{}, fmt.Errorf("door: job cursor: %w", err)
	}
	return parseCursor(string(b))
}

func parseCursor(s string) (cursor, error) {
	var c cursor
	seq, stamp, _ := strings.Cut(strings.TrimSpace(s), " ")
	var err error
	if c.seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return c, fmt.Errorf("door: job cursor %q: %w", clip(s, 64), err)
	}
	if c.stamp, err = time.Parse(time.RFC3339Nano, stamp); err != nil {
		return c, fmt.Errorf("door: job cursor %q: %w", clip(s, 64), err)
	}
	return c, nil
}
