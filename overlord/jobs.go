package overlord

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// Job errors.
var (
	// ErrNoJobStore: async jobs need a job store (WithJobStore).
	ErrNoJobStore = errors.New("overlord: no job store configured (use WithJobStore)")
	// ErrNoJob: no job has that id.
	ErrNoJob = errors.New("overlord: no such job")
	// ErrJobNotQueued: RunJob was given a job that has already started.
	ErrJobNotQueued = errors.New("overlord: job is not queued")
)

// JobState is where an async job is in its life.
type JobState string

// Job states.
const (
	// JobQueued: submitted (Submit), not started yet.
	JobQueued JobState = "queued"
	// JobRunning: calls are in flight; Results holds the answers so far.
	JobRunning JobState = "running"
	// JobDone: every host's result is recorded (some may be failures).
	JobDone JobState = "done"
	// JobInterrupted: the overlord running the job stopped (Close,
	// crash, restart) first. The results recorded before are kept;
	// every other host has an ErrInterrupted error. Nothing resumes it.
	JobInterrupted JobState = "interrupted"
	// JobFailed: the job could not start (its audit record could not be
	// written); Error says why and no host was called.
	JobFailed JobState = "failed"
)

// Finished reports whether the state is final.
func (s JobState) Finished() bool { return s != JobQueued && s != JobRunning }

// Job is an async call and what is known of it.
type Job struct {
	ID      string
	Method  string   // "module.method"
	Spec    string   // the selection, as text
	Hosts   []string // the targets, sorted
	State   JobState
	Created time.Time
	// Finished is when the job reached a final state; zero before.
	Finished time.Time
	// Error says why a JobFailed job did not start.
	Error string
	// OnBehalfOf is the person the job was submitted for
	// (Selection.OnBehalfOf), "" when none: its calls carry it.
	OnBehalfOf string
	// Answered and Failed count the hosts with a recorded result and
	// those among them that failed.
	Answered, Failed int
	// Results holds the recorded results; Jobs leaves it nil.
	Results Results
}

// Err is nil when the job is done and every host succeeded; otherwise a
// *CallError (as Call returns) or the reason the job is not finished.
func (j *Job) Err() error {
	switch j.State {
	case JobQueued, JobRunning:
		return fmt.Errorf("overlord: job %s is %s", j.ID, j.State)
	case JobFailed:
		return fmt.Errorf("overlord: job %s failed to start: %s", j.ID, j.Error)
	}
	return newCallError(j.Method, j.Results)
}

// JobStore keeps async jobs and their results, where CallAsync, Submit,
// RunJob, Job, WaitJob, Jobs and DeleteJob find them, from this process
// or another and after a restart. Like a database/sql driver it is
// opt-in: package overlord/sqlitejobs is the store the func command
// uses (DIR/jobs.db), and a program that never makes an async call links
// none. Its methods are called concurrently; the Client does not close
// it (its owner does, after closing the Client).
//
// The store keeps what it is given; the Client decides what it means
// (which runner is alive, what a missing result is).
type JobStore interface {
	// Insert records a new job, in state JobQueued.
	Insert(ctx context.Context, rec *JobRecord) error
	// Get returns the job with that id (Hosts, Answered, Failed and
	// Results left empty), or an error matching ErrNoJob.
	Get(ctx context.Context, id string) (*JobRecord, error)
	// List returns every job, newest first, with Answered (results
	// recorded) and Failed (recorded results with an error) counted.
	List(ctx context.Context) ([]*JobRecord, error)
	// SetState moves the job from state from (from any state when from
	// is "") to state to, and reports whether it did: a job claimed or
	// finished by someone else is left alone. Moving to JobRunning also
	// refreshes the heartbeat; moving to a final state sets Finished to
	// now and Error to msg.
	SetState(ctx context.Context, id string, from, to JobState, msg string) (bool, error)
	// AddResults records results (replacing a host's earlier one) and
	// refreshes the heartbeat, all or nothing. With no results it only
	// refreshes the heartbeat.
	AddResults(ctx context.Context, id string, results []JobResult) error
	// Results returns the results recorded for the job.
	Results(ctx context.Context, id string) ([]JobResult, error)
	// Delete removes the job and its results.
	Delete(ctx context.Context, id string) error
}

