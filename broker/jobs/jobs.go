// Package jobs submits store-and-forward jobs through a gofunc broker
// with JetStream, and collects their results: a job for a minion that
// is offline waits in the broker (stream GF_JOBS) until the minion
// comes back, runs there once, and its signed answer waits (GF_RESULTS)
// until any overlord collects it.
//
// A job is one signed call envelope per target (package broker), valid
// until its start-by time and answered on the target's own result
// subject; the minion runs every check of a call when it takes the job
// (so a caller revoked while the job waited is denied, and audited).
// The broker is trusted for delivery only: a result counts when its
// minion's signature covers it and the job's request, and its
// certificate chains to the CA, is not revoked and names the target.
package jobs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// Defaults and bounds of Spec.StartBy.
const (
	DefaultStartBy = 24 * time.Hour
	// MaxStartBy is the minions' DefaultJobMaxValidity and the
	// broker's DefaultJobsMaxAge: a job may wait that long, not more.
	MaxStartBy = 7 * 24 * time.Hour
)

// Errors, for errors.Is.
var (
	// ErrNoJob: no record of the job in the broker (wrong id, or
	// older than the broker keeps jobs).
	ErrNoJob = errors.New("jobs: no such job")
	// ErrNoJetStream: the broker keeps no jobs (funcbroker without
	// --jetstream).
	ErrNoJetStream = errors.New("jobs: the broker keeps no jobs (funcbroker --jetstream)")
	// ErrForged: a result in GF_RESULTS that its minion did not sign
	// for this job (it is not counted), or a job record its caller did
	// not sign (the job cannot be read).
	ErrForged = errors.New("jobs: result not signed by its minion for this job")
	// ErrSpec: Submit was given an unusable Spec.
	ErrSpec = errors.New("jobs: bad job")
	// ErrExpired: a target has no result and the job's start-by (plus
	// Options.ExpiryGrace) has passed (Result.Err of StateExpired).
	ErrExpired = errors.New("jobs: no result by the job's start-by")
	// ErrIncomplete: a target's signed result is stored but frames of
	// its answer are missing, or do not make the answer its minion
	// signed (Result.Err of StateIncomplete); its value is withheld.
	ErrIncomplete = errors.New("jobs: result frames missing or not the signed answer")
)

// Spec is a job to submit.
type Spec struct {
	// Method is "module.method". Required.
	Method string
	// Args are the method's arguments, as overlord calls take them.
	Args []any
	// Targets are the minions' names (resolved by the caller). Required.
	Targets []string
	// StartBy is when the job must have started on a minion; a minion
	// that comes back later refuses it. Default now + DefaultStartBy;
	// at most now + MaxStartBy.
	StartBy time.Time
	// OnBehalfOf is the person the caller calls for ("name@role"), as
	// in overlord calls; signed.
	OnBehalfOf string
}

// Job is a submitted job, as its record in the broker says.
type Job struct {
	ID      string    `json:"id"`
	Method  string    `json:"method"`
	Targets []string  `json:"targets"`
	Issued  time.Time `json:"issued"`
	StartBy time.Time `json:"start_by"`
	// Caller is the submitting certificate's name; the record is
	// signed with it.
	Caller string `json:"caller"`
	// CallerRevoked: the caller's certificate has been revoked since
	// (its minions deny the job). Set by Job and Status.
	CallerRevoked bool `json:"caller_revoked,omitempty"`
}

// State of one target of a job.
type State string

// States of a target.
const (
	StatePending State = "pending" // no result yet (the minion has not taken the job, or is running it)
	StateOK      State = "ok"      // ran; Value is its result
	StateFault   State = "fault"   // ran, or was refused (Fault says which): denied, expired, the method's error
	// StateExpired: no result, and the job's start-by (plus the
	// collector's ExpiryGrace) has passed: the minion never took the
	// job in time (offline, gone), or took it and lost its answer
	// (crashed before spooling it). Final, like an unreachable host; a
	// result stored later still replaces it.
	StateExpired State = "expired"
	// StateIncomplete: the minion's signed result is stored but its
	// frames are missing or do not make the answer it signed; the value
	// is withheld, never guessed.
	StateIncomplete State = "incomplete"
)

