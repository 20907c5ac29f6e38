package minion

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// Func's job status codes: the first element of the [code, result] pair
// that jobs.job_status answers (Func's jobthing.JOB_ID_*).
const (
	// JobRunning: the job has not finished; the result is -1.
	JobRunning = 0
	// JobFinished: the result is the method's, or a struct
	// {faultCode, faultString} when it failed.
	JobFinished = 1
	// JobLostInSpace: the caller has no job by that id, or the job was
	// running when the minion stopped and its outcome is unknown (the
	// result is then a fault struct saying so; otherwise it is 0).
	JobLostInSpace = 2
)

// Job states, as jobs.list shows them and JobInfo.State holds.
const (
	JobStateRunning  = "running"
	JobStateFinished = "finished"
	JobStateLost     = "lost"
)

// KindJobLost is the audit record kind written, at start, for each job
// that was running when the minion last stopped: it closes the call
// whose start record has no end record.
const KindJobLost = "job.lost"

// maxFinishedJobs bounds the finished jobs kept, whatever JobRetention.
const maxFinishedJobs = 4096

// jobFileExt names job files in JobDir: <32 hex digits>.job.
const jobFileExt = ".job"

// errJobsClosed: the server is shutting down and starts no jobs.
var errJobsClosed = errors.New("minion: shutting down; no new jobs")

// JobInfo describes a job in jobs.list.
type JobInfo struct {
	ID       string    `xmlrpc:"id"`
	Method   string    `xmlrpc:"method"`
	State    string    `xmlrpc:"state"`
	Code     int       `xmlrpc:"code"` // the job_status code: JobRunning, JobFinished or JobLostInSpace
	Started  time.Time `xmlrpc:"started"`
	Finished time.Time `xmlrpc:"finished,omitempty"`
}

// jobRecord is a job as stored in its file (JSON, one file per job).
type jobRecord struct {
	Version  int       `json:"v"`
	ID       string    `json:"id"`
	CallID   string    `json:"call_id"`
	Method   string    `json:"method"`
	Owner    string    `json:"owner"`
	Role     string    `json:"role"`
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Response is the methodResponse document the job's caller would
	// have got synchronously (a result or a fault); finished jobs only.
	Response []byte `json:"response,omitempty"`
}

const jobRecordVersion = 1

// job is one entry of the job table. Response is kept in memory only
// when there is no JobDir (or its file could not be written).
type job struct {
	rec    jobRecord
	cancel context.CancelCauseFunc
}

// jobTable holds the server's async jobs.
type jobTable struct {
	s   *Server
	dir string

	mu       sync.Mutex
	jobs     map[string]*job
	nRunning int
	closed   bool
}

// open loads JobDir: finished jobs stay queryable, jobs that were
// running when the process died are marked lost (and audited as such),
// expired ones are deleted.
func (t *jobTable) open(s *Server) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s, t.dir, t.jobs = s, s.JobDir, make(map[string]*job)
	if t.dir == "" {
		return nil
	}
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return fmt.Errorf("minion: job dir: %w", err)
	}
	if st, err := os.Stat(t.dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		s.logger().Warn("job dir is readable by others; job results may be sensitive", "dir", t.dir, "mode", st.Mode().Perm().String())
	}
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return fmt.Errorf("minion: job dir: %w", err)
	}
	for _, e := range entries {
		t.load(e)
	}
	t.purgeLocked(time.Now())
	return nil
}

// load reads one directory entry into the table, best effort: a bad
// file is logged and renamed aside, never fatal.
func (t *jobTable) load(e os.DirEntry) {
	name := e.Name()
	path := filepath.Join(t.dir, name)
	if strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-") {
		os.Remove(path) // an atomic write cut off by a crash
		return
	}
	id, ok := strings.CutSuffix(name, jobFileExt)
	if !ok || !e.Type().IsRegular() {
		return
	}
	rec, err := readJobFile(path, t.maxFileBytes())
	if err == nil && rec.ID != id {
		err = fmt.Errorf("file holds job %q", rec.ID)
	}
	if err != nil {
		t.s.logger().Warn("unreadable job file set aside", "file", path, "error", err)
		os.Rename(path, path+".bad")
		return
	}
	if rec.State == JobStateRunning {
		t.markLost(&rec, path)
	}
	rec.Response = nil // read again when asked for
	t.jobs[id] = &job{rec: rec}
}