// JobRecord is a job as a JobStore keeps it: the Job, and what RunJob
// needs to carry it out.
type JobRecord struct {
	Job
	// Minions are the targets as resolved when the job was submitted.
	Minions []Minion
	// Request is the encoded call, arguments included: it may hold
	// secrets, so a store keeps it private (mode 0600).
	Request []byte
	// Args and Digest are the arguments' audit summary and digest, for
	// the audit records of the run (never the raw arguments).
	Args   []any
	Digest string
	// Batch is how the targets are called.
	Batch Batch
	// Heartbeat is the last sign of life of the job's runner.
	Heartbeat time.Time
}

// JobResult is one host's result as a JobStore keeps it.
type JobResult struct {
	Host string
	// Value is the result encoded as an XML-RPC methodResponse; nil
	// when ErrKind is set.
	Value []byte
	// ErrKind is ErrorKind of the host's error, "" on success; ErrCode
	// and ErrMessage are its fault code (if any) and text.
	ErrKind    string
	ErrCode    gofunc.Code
	ErrMessage string
	Duration   time.Duration
	CallID     string
	// Seq is set by the store when the result is recorded (AddResults
	// ignores it): greater than that of every result the store recorded
	// before, for any job, so that readers can follow a job by resuming
	// after the last number they saw. A store that keeps no such number
	// leaves it zero.
	Seq int64
}

// jobTiming is the liveness protocol of jobs: a running job's runner
// refreshes its heartbeat every heartbeat; a job whose heartbeat is
// older than stale has lost its runner. Results are written every
// flush; WaitJob polls every poll. The last write of a run is retried
// finalTries times, finalPause apart (doubling). Fields, so that tests
// can shorten them for one client and still run in parallel.
type jobTiming struct {
	heartbeat, stale, flush, poll time.Duration
	finalTries                    int
	finalPause                    time.Duration
}

var defaultJobTiming = jobTiming{
	heartbeat:  2 * time.Second,
	stale:      15 * time.Second,
	flush:      200 * time.Millisecond,
	poll:       100 * time.Millisecond,
	finalTries: 10,
	finalPause: 200 * time.Millisecond,
}

// CallAsync starts module.method(args...) on the selected minions as a
// job owned by the client, and returns it at once (in state running).
// The job's status and each host's result are kept in the job store,
// where Job, WaitJob and Jobs find them, from this process or another,
// and after a restart. ctx bounds only the submission: the job runs
// until it finishes or the client is closed (then it is interrupted).
func (s *Selection) CallAsync(ctx context.Context, module, method string, args ...any) (*Job, error) {
	job, err := s.Submit(ctx, module, method, args...)
	if err != nil {
		return nil, err
	}
	if err := s.c.claim(ctx, job.ID); err != nil {
		return nil, err
	}
	job.State = JobRunning
	s.c.mu.Lock()
	if s.c.closed {
		s.c.mu.Unlock()
		return nil, ErrClosed
	}
	s.c.jobs.Add(1) // under mu, so Close's Wait sees it
	s.c.mu.Unlock()
	go func() {
		defer s.c.jobs.Done()
		_, err := s.c.runClaimed(s.c.bg, job.ID)
		if err != nil {
			s.c.cfg.Logger.Error("async job failed", "job", job.ID, "error", err)
		}
	}()
	return job, nil
}

// Submit records module.method(args...) on the selected minions as a
// queued job without calling anything; RunJob (in this process or
// another, such as a detached `func jobs run`) carries it out. The
// request, arguments included, is kept in the job store until the job
// is deleted.
func (s *Selection) Submit(ctx context.Context, module, method string, args ...any) (*Job, error) {
	st, err := s.c.openJobs()
	if err != nil {
		return nil, err
	}
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	req, err := newRequest(module, method, args)
	if err != nil {
		return nil, err
	}
	hosts := sortedKeys(targets)
	s.c.redact(ctx, hosts, req)
	rec := &JobRecord{
		Job: Job{ID: newID(), Method: req.wire, Spec: s.describe(), Hosts: hosts,
			State: JobQueued, Created: time.Now().UTC(), OnBehalfOf: s.behalf},
		Request: req.body, Args: req.summary, Digest: req.digest, Batch: s.batch, Heartbeat: time.Now(),
	}
	for _, h := range rec.Hosts {
		rec.Minions = append(rec.Minions, targets[h])
	}
	if err := st.Insert(ctx, rec); err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	job := rec.Job
	return &job, nil
}