// Result is one target's outcome.
type Result struct {
	Minion string `json:"minion"`
	State  State  `json:"state"`
	// Value is the method's result (StateOK).
	Value any `json:"value,omitempty"`
	// Fault is the minion's fault (StateFault).
	Fault *gofunc.Fault `json:"fault,omitempty"`
	// CallID and AuditHead locate the call in the minion's audit log.
	CallID    string `json:"call_id,omitempty"`
	AuditHead string `json:"audit_head,omitempty"`
	// Forged counts results for this target that did not verify (each
	// logged); they are ignored.
	Forged int `json:"forged,omitempty"`
	// Err says why a target is StateExpired (ErrExpired) or
	// StateIncomplete (ErrIncomplete); Reason is its text.
	Err    error  `json:"-"`
	Reason string `json:"reason,omitempty"`
}

// Options tune a Client. Zero fields mean the defaults noted.
type Options struct {
	// Logger receives forged results and the connection's troubles;
	// nil discards them.
	Logger hclog.Logger
	// ExpiryGrace is how long after a job's start-by a target without
	// a result is still pending (a minion that took the job just in
	// time is running it, or sending its answer); after, it is
	// StateExpired. Default DefaultExpiryGrace (10m).
	ExpiryGrace time.Duration
	// MaxAnswerBytes bounds one target's answer (all its frames);
	// default DefaultMaxAnswerBytes (64 MiB, a minion's largest).
	MaxAnswerBytes int
}

// Defaults of Options.
const (
	DefaultExpiryGrace    = 10 * time.Minute
	DefaultMaxAnswerBytes = 64 << 20
)

// Client submits and collects jobs over one broker connection.
type Client struct {
	nc   *nats.Conn
	id   *identity.Identity
	own  bool
	log  hclog.Logger
	opts Options
}

// Dial connects to the broker at urls with id's certificate (an
// overlord or delegate).
func Dial(ctx context.Context, urls []string, id *identity.Identity, opts Options) (*Client, error) {
	nc, err := natsconn.Connect(ctx, urls, id, natsconn.Options{Name: "jobs " + id.Name(), Logger: opts.Logger,
		InboxPrefix: broker.ReplyInbox(id.Leaf()) + ".in"})
	if err != nil {
		return nil, err
	}
	c := New(nc, id, opts)
	c.own = true
	return c, nil
}

// New is a Client on nc, a connection made with id's certificate whose
// inbox prefix is under broker.ReplyInbox(id's certificate) (the broker
// permits no other). Close does not close nc.
func New(nc *nats.Conn, id *identity.Identity, opts Options) *Client {
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if opts.ExpiryGrace <= 0 {
		opts.ExpiryGrace = DefaultExpiryGrace
	}
	if opts.MaxAnswerBytes <= 0 {
		opts.MaxAnswerBytes = DefaultMaxAnswerBytes
	}
	return &Client{nc: nc, id: id, log: log, opts: opts}
}

// Close closes the connection Dial made.
func (c *Client) Close() error {
	if c.own {
		c.nc.Close()
	}
	return nil
}

// Submit stores the job's record and one signed envelope per target in
// the broker, each acknowledged by it, then rings each target's
// doorbell so that online minions take it at once. On an error, the
// job returned holds the targets stored before it (the others never
// get it).
func (c *Client) Submit(ctx context.Context, spec Spec) (*Job, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	job := &Job{ID: broker.NewID(), Method: spec.Method, Issued: now, StartBy: spec.StartBy, Caller: c.id.Name()}
	if job.StartBy.IsZero() {
		job.StartBy = now.Add(DefaultStartBy)
	}
	job.StartBy = job.StartBy.UTC().Truncate(time.Millisecond)
	switch {
	case len(spec.Targets) == 0:
		return nil, fmt.Errorf("%w: no targets", ErrSpec)
	case !job.StartBy.After(now) || job.StartBy.Sub(now) > MaxStartBy:
		return nil, fmt.Errorf("%w: start-by %s is not within %s from now", ErrSpec, job.StartBy.Format(time.RFC3339), MaxStartBy)
	}
	body, err := xmlrpc.EncodeRequest(spec.Method, spec.Args...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	type envelope struct{ subject, target string }
	var envs []envelope
	headers := map[string]broker.Header{}
	for _, t := range spec.Targets {
		subject, err := broker.JobSubject(t)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSpec, err)
		}
		reply, _ := broker.ResultSubject(job.ID, t)
		call := &broker.Call{ID: job.ID, Issued: now, Deadline: job.StartBy, Method: spec.Method, Audience: []string{t},
			ReplyTo: reply, OnBehalfOf: spec.OnBehalfOf}
		h, err := broker.SignCall(c.id.Certificate(), call, body)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSpec, err)
		}
		envs, headers[t] = append(envs, envelope{subject, t}), h
	}
	job.Targets = slices.Clone(spec.Targets)
	rec, _ := json.Marshal(job)
	recSubject, _ := broker.JobRecordSubject(job.ID)
	recHeader, err := broker.SignRecord(c.id.Certificate(), rec)
	if err != nil {
		return nil, err
	}
	if _, err := c.publish(ctx, &nats.Msg{Subject: recSubject, Header: nats.Header(recHeader), Data: rec}, job.ID); err != nil {
		return nil, err
	}
	stored := job.Targets[:0:0]
	for _, e := range envs {
		if _, err := c.publish(ctx, &nats.Msg{Subject: e.subject, Header: nats.Header(headers[e.target]), Data: body}, job.ID+"."+strings.TrimPrefix(e.subject, broker.JobPrefix)); err != nil {
			done := *job
			done.Targets = stored
			return &done, fmt.Errorf("jobs: job %s for %s: %w", job.ID, e.target, err)
		}
		stored = append(stored, e.target)
		bell, _ := broker.BellSubject(e.target)
		_ = c.nc.Publish(bell, nil) // best effort: the minion polls too
	}
	return job, c.nc.FlushTimeout(jsget.DefaultTimeout)
}