// markLost records that a job was cut off by a restart.
func (t *jobTable) markLost(rec *jobRecord, path string) {
	rec.State, rec.Finished = JobStateLost, time.Now().UTC()
	if err := writeJobFile(path, *rec); err != nil {
		t.s.logger().Error("cannot mark job lost", "job", rec.ID, "error", err)
	}
	_, err := t.s.Audit.Append(audit.Record{
		Kind: KindJobLost, CallID: rec.CallID, Caller: rec.Owner, Role: rec.Role, Method: rec.Method,
		Outcome: "lost", Error: "the job was running when the minion stopped; its outcome is unknown",
		Details: map[string]string{"job": rec.ID},
	})
	if err != nil {
		t.s.logger().Error("audit write failed", "kind", KindJobLost, "job", rec.ID, "error", err)
	}
	t.s.logger().Warn("job lost in a restart", "job", rec.ID, "method", rec.Method, "owner", rec.Owner)
}

func (t *jobTable) maxFileBytes() int64 {
	// A response is base64 in JSON (4/3 of its size) plus the metadata.
	return orDefault(t.s.MaxResultBytes, DefaultMaxResultBytes)/3*4 + 64<<10
}

func (t *jobTable) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}

func (t *jobTable) running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nRunning
}

func (t *jobTable) path(id string) string { return filepath.Join(t.dir, id+jobFileExt) }

// create registers a running job for req and, with a JobDir, writes its
// file before anything runs.
func (t *jobTable) create(req *request, cancel context.CancelCauseFunc) (*job, error) {
	j := &job{cancel: cancel, rec: jobRecord{
		Version: jobRecordVersion, ID: newJobID(), CallID: req.id, Method: req.target,
		Owner: req.peer.Name, Role: string(req.peer.Role), State: JobStateRunning, Started: time.Now().UTC(),
	}}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.purgeLocked(time.Now())
	switch {
	case t.closed:
		return nil, errJobsClosed
	case t.nRunning >= orDefault(t.s.MaxJobs, DefaultMaxJobs):
		return nil, gofunc.Errorf(gofunc.CodeBusy, "minion busy: %d async jobs running", t.nRunning)
	}
	if t.dir != "" {
		// Written under the lock so that the count and the files agree;
		// job starts are rare next to calls.
		if err := writeJobFile(t.path(j.rec.ID), j.rec); err != nil {
			return nil, err
		}
	}
	t.jobs[j.rec.ID] = j
	t.nRunning++
	return j, nil
}

// abandon removes a job that never ran (its start record failed).
func (t *jobTable) abandon(j *job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.jobs, j.rec.ID)
	t.nRunning--
	if t.dir != "" {
		os.Remove(t.path(j.rec.ID))
	}
}

// finish stores a job's outcome: in its file when there is a JobDir
// (and in memory if that write fails), else in memory.
func (t *jobTable) finish(j *job, response []byte) {
	t.mu.Lock()
	rec := j.rec
	t.mu.Unlock()
	rec.State, rec.Finished, rec.Response = JobStateFinished, time.Now().UTC(), response
	keep := true
	if t.dir != "" {
		if err := writeJobFile(t.path(rec.ID), rec); err != nil {
			t.s.logger().Error("cannot save job result; kept in memory only", "job", rec.ID, "error", err)
		} else {
			keep = false
		}
	}
	if !keep {
		rec.Response = nil
	}
	t.mu.Lock()
	j.rec, j.cancel = rec, nil
	t.nRunning--
	t.mu.Unlock()
}

// lookup returns a copy of the caller's job id; another caller's job is
// as good as missing.
func (t *jobTable) lookup(p gofunc.Peer, id string) (*job, jobRecord, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.purgeLocked(time.Now())
	j, ok := t.jobs[id]
	if !ok || j.rec.Owner != p.Name || j.rec.Role != string(p.Role) {
		return nil, jobRecord{}, false
	}
	return j, j.rec, true
}

// purgeLocked drops finished and lost jobs older than JobRetention, and
// the oldest beyond maxFinishedJobs.
func (t *jobTable) purgeLocked(now time.Time) {
	retention := orDefault(t.s.JobRetention, DefaultJobRetention)
	var done []*job
	for id, j := range t.jobs {
		if j.rec.State == JobStateRunning {
			continue
		}
		if now.Sub(j.rec.Finished) > retention {
			t.dropLocked(id)
			continue
		}
		done = append(done, j)
	}
	if extra := len(done) - maxFinishedJobs; extra > 0 {
		slices.SortFunc(done, func(a, b *job) int { return a.rec.Finished.Compare(b.rec.Finished) })
		for _, j := range done[:extra] {
			t.dropLocked(j.rec.ID)
		}
	}
}