// RunJob carries out a queued job in the calling goroutine and returns
// it finished. Cancelling ctx interrupts it.
func (c *Client) RunJob(ctx context.Context, id string) (*Job, error) {
	if _, err := c.openJobs(); err != nil {
		return nil, err
	}
	if err := c.claim(ctx, id); err != nil {
		return nil, err
	}
	return c.runClaimed(ctx, id)
}

// claim moves a queued job to running, so that only one runner runs it.
func (c *Client) claim(ctx context.Context, id string) error {
	st, err := c.jobStore()
	if err != nil {
		return err
	}
	ok, err := st.SetState(ctx, id, JobQueued, JobRunning, "")
	if err != nil {
		return fmt.Errorf("overlord: job store: %w", err)
	}
	if !ok {
		if _, err := c.loadJob(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s", ErrJobNotQueued, id)
	}
	return nil
}

// finish moves a job to a final state, whatever state it is in.
func (c *Client) finish(ctx context.Context, id string, state JobState, msg string) {
	if st, err := c.jobStore(); err == nil {
		if _, err := st.SetState(ctx, id, "", state, msg); err != nil {
			c.cfg.Logger.Error("job state not recorded", "job", id, "state", state, "error", err)
		}
	}
}

// runClaimed runs a job this client has claimed (state running).
func (c *Client) runClaimed(ctx context.Context, id string) (*Job, error) {
	rec, err := c.loadJob(ctx, id)
	if err != nil {
		return nil, err
	}
	targets := make(map[string]Minion, len(rec.Minions))
	for _, m := range rec.Minions {
		targets[strings.ToLower(m.Name)] = m
	}
	c.remember(targets)
	if err := c.waitCRL(ctx); err != nil {
		return nil, err
	}
	req := &request{wire: rec.Method, body: rec.Request, summary: rec.Args, digest: rec.Digest, behalf: rec.OnBehalfOf}
	r := &run{c: c, id: id, hosts: sortedKeys(targets), req: req, batch: rec.Batch, spec: rec.Spec, start: time.Now()}
	if rec.OnBehalfOf != "" {
		r.details = map[string]string{"on_behalf_of": rec.OnBehalfOf}
	}
	if err := c.auditStart(r); err != nil {
		c.finish(context.WithoutCancel(ctx), id, JobFailed, err.Error())
		return c.job(context.WithoutCancel(ctx), id)
	}
	w := c.newResultWriter(id)
	r.execute(ctx, w.add)
	w.close()
	state := JobDone
	if ctx.Err() != nil {
		state = JobInterrupted
	}
	c.finish(context.WithoutCancel(ctx), id, state, "")
	return c.job(context.WithoutCancel(ctx), id)
}

// loadJob reads a job from the store, with its Hosts, and records once,
// for every reader, that a job whose runner stopped heartbeating is
// interrupted.
func (c *Client) loadJob(ctx context.Context, id string) (*JobRecord, error) {
	st, err := c.jobStore()
	if err != nil {
		return nil, err
	}
	rec, err := st.Get(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNoJob) {
			return nil, err
		}
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	c.settle(ctx, rec)
	return rec, nil
}

// settle fills rec's Hosts and marks it interrupted when its runner is
// gone (no heartbeat for the stale time).
func (c *Client) settle(ctx context.Context, rec *JobRecord) {
	rec.Hosts = rec.Hosts[:0]
	for _, m := range rec.Minions {
		rec.Hosts = append(rec.Hosts, strings.ToLower(m.Name))
	}
	if rec.State.Finished() || time.Since(rec.Heartbeat) <= c.timing.stale {
		return
	}
	was := rec.State
	rec.State, rec.Finished = JobInterrupted, time.Now().UTC()
	if st, err := c.jobStore(); err == nil {
		_, _ = st.SetState(ctx, rec.ID, was, JobInterrupted, "")
	}
}

// Job returns the job's state and the results recorded so far.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	if _, err := c.openJobs(); err != nil {
		return nil, err
	}
	return c.job(ctx, id)
}

