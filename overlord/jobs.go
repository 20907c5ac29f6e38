package overlord

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go

	"github.com/gofunc/gofunc"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// Job errors.
var (
	// ErrNoJobStore: async jobs need a job store (WithJobStore, or an
	// identity directory).
	ErrNoJobStore = errors.New("overlord: no job store configured (use WithJobStore or WithIdentity)")
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

// Timing of job liveness: a running job's runner updates its heartbeat
// every heartbeatEvery; a job whose heartbeat is older than staleAfter
// is taken to have lost its runner. Variables so tests can shorten them.
var (
	heartbeatEvery = 2 * time.Second
	staleAfter     = 15 * time.Second
	flushEvery     = 200 * time.Millisecond
	pollEvery      = 100 * time.Millisecond
)

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
	st := s.c.jobStore()
	if err := st.claim(ctx, job.ID); err != nil {
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
// request, arguments included, is kept in the job store (mode 0600)
// until the job is deleted.
func (s *Selection) Submit(ctx context.Context, module, method string, args ...any) (*Job, error) {
	st := s.c.jobStore()
	if st == nil {
		return nil, s.c.storeErr
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
	job := &Job{ID: newID(), Method: req.wire, Spec: s.describe(), Hosts: hosts,
		State: JobQueued, Created: time.Now().UTC()}
	if err := st.insert(ctx, job, targets, req, s.batch); err != nil {
		return nil, err
	}
	return job, nil
}

// RunJob carries out a queued job in the calling goroutine and returns
// it finished. Cancelling ctx interrupts it.
func (c *Client) RunJob(ctx context.Context, id string) (*Job, error) {
	st := c.jobStore()
	if st == nil {
		return nil, c.storeErr
	}
	if err := st.claim(ctx, id); err != nil {
		return nil, err
	}
	return c.runClaimed(ctx, id)
}

// runClaimed runs a job this client has claimed (state running).
func (c *Client) runClaimed(ctx context.Context, id string) (*Job, error) {
	st := c.jobStore()
	sj, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	targets := make(map[string]Minion, len(sj.minions))
	for _, m := range sj.minions {
		targets[strings.ToLower(m.Name)] = m
	}
	c.remember(targets)
	if err := c.waitCRL(ctx); err != nil {
		return nil, err
	}
	r := &run{c: c, id: id, hosts: sortedKeys(targets), req: sj.req, batch: sj.batch, spec: sj.job.Spec, start: time.Now()}
	if err := c.auditStart(r); err != nil {
		st.finish(context.WithoutCancel(ctx), id, JobFailed, err.Error())
		return c.Job(context.WithoutCancel(ctx), id)
	}
	w := st.newWriter(id, c.cfg.Logger)
	r.execute(ctx, w.add)
	w.close()
	state := JobDone
	if ctx.Err() != nil {
		state = JobInterrupted
	}
	st.finish(context.WithoutCancel(ctx), id, state, "")
	return c.Job(context.WithoutCancel(ctx), id)
}

// Job returns the job's state and the results recorded so far.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	st := c.jobStore()
	if st == nil {
		return nil, c.storeErr
	}
	sj, err := st.load(ctx, id)
	if err != nil {
		return nil, err
	}
	job := sj.job
	job.Results, err = st.results(ctx, id)
	if err != nil {
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

// WaitJob waits until the job is finished (or ctx ends) and returns it.
func (c *Client) WaitJob(ctx context.Context, id string) (*Job, error) {
	t := time.NewTicker(pollEvery)
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
	st := c.jobStore()
	if st == nil {
		return nil, c.storeErr
	}
	return st.list(ctx)
}

// DeleteJob removes a finished job and its results from the store.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	st := c.jobStore()
	if st == nil {
		return c.storeErr
	}
	return st.delete(ctx, id)
}

// jobStore opens the store on first use; nil means c.storeErr says why.
func (c *Client) jobStore() *jobStore {
	c.storeOnce.Do(func() {
		if err := c.usable(); err != nil {
			c.storeErr = err
			return
		}
		if c.cfg.JobsPath == "" {
			c.storeErr = ErrNoJobStore
			return
		}
		c.store, c.storeErr = openJobStore(c.cfg.JobsPath)
	})
	return c.store
}

// jobStore keeps jobs in SQLite (WAL), so that a job run by one process
// can be watched from another while it runs.
type jobStore struct {
	db *sql.DB
}

const jobSchema = `
CREATE TABLE IF NOT EXISTS jobs (
	id        TEXT PRIMARY KEY,
	created   INTEGER NOT NULL,
	method    TEXT NOT NULL,
	spec      TEXT NOT NULL,
	minions   TEXT NOT NULL,
	body      BLOB NOT NULL,
	args      TEXT NOT NULL,
	digest    TEXT NOT NULL,
	batch     TEXT NOT NULL,
	state     TEXT NOT NULL,
	heartbeat INTEGER NOT NULL,
	finished  INTEGER NOT NULL DEFAULT 0,
	error     TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
	job      TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	host     TEXT NOT NULL,
	value    BLOB,
	err_kind TEXT NOT NULL DEFAULT '',
	err_code INTEGER NOT NULL DEFAULT 0,
	err_msg  TEXT NOT NULL DEFAULT '',
	duration INTEGER NOT NULL,
	call_id  TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (job, host)
);`

func openJobStore(path string) (*jobStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	// Create it 0600 ourselves: the requests it keeps may hold secrets,
	// and SQLite gives its -wal and -shm files the database's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serializes writes anyway
	if _, err := db.Exec(jobSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("overlord: job store %s: %w", path, err)
	}
	return &jobStore{db: db}, nil
}

func (st *jobStore) close() error { return st.db.Close() }

// storedJob is a job as the store holds it, with what RunJob needs.
type storedJob struct {
	job     Job
	minions []Minion
	req     *request
	batch   Batch
	stale   bool // not finished, and its heartbeat is too old
}

func (st *jobStore) insert(ctx context.Context, job *Job, targets map[string]Minion, req *request, b Batch) error {
	ms := make([]Minion, 0, len(targets))
	for _, h := range job.Hosts {
		ms = append(ms, targets[h])
	}
	minions, _ := json.Marshal(ms)
	args, _ := json.Marshal(req.summary)
	batch, _ := json.Marshal(b)
	now := time.Now().UnixNano()
	_, err := st.db.ExecContext(ctx, `INSERT INTO jobs (id, created, method, spec, minions, body, args, digest, batch, state, heartbeat)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		job.ID, job.Created.UnixNano(), job.Method, job.Spec, string(minions), req.body, string(args), req.digest,
		string(batch), string(JobQueued), now)
	if err != nil {
		return fmt.Errorf("overlord: job store: %w", err)
	}
	return nil
}

// claim moves a queued job to running, so that only one runner runs it.
func (st *jobStore) claim(ctx context.Context, id string) error {
	res, err := st.db.ExecContext(ctx, `UPDATE jobs SET state = ?, heartbeat = ? WHERE id = ? AND state = ?`,
		string(JobRunning), time.Now().UnixNano(), id, string(JobQueued))
	if err != nil {
		return fmt.Errorf("overlord: job store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := st.load(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s", ErrJobNotQueued, id)
	}
	return nil
}

func (st *jobStore) finish(ctx context.Context, id string, state JobState, msg string) {
	_, _ = st.db.ExecContext(ctx, `UPDATE jobs SET state = ?, finished = ?, error = ? WHERE id = ?`,
		string(state), time.Now().UnixNano(), msg, id)
}

const jobColumns = `id, created, method, spec, minions, body, args, digest, batch, state, heartbeat, finished, error`

func (st *jobStore) load(ctx context.Context, id string) (*storedJob, error) {
	row := st.db.QueryRowContext(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = ?`, id)
	sj, err := st.scanJob(ctx, row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w %q", ErrNoJob, id)
	}
	if err != nil {
		return nil, err
	}
	st.markLost(ctx, sj)
	return sj, nil
}

type scanner interface{ Scan(dest ...any) error }

func (st *jobStore) scanJob(ctx context.Context, row scanner) (*storedJob, error) {
	var (
		sj                                  storedJob
		created, heartbeat, finished        int64
		minions, args, batch, state, digest string
		body                                []byte
	)
	j := &sj.job
	if err := row.Scan(&j.ID, &created, &j.Method, &j.Spec, &minions, &body, &args, &digest, &batch, &state,
		&heartbeat, &finished, &j.Error); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(minions), &sj.minions); err != nil {
		return nil, fmt.Errorf("overlord: job %s: %w", j.ID, err)
	}
	_ = json.Unmarshal([]byte(batch), &sj.batch)
	sj.req = &request{wire: j.Method, body: body, digest: digest}
	_ = json.Unmarshal([]byte(args), &sj.req.summary)
	for _, m := range sj.minions {
		j.Hosts = append(j.Hosts, strings.ToLower(m.Name))
	}
	j.Created = time.Unix(0, created).UTC()
	j.State = JobState(state)
	if finished > 0 {
		j.Finished = time.Unix(0, finished).UTC()
	}
	sj.stale = !j.State.Finished() && time.Since(time.Unix(0, heartbeat)) > staleAfter
	return &sj, nil
}

// markLost records that a stale job's runner is gone, once, for every
// reader. It must not run while rows are open: the store has one
// connection.
func (st *jobStore) markLost(ctx context.Context, sj *storedJob) {
	if !sj.stale {
		return
	}
	j := &sj.job
	was := j.State
	j.State, j.Finished, sj.stale = JobInterrupted, time.Now().UTC(), false
	_, _ = st.db.ExecContext(ctx, `UPDATE jobs SET state = ?, finished = ? WHERE id = ? AND state = ?`,
		string(JobInterrupted), j.Finished.UnixNano(), j.ID, string(was))
}

func (st *jobStore) list(ctx context.Context) ([]*Job, error) {
	rows, err := st.db.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs ORDER BY created DESC, id DESC`)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	var all []*storedJob
	for rows.Next() {
		sj, err := st.scanJob(ctx, rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, sj)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]*Job, len(all))
	for i, sj := range all {
		st.markLost(ctx, sj)
		j := &sj.job
		out[i] = j
		err := st.db.QueryRowContext(ctx, `SELECT count(*), count(NULLIF(err_kind, '')) FROM results WHERE job = ?`, j.ID).
			Scan(&j.Answered, &j.Failed)
		if err != nil {
			return nil, err
		}
		if j.State == JobDone && j.Answered < len(j.Hosts) {
			j.Failed += len(j.Hosts) - j.Answered // as Job counts them: no result is a failure
		}
	}
	return out, nil
}

func (st *jobStore) delete(ctx context.Context, id string) error {
	sj, err := st.load(ctx, id)
	if err != nil {
		return err
	}
	if !sj.job.State.Finished() {
		return fmt.Errorf("overlord: job %s is %s; only finished jobs can be deleted", id, sj.job.State)
	}
	_, err = st.db.ExecContext(ctx, `DELETE FROM jobs WHERE id = ?`, id)
	return err
}

func (st *jobStore) results(ctx context.Context, id string) (Results, error) {
	var method string
	_ = st.db.QueryRowContext(ctx, `SELECT method FROM jobs WHERE id = ?`, id).Scan(&method)
	rows, err := st.db.QueryContext(ctx, `SELECT host, value, err_kind, err_code, err_msg, duration, call_id
		FROM results WHERE job = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("overlord: job store: %w", err)
	}
	defer rows.Close()
	out := Results{}
	for rows.Next() {
		var (
			r           Result
			value       []byte
			kind, msg   string
			code, durNs int64
		)
		if err := rows.Scan(&r.Host, &value, &kind, &code, &msg, &durNs, &r.CallID); err != nil {
			return nil, err
		}
		r.Duration = time.Duration(durNs)
		if kind != "" {
			r.Err = &HostError{Host: r.Host, Op: method, Err: restoreError(kind, gofunc.Code(code), msg)}
		} else if r.Value, err = ixmlrpc.DecodeResponse(bytes.NewReader(value), ixmlrpc.Limits{MaxBytes: 1 << 40}); err != nil {
			r.Err = &HostError{Host: r.Host, Op: method, Err: fmt.Errorf("stored result unreadable: %w", err)}
		}
		out[r.Host] = r
	}
	return out, rows.Err()
}

// resultWriter records a running job's results in batches, and keeps
// its heartbeat fresh, from one goroutine.
type resultWriter struct {
	st      *jobStore
	id      string
	log     hclog.Logger
	mu      sync.Mutex
	pending []Result
	stop    chan struct{}
	done    chan struct{}
}

func (st *jobStore) newWriter(id string, log hclog.Logger) *resultWriter {
	w := &resultWriter{st: st, id: id, log: log, stop: make(chan struct{}), done: make(chan struct{})}
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
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-w.stop:
			w.finalFlush()
			return
		case <-t.C:
			beat := time.Since(last) >= heartbeatEvery
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

// Timing of the last flush's retries when the store fails; variables so
// tests can shorten them.
var (
	finalFlushTries = 10
	finalFlushPause = 200 * time.Millisecond
)

// finalFlush writes what is pending, retrying a failing store a while
// before it gives up: results not stored then are lost, and Job counts
// those hosts as failed (ErrNoResult).
func (w *resultWriter) finalFlush() {
	pause := finalFlushPause
	for try := 1; ; try++ {
		err := w.flush(true)
		if err == nil {
			return
		}
		if try == finalFlushTries {
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
	if err := w.write(batch); err != nil {
		w.mu.Lock()
		w.pending = append(batch, w.pending...)
		w.mu.Unlock()
		w.log.Warn("job store write failed; results kept for a retry", "job", w.id, "results", len(batch), "error", err)
		return err
	}
	return nil
}

func (w *resultWriter) write(batch []Result) error {
	ctx := context.Background()
	tx, err := w.st.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, r := range batch {
		var value []byte
		var kind, msg string
		var code int
		if r.Err != nil {
			kind, code, msg = storedErrorOf(r.Err)
		} else {
			var b bytes.Buffer
			if err := ixmlrpc.EncodeResponse(&b, r.Value); err != nil {
				kind, code, msg = "error", 0, "result not storable: "+err.Error()
			}
			value = b.Bytes()
		}
		_, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO results (job, host, value, err_kind, err_code, err_msg, duration, call_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, w.id, r.Host, value, kind, code, msg, int64(r.Duration), r.CallID)
		if err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE jobs SET heartbeat = ? WHERE id = ?`, time.Now().UnixNano(), w.id); err != nil {
		return err
	}
	return tx.Commit()
}

// storedErrorOf reduces a host's error to what the store keeps: its
// kind (ErrorKind), fault code and text (without the host prefix).
func storedErrorOf(err error) (kind string, code int, msg string) {
	kind = ErrorKind(err)
	var he *HostError
	if errors.As(err, &he) {
		err = he.Err
	}
	var f *gofunc.Fault
	if errors.As(err, &f) {
		code = int(f.Code)
	}
	return kind, code, err.Error()
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