func (t *jobTable) dropLocked(id string) {
	delete(t.jobs, id)
	if t.dir != "" {
		if err := os.Remove(t.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.s.logger().Warn("cannot remove expired job", "job", id, "error", err)
		}
	}
}

// startJob runs an authorized async call in the background and answers
// with the job's id. The start record is written, with the job id,
// before the method runs; the end record when it ends.
func (s *Server) startJob(rep *reply, req *request, args []reflect.Value) {
	ctx, cancel := context.WithCancelCause(s.baseCtx)
	j, err := s.jobs.create(req, cancel)
	if err != nil {
		cancel(nil)
		s.jobRefused(rep, req, err)
		return
	}
	id := j.rec.ID // j.rec belongs to the job table once the job runs
	req.jobID = id
	if err := s.auditStart(req); err != nil {
		cancel(nil)
		s.jobs.abandon(j)
		s.auditFailed(rep, req, err)
		return
	}
	s.stats.calls.Add(1)
	s.calls.add()
	rep.head = req.head // req belongs to the job once it runs
	s.observe(req, OutcomeOK)
	go s.runJob(ctx, cancel, j, req, args)
	var buf bytes.Buffer
	_ = xmlrpc.EncodeResponse(&buf, id)
	rep.body = buf.Bytes()
}

func (s *Server) jobRefused(rep *reply, req *request, err error) {
	var f *gofunc.Fault
	switch {
	case errors.As(err, &f) && f.Code == gofunc.CodeBusy:
		s.busy(rep, req, f.Message)
	case errors.Is(err, errJobsClosed):
		rep.fault(gofunc.Errorf(gofunc.CodeCanceled, "minion shutting down; job not started"))
	default:
		s.logger().Error("cannot start job", "call_id", req.id, "method", req.target, "error", err)
		s.reject(rep, req, nil, gofunc.Errorf(gofunc.CodeInternal, "cannot start job for %s; see call %s in the minion's log", req.target, req.id))
	}
}

// runJob runs the job's method with its own deadline (MaxCallTimeout),
// stores the outcome, then writes the end record.
func (s *Server) runJob(ctx context.Context, cancel context.CancelCauseFunc, j *job, req *request, args []reflect.Value) {
	defer s.calls.done()
	defer cancel(nil)
	ctx, stop := context.WithTimeout(ctx, orDefault(s.MaxCallTimeout, DefaultMaxCallTimeout))
	defer stop()
	ctx = gofunc.NewContext(ctx, req.peer)
	result, err := s.run(ctx, req, args)
	if cause := context.Cause(ctx); err != nil && cause != nil && !isFault(err) {
		err = fmt.Errorf("%w (%v)", err, cause)
	}
	body, fault := s.encodeOutcome(ctx, req, result, err)
	s.jobs.finish(j, body)
	s.auditEnd(req, fault, body)
	s.observeJob(req, fault)
}

// jobsModule is the minion's "jobs" module: the status, list and cancel
// of the caller's own async jobs.
type jobsModule struct{ s *Server }

// JobStatus answers Func's [code, result] for one of the caller's jobs.
func (m *jobsModule) JobStatus(ctx context.Context, id string) ([]any, error) {
	p, _ := gofunc.PeerFromContext(ctx)
	_, rec, ok := m.s.jobs.lookup(p, id)
	if !ok {
		return []any{JobLostInSpace, 0}, nil
	}
	switch rec.State {
	case JobStateRunning:
		return []any{JobRunning, -1}, nil
	case JobStateLost:
		return []any{JobLostInSpace, faultStruct(gofunc.Errorf(gofunc.CodeCanceled,
			"job %s was running when the minion stopped; its outcome is unknown", id))}, nil
	}
	resp := rec.Response
	if resp == nil {
		full, err := readJobFile(m.s.jobs.path(id), m.s.jobs.maxFileBytes())
		if err != nil {
			m.s.logger().Error("cannot read job result", "job", id, "error", err)
			return []any{JobLostInSpace, 0}, nil
		}
		resp = full.Response
	}
	v, err := xmlrpc.DecodeResponse(bytes.NewReader(resp), resultLimits(len(resp)))
	if err != nil {
		if f := (*xmlrpc.ResponseError)(nil); errors.As(err, &f) {
			m.s.logger().Error("stored job result does not decode", "job", id, "error", err)
			return nil, gofunc.Errorf(gofunc.CodeInternal, "job %s: stored result is damaged", id)
		}
		return []any{JobFinished, faultStruct(gofunc.AsFault(err))}, nil
	}
	return []any{JobFinished, v}, nil
}