func (c *Client) job(ctx context.Context, id string) (*Job, error) {
	rec, err := c.loadJob(ctx, id)
	if err != nil {
		return nil, err
	}
	job := rec.Job
	if job.Results, err = c.results(ctx, &job); err != nil {
		return nil, err
	}
	// A finished job's hosts without a stored result failed: those of
	// an interrupted job were never answered, those of a done job
	// answered but their result could not be stored.
	missing := map[JobState]error{JobInterrupted: ErrInterrupted, JobDone: ErrNoResult}[job.State]
	if missing != nil {
		for _, h := range job.Hosts {
			if _, ok := job.Results[h]; !ok {
				job.Results[h] = Result{Host: h, Err: &HostError{Host: h, Op: job.Method, Err: missing}}
			}
		}
	}
	job.Answered, job.Failed = len(job.Results), len(job.Results.Failed())
	return &job, nil
}

// results reads the job's stored results back into Results.
func (c *Client) results(ctx context.Context, job *Job) (Results, error) {
	st, err := c.jobStore()
	if err != nil {
		return nil, err
	}
	stored, err := st.Results(ctx, job.ID)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	out := make(Results, len(stored))
	for _, s := range stored {
		r := Result{Host: s.Host, Duration: s.Duration, CallID: s.CallID, Seq: s.Seq}
		if s.ErrKind != "" {
			r.Err = &HostError{Host: s.Host, Op: job.Method, Err: restoreError(s.ErrKind, s.ErrCode, s.ErrMessage)}
		} else if r.Value, err = ixmlrpc.DecodeResponse(bytes.NewReader(s.Value), ixmlrpc.Limits{MaxBytes: 1 << 40}); err != nil {
			r.Err = &HostError{Host: s.Host, Op: job.Method, Err: fmt.Errorf("stored result unreadable: %w", err)}
		}
		out[s.Host] = r
	}
	return out, nil
}

// WaitJob waits until the job is finished (or ctx ends) and returns it.
func (c *Client) WaitJob(ctx context.Context, id string) (*Job, error) {
	t := time.NewTicker(c.timing.poll)
	defer t.Stop()
	for {
		job, err := c.Job(ctx, id)
		if err != nil || job.State.Finished() {
			return job, err
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-t.C:
		}
	}
}

// Jobs lists the jobs in the store, newest first, without their
// results (Answered and Failed are filled).
func (c *Client) Jobs(ctx context.Context) ([]*Job, error) {
	st, err := c.openJobs()
	if err != nil {
		return nil, err
	}
	recs, err := st.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	out := make([]*Job, len(recs))
	for i, rec := range recs {
		c.settle(ctx, rec)
		j := rec.Job
		if j.State == JobDone && j.Answered < len(j.Hosts) {
			j.Failed += len(j.Hosts) - j.Answered // as Job counts them: no result is a failure
		}
		out[i] = &j
	}
	return out, nil
}

// DeleteJob removes a finished job and its results from the store.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	if _, err := c.openJobs(); err != nil {
		return err
	}
	rec, err := c.loadJob(ctx, id)
	if err != nil {
		return err
	}
	if !rec.State.Finished() {
		return fmt.Errorf("overlord: job %s is %s; only finished jobs can be deleted", id, rec.State)
	}
	st, _ := c.jobStore()
	if err := st.Delete(ctx, id); err != nil {
		return fmt.Errorf("overlord: job store: %w", err)
	}
	return nil
}

// jobStore returns the configured store, or why there is none. It does
// not refuse a closed client: Close waits for running jobs, which still
// record their end.
func (c *Client) jobStore() (JobStore, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.cfg.JobStore == nil {
		return nil, ErrNoJobStore
	}
	return c.cfg.JobStore, nil
}

// openJobs is jobStore for the entry points, which a closed client
// refuses.
func (c *Client) openJobs() (JobStore, error) {
	if err := c.usable(); err != nil {
		return nil, err
	}
	return c.jobStore()
}

// resultWriter records a running job's results in batches, and keeps
// its heartbeat fresh, from one goroutine.
type resultWriter struct {
	st      JobStore
	id      string
	log     hclog.Logger
	timing  jobTiming
	mu      sync.Mutex
	pending []Result
	stop    chan struct{}
	done    chan struct{}
}