func (c *Client) publish(ctx context.Context, m *nats.Msg, msgID string) (uint64, error) {
	seq, err := jsget.Publish(ctx, c.nc, m, msgID)
	if errors.Is(err, jsget.ErrNoStream) {
		return 0, fmt.Errorf("%w: %w", ErrNoJetStream, err)
	}
	return seq, err
}

// Job reads a job's record.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	subject, err := broker.JobRecordSubject(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoJob, err)
	}
	m, err := c.next(ctx, subject, 1)
	if errors.Is(err, jsget.ErrNoMessage) {
		return nil, fmt.Errorf("%w: %s", ErrNoJob, id)
	}
	if err != nil {
		return nil, err
	}
	return c.record(m, id)
}

// next is jsget.Next in GF_JOBS, its errors this package's.
func (c *Client) next(ctx context.Context, subject string, seq uint64) (*jsget.Msg, error) {
	m, err := jsget.Next(ctx, c.nc, broker.JobStream, subject, seq)
	if errors.Is(err, jsget.ErrNoStream) {
		return nil, fmt.Errorf("%w: %w", ErrNoJetStream, err)
	}
	return m, err
}

// record reads and verifies the job record m (of job id, if not "").
func (c *Client) record(m *jsget.Msg, id string) (*Job, error) {
	var job Job
	if err := json.Unmarshal(m.Data, &job); err != nil || id != "" && job.ID != id || m.Subject != broker.JobRecordPrefix+job.ID {
		return nil, fmt.Errorf("%w: %s: unreadable record", ErrNoJob, m.Subject)
	}
	if err := c.verifyRecord(&job, m); err != nil {
		return nil, err
	}
	return &job, nil
}

// List reads the records of the jobs the broker keeps (for
// --jobs-max-age, 7 days by default) issued at or after since, oldest
// first. A record its caller did not sign is left out and logged, as
// Job refuses it.
func (c *Client) List(ctx context.Context, since time.Time) ([]*Job, error) {
	var out []*Job
	for seq := uint64(1); ; {
		m, err := c.next(ctx, broker.JobRecordPrefix+"*", seq)
		if errors.Is(err, jsget.ErrNoMessage) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		seq = m.Seq + 1
		job, err := c.record(m, "")
		if err != nil {
			c.log.Warn("job record refused", "subject", m.Subject, "error", err)
			continue
		}
		if !job.Issued.Before(since) {
			out = append(out, job)
		}
	}
}

// verifyRecord checks that the record was signed by the overlord (or
// delegate) it names as the job's caller, with a certificate of the CA:
// a broker cannot change a job's targets.
func (c *Client) verifyRecord(job *Job, m *jsget.Msg) error {
	cert, err := broker.VerifyRecord(broker.Header(m.Header), m.Data)
	if err != nil {
		return fmt.Errorf("%w: record of job %s: %w", ErrForged, job.ID, err)
	}
	// A caller revoked since is still who submitted the job (the
	// minions refuse to run it): say so rather than hide the job.
	peer, err := c.id.VerifyPeer(cert)
	job.CallerRevoked = errors.Is(err, identity.ErrRevoked)
	if err != nil && !job.CallerRevoked {
		return fmt.Errorf("%w: record of job %s: %w", ErrForged, job.ID, err)
	}
	if (peer.Role != gofunc.RoleOverlord && peer.Role != gofunc.RoleDelegate) || peer.Name != job.Caller {
		return fmt.Errorf("%w: record of job %s signed by %s (%s), not its caller %s", ErrForged, job.ID, peer.Name, peer.Role, job.Caller)
	}
	return nil
}