// resultLimits decode a stored response: it was encoded by this minion,
// so the encoder's own bounds apply, not a caller's request limits.
func resultLimits(n int) xmlrpc.Limits {
	return xmlrpc.Limits{MaxBytes: int64(n) + 1, MaxDepth: 130, MaxValues: max(n, 1)}
}

func faultStruct(f *gofunc.Fault) map[string]any {
	return map[string]any{"faultCode": int(f.Code), "faultString": f.Message}
}

// List returns the caller's jobs, oldest first.
func (m *jobsModule) List(ctx context.Context) []JobInfo {
	p, _ := gofunc.PeerFromContext(ctx)
	t := &m.s.jobs
	t.mu.Lock()
	t.purgeLocked(time.Now())
	out := []JobInfo{}
	for _, j := range t.jobs {
		if j.rec.Owner == p.Name && j.rec.Role == string(p.Role) {
			out = append(out, j.rec.info())
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b JobInfo) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (r *jobRecord) info() JobInfo {
	code := map[string]int{JobStateRunning: JobRunning, JobStateFinished: JobFinished, JobStateLost: JobLostInSpace}[r.State]
	return JobInfo{ID: r.ID, Method: r.Method, State: r.State, Code: code, Started: r.Started, Finished: r.Finished}
}

// Cancel cancels one of the caller's running jobs: its context is
// cancelled and it finishes with a CodeCanceled fault once its method
// returns. It reports whether the job was running.
func (m *jobsModule) Cancel(ctx context.Context, id string) (bool, error) {
	p, _ := gofunc.PeerFromContext(ctx)
	j, rec, ok := m.s.jobs.lookup(p, id)
	if !ok {
		return false, gofunc.Errorf(gofunc.CodeNotFound, "no job %q", truncate(id, 64))
	}
	if rec.State != JobStateRunning {
		return false, nil
	}
	m.s.jobs.mu.Lock()
	cancel := j.cancel
	m.s.jobs.mu.Unlock()
	if cancel != nil {
		cancel(fmt.Errorf("job cancelled by %s", p.Name))
	}
	return true, nil
}

func (m *jobsModule) Doc() gofunc.ModuleDoc {
	id := []gofunc.ArgDoc{{Name: "job_id", Type: "string", Description: "the id an async.<module>.<method> call returned"}}
	return gofunc.ModuleDoc{
		Description: "Status of async jobs (async.<module>.<method>): each caller sees and cancels its own.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"JobStatus": {Description: "[code, result]: 0 running (-1), 1 finished (the result, or {faultCode, faultString}), 2 lost or unknown.", Args: id},
			"List":      {Description: "The caller's jobs: id, method, state, code, started, finished."},
			"Cancel":    {Description: "Cancel a running job; true if it was running.", Args: id},
		},
	}
}

// newJobID returns an unguessable job id: 128 random bits, hex.
func newJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJobFile(path string, rec jobRecord) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, data, 0o600)
}

func readJobFile(path string, limit int64) (jobRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return jobRecord{}, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return jobRecord{}, err
	}
	if int64(len(data)) > limit {
		return jobRecord{}, fmt.Errorf("job file over %d bytes", limit)
	}
	return parseJobRecord(data)
}

// errBadJobRecord is wrapped by every parseJobRecord error.
var errBadJobRecord = errors.New("bad job record")

// parseJobRecord decodes and checks a job file.
func parseJobRecord(data []byte) (jobRecord, error) {
	var rec jobRecord
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return jobRecord{}, fmt.Errorf("%w: %v", errBadJobRecord, err)
	}
	if dec.More() {
		return jobRecord{}, fmt.Errorf("%w: trailing data", errBadJobRecord)
	}
	switch {
	case rec.Version != jobRecordVersion:
		return jobRecord{}, fmt.Errorf("%w: version %d", errBadJobRecord, rec.Version)
	case !isJobID(rec.ID):
		return jobRecord{}, fmt.Errorf("%w: id %q", errBadJobRecord, truncate(rec.ID, 64))
	case rec.State != JobStateRunning && rec.State != JobStateFinished && rec.State != JobStateLost:
		return jobRecord{}, fmt.Errorf("%w: state %q", errBadJobRecord, truncate(rec.State, 32))
	case rec.Owner == "" || rec.Method == "":
		return jobRecord{}, fmt.Errorf("%w: no owner or method", errBadJobRecord)
	case rec.State == JobStateFinished && rec.Response == nil:
		return jobRecord{}, fmt.Errorf("%w: finished without a response", errBadJobRecord)
	}
	return rec, nil
}

func isJobID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}