func (c *Client) newResultWriter(id string) *resultWriter {
	w := &resultWriter{st: c.cfg.JobStore, id: id, log: c.cfg.Logger, timing: c.timing,
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *resultWriter) add(r Result) {
	w.mu.Lock()
	w.pending = append(w.pending, r)
	w.mu.Unlock()
}

func (w *resultWriter) loop() {
	defer close(w.done)
	t := time.NewTicker(w.timing.flush)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-w.stop:
			w.finalFlush()
			return
		case <-t.C:
			beat := time.Since(last) >= w.timing.heartbeat
			if beat {
				last = time.Now()
			}
			_ = w.flush(beat) // logged; kept for the next tick
		}
	}
}

// close flushes what is pending and stops the writer.
func (w *resultWriter) close() {
	close(w.stop)
	<-w.done
}

// finalFlush writes what is pending, retrying a failing store a while
// before it gives up: results not stored then are lost, and Job counts
// those hosts as failed (ErrNoResult).
func (w *resultWriter) finalFlush() {
	pause := w.timing.finalPause
	for try := 1; ; try++ {
		err := w.flush(true)
		if err == nil {
			return
		}
		if try >= w.timing.finalTries {
			w.mu.Lock()
			lost := len(w.pending)
			w.mu.Unlock()
			w.log.Error("job results lost: the job store keeps failing", "job", w.id, "results", lost, "error", err)
			return
		}
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
}

// flush writes the pending results (and the heartbeat when beat) in one
// transaction. When the store fails, the results are kept for the next
// flush and the error is logged and returned.
func (w *resultWriter) flush(beat bool) error {
	w.mu.Lock()
	batch := w.pending
	w.pending = nil
	w.mu.Unlock()
	if len(batch) == 0 && !beat {
		return nil
	}
	stored := make([]JobResult, len(batch))
	for i, r := range batch {
		stored[i] = storedResult(r)
	}
	if err := w.st.AddResults(context.Background(), w.id, stored); err != nil {
		w.mu.Lock()
		w.pending = append(batch, w.pending...)
		w.mu.Unlock()
		w.log.Warn("job store write failed; results kept for a retry", "job", w.id, "results", len(batch), "error", err)
		return err
	}
	return nil
}

// storedResult is r as the store keeps it: the value encoded, or the
// error reduced to its kind (ErrorKind), fault code and text (without
// the host prefix).
func storedResult(r Result) JobResult {
	s := JobResult{Host: r.Host, Duration: r.Duration, CallID: r.CallID}
	if r.Err != nil {
		s.ErrKind = ErrorKind(r.Err)
		err := r.Err
		var he *HostError
		if errors.As(err, &he) {
			err = he.Err
		}
		var f *gofunc.Fault
		if errors.As(err, &f) {
			s.ErrCode = f.Code
		}
		s.ErrMessage = err.Error()
		return s
	}
	var b bytes.Buffer
	if err := ixmlrpc.EncodeResponse(&b, r.Value); err != nil {
		s.ErrKind, s.ErrMessage = "error", "result not storable: "+err.Error()
		return s
	}
	s.Value = b.Bytes()
	return s
}

// storedError is a host error read back from the store: its text, and
// the sentinel its kind names, for errors.Is.
type storedError struct {
	kind error
	msg  string
}

func (e *storedError) Error() string { return e.msg }
func (e *storedError) Unwrap() error { return e.kind }

func restoreError(kind string, code gofunc.Code, msg string) error {
	var sentinel error
	switch kind {
	case "fault":
		if m, ok := strings.CutPrefix(msg, fmt.Sprintf("fault %d (%s): ", int(code), code)); ok {
			msg = m
		}
		return &gofunc.Fault{Code: code, Message: msg}
	case "timeout":
		sentinel = ErrTimeout
	case "impersonation":
		sentinel = ErrImpersonation
	case "untrusted":
		sentinel = ErrUntrusted
	case "protocol":
		sentinel = ErrProtocol
	case "unreachable":
		sentinel = ErrUnreachable
	case "skipped":
		sentinel = ErrSkipped
	case "interrupted":
		sentinel = ErrInterrupted
	case "no_result":
		sentinel = ErrNoResult
	case "canceled":
		sentinel = context.Canceled
	default:
		return errors.New(msg)
	}
	return &storedError{kind: sentinel, msg: msg}
}