// Status reads the job's record and every result stored for it, and
// returns one Result per target, in the record's order. Each result is
// verified (see package doc); one that does not verify is counted in
// Forged and logged, and a genuine one after it still counts.
func (c *Client) Status(ctx context.Context, id string) (*Job, []Result, error) {
	job, err := c.Job(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	t := newTally(job)
	err = c.collect(ctx, t)
	t.expire(time.Now(), c.opts.ExpiryGrace)
	return job, t.out, err
}

// tally is what a collector knows of a job's results so far.
type tally struct {
	job    *Job
	out    []Result
	byName map[string]*Result
	next   uint64 // the GF_RESULTS sequence to read from
	// frames are the data frames read so far of each target's answer
	// (by lower-case name, then frame number; the first of a number
	// counts), bytes their total.
	frames map[string]map[int][]byte
	bytes  map[string]int
}

func newTally(job *Job) *tally {
	t := &tally{job: job, out: make([]Result, len(job.Targets)), byName: map[string]*Result{}, next: 1,
		frames: map[string]map[int][]byte{}, bytes: map[string]int{}}
	for i, name := range job.Targets {
		t.out[i] = Result{Minion: name, State: StatePending}
		t.byName[strings.ToLower(name)] = &t.out[i]
	}
	return t
}

// pending reports whether a target has no result yet.
func (t *tally) pending() bool {
	return slices.ContainsFunc(t.out, func(r Result) bool { return r.State == StatePending })
}

// expire marks the targets still pending StateExpired once the job's
// start-by plus grace has passed at now. collect runs on: a result
// read later replaces it.
func (t *tally) expire(now time.Time, grace time.Duration) {
	if !now.After(t.job.StartBy.Add(grace)) {
		return
	}
	for i := range t.out {
		if r := &t.out[i]; r.State == StatePending {
			r.State = StateExpired
			r.Err = fmt.Errorf("%w (%s, and %s after it)", ErrExpired, t.job.StartBy.Format(time.RFC3339), grace)
			r.Reason = r.Err.Error()
		}
	}
}

// addFrame keeps data frame m of a target's answer; a frame that is
// not one of this job's, or over limit, is an error (and not kept).
func (t *tally) addFrame(key string, m *jsget.Msg, limit int) error {
	seq, err := strconv.Atoi(m.Header.Get(broker.HeaderSeq))
	if err != nil || seq < 1 || seq > 1<<20 || m.Header.Get(broker.HeaderID) != t.job.ID {
		return fmt.Errorf("%w: data frame %q of job %q", ErrForged, m.Header.Get(broker.HeaderSeq), m.Header.Get(broker.HeaderID))
	}
	if t.frames[key] == nil {
		t.frames[key] = map[int][]byte{}
	}
	if _, dup := t.frames[key][seq]; dup {
		return nil // sent again (a spool retried after the broker's duplicate window)
	}
	if t.bytes[key]+len(m.Data) > limit {
		return fmt.Errorf("%w: answer over %d bytes", ErrIncomplete, limit)
	}
	t.frames[key][seq] = m.Data
	t.bytes[key] += len(m.Data)
	return nil
}

// answer joins data frames 1..final-1 of a target's answer and the
// final frame's data.
func (t *tally) answer(key string, final int, last []byte) ([]byte, error) {
	var body []byte
	for seq := 1; seq < final; seq++ {
		f, ok := t.frames[key][seq]
		if !ok {
			return nil, fmt.Errorf("%w: frame %d of %d is not stored", ErrIncomplete, seq, final)
		}
		body = append(body, f...)
	}
	return append(body, last...), nil
}

// collect reads the job's results stored since the last it read.
func (c *Client) collect(ctx context.Context, t *tally) error {
	id := t.job.ID
	for {
		m, err := jsget.Next(ctx, c.nc, broker.ResultStream, broker.ResultPrefix+id+".*", t.next)
		if errors.Is(err, jsget.ErrNoMessage) {
			return nil
		}
		if err != nil {
			return err
		}
		t.next = m.Seq + 1
		_, name, err := broker.ResultOf(m.Subject)
		key := strings.ToLower(name)
		r := t.byName[key]
		if err != nil || r == nil || (r.State != StatePending && r.State != StateExpired) {
			continue // not a target of the job, or answered already
		}
		if m.Header.Get(broker.HeaderFinal) != "1" {
			if err := t.addFrame(key, m, c.opts.MaxAnswerBytes); err != nil {
				r.Forged++
				c.log.Warn("job result frame refused", "job", id, "minion", name, "error", err)
			}
			continue
		}
		if err := c.verify(id, name, m, r, t); err != nil {
			r.Forged++
			c.log.Warn("job result refused", "job", id, "minion", name, "error", err)
		}
		if r.State != StatePending && r.State != StateExpired {
			delete(t.frames, key) // answered: its frames are not needed any more
			delete(t.bytes, key)
		}
	}
}

// verify checks the final frame m of job's result for minion and fills
// r from it and the data frames before it (t). A final frame that is
// not the minion's is an error (r unchanged: a genuine one may follow);
// one that is, over an answer its frames do not make, is
// StateIncomplete.
func (c *Client) verify(job, minion string, m *jsget.Msg, r *Result, t *tally) error {
	signed, err := base64.StdEncoding.DecodeString(m.Header.Get(broker.HeaderRequest))
	if err != nil {
		return fmt.Errorf("%w: %s unreadable", ErrForged, broker.HeaderRequest)
	}
	req, err := broker.ParseRequest(signed)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForged, err)
	}
	if want, _ := broker.ResultSubject(job, minion); req.ID != job || req.ReplyTo != want || m.Subject != want {
		return fmt.Errorf("%w: the request is job %s for %s", ErrForged, req.ID, req.ReplyTo)
	}
	sr, err := broker.ParseReply(broker.Header(m.Header), (&broker.SignedCall{Call: *req}).RequestSum())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForged, err)
	}
	if err := sr.VerifySignature(); err != nil {
		return fmt.Errorf("%w: %w", ErrForged, err)
	}
	peer, err := c.id.VerifyPeer(sr.Cert)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrForged, err)
	}
	if peer.Role != gofunc.RoleMinion || !strings.EqualFold(peer.Name, minion) || !strings.EqualFold(sr.Minion, minion) {
		return fmt.Errorf("%w: signed by %s (%s): %w", ErrForged, peer.Name, peer.Role, x509.HostnameError{Certificate: sr.Cert, Host: minion})
	}
	if sr.Seq > 1 && len(m.Data)+t.bytes[strings.ToLower(minion)] > c.opts.MaxAnswerBytes {
		return fmt.Errorf("%w: answer over %d bytes", ErrIncomplete, c.opts.MaxAnswerBytes)
	}
	body, err := t.answer(strings.ToLower(minion), sr.Seq, m.Data)
	if err == nil {
		if err = sr.CheckBody(body); err != nil {
			err = fmt.Errorf("%w: %w", ErrIncomplete, err)
		}
	}
	if err != nil {
		if sr.Seq == 1 {
			return fmt.Errorf("%w: %w", ErrForged, err) // the one frame signed is not this one: a genuine one may follow
		}
		r.State, r.Err, r.Reason, r.Value, r.Fault = StateIncomplete, err, err.Error(), nil, nil
		r.CallID, r.AuditHead = sr.CallID, sr.AuditHead
		return err
	}
	r.CallID, r.AuditHead, r.Err, r.Reason = sr.CallID, sr.AuditHead, nil, ""
	v, err := xmlrpc.DecodeResponse(bytes.NewReader(body), xmlrpc.Limits{MaxBytes: int64(len(body)) + 1})
	var f *gofunc.Fault
	switch {
	case errors.As(err, &f):
		r.State, r.Fault = StateFault, f
	case err != nil:
		r.State, r.Fault = StateFault, gofunc.Errorf(gofunc.CodeInternal, "unreadable answer: %v", err)
	default:
		r.State, r.Value = StateOK, v
	}
	return nil
}

// Wait polls the job's results every interval (default 1s) until no
// target is pending or ctx ends (then it returns the last status and
// ctx's error).
func (c *Client) Wait(ctx context.Context, id string, interval time.Duration) (*Job, []Result, error) {
	if interval <= 0 {
		interval = time.Second
	}
	job, err := c.Job(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	// Each round reads only the results stored since the last one.
	t := newTally(job)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := c.collect(ctx, t)
		t.expire(time.Now(), c.opts.ExpiryGrace)
		if err != nil || !t.pending() {
			return job, t.out, err
		}
		select {
		case <-ctx.Done():
			return job, t.out, ctx.Err()
		case <-tick.C:
		}
	}
}
