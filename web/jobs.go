package web

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/glob"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/overlord"
)

// jobView is a job as the pages list it.
type jobView struct {
	ID       string    `json:"id"`
	Method   string    `json:"method"`
	Spec     string    `json:"spec"`
	State    string    `json:"state"`
	Created  time.Time `json:"created"`
	Finished time.Time `json:"finished,omitzero"`
	Hosts    int       `json:"hosts"`
	Answered int       `json:"answered"`
	Failed   int       `json:"failed"`
	Error    string    `json:"error,omitempty"`
	// For is the person the job was started for ("alice@operator").
	For string `json:"on_behalf_of,omitempty"`
}

func viewJob(j *overlord.Job) jobView {
	return jobView{ID: j.ID, Method: j.Method, Spec: j.Spec, State: string(j.State), Created: j.Created,
		Finished: j.Finished, Hosts: len(j.Hosts), Answered: j.Answered, Failed: j.Failed, Error: j.Error, For: j.OnBehalfOf}
}

// sees reports whether u may see what concerns method: its jobs, their
// streams, its audit records (the dashboard's ACL).
func (d *Dashboard) sees(u User, method string) bool {
	return d.cfg.ACL.Allows(u.peer(), strings.TrimPrefix(method, "async."), false)
}

var errNoJobs = &gofunc.Fault{Code: gofunc.CodeUnavailable, Message: "this dashboard has no job store configured"}

type jobsData struct {
	Query jobsQuery `json:"query"`
	// Jobs are the async jobs of the dashboard's job store (Run,
	// re-run) that the query selects, newest first, at most
	// Query.Limit; More says that older ones were left out.
	Jobs []jobView `json:"jobs"`
	More bool      `json:"more"`
	// Calls are the newest calls in the audit logs: the dashboard's and
	// those of the overlords given with --audit-log (the command line's).
	Calls []callView `json:"calls"`
	// Error says what could not be read.
	Error string `json:"error,omitempty"`
}

// maxCalls bounds the calls the Jobs page lists; the Audit page finds
// older ones.
const maxCalls = 100

// jobsQuery is the Jobs page's selection: a method pattern ("service.*")
// for jobs and calls alike, a job state, and how many jobs to list.
type jobsQuery struct {
	Method string `json:"method,omitempty"`
	State  string `json:"state,omitempty"`
	Limit  int    `json:"limit"`
}

// defaultJobsLimit is how many jobs the Jobs page lists unless asked:
// a job store keeps every job, which a busy site counts in thousands.
const defaultJobsLimit = 200

// jobStates are the states a job may be filtered by.
var jobStates = []overlord.JobState{overlord.JobQueued, overlord.JobRunning, overlord.JobDone, overlord.JobInterrupted, overlord.JobFailed}

func parseJobsQuery(r *http.Request) (jobsQuery, error) {
	v := r.URL.Query()
	q := jobsQuery{Method: strings.TrimSpace(v.Get("method")), State: v.Get("state")}
	var err error
	if q.Limit, err = parseLimit(v, defaultJobsLimit); err != nil {
		return q, err
	}
	if q.State != "" && !slices.Contains(jobStates, overlord.JobState(q.State)) {
		return q, fmt.Errorf("state %q: want one of %v", q.State, jobStates)
	}
	return q, audit.Filter{Method: q.Method}.Validate()
}

// selects reports whether q selects j.
func (q jobsQuery) selects(j *overlord.Job) bool {
	return (q.State == "" || string(j.State) == q.State) && (q.Method == "" || glob.Match(q.Method, j.Method))
}

func (d *Dashboard) jobs(w http.ResponseWriter, r *http.Request, u User) {
	q, err := parseJobsQuery(r)
	data := jobsData{Query: q, Jobs: []jobView{}, Calls: []callView{}}
	if err != nil {
		data.Error = err.Error()
		d.render(w, r, u, http.StatusBadRequest, "jobs", "Jobs", data)
		return
	}
	var problems []string
	if d.cfg.Jobs != nil {
		all, err := d.cfg.Overlord.Jobs(r.Context())
		if err != nil {
			d.failErr(w, r, u, "jobs", err)
			return
		}
		for _, j := range all {
			if !d.sees(u, j.Method) || !q.selects(j) {
				continue
			}
			if len(data.Jobs) == q.Limit {
				data.More = true
				break
			}
			data.Jobs = append(data.Jobs, viewJob(j))
		}
	} else {
		problems = append(problems, errNoJobs.Message)
	}
	calls, more := d.recentCalls(u, "", q.Method, maxCalls)
	data.Calls, data.Error = calls, strings.Join(append(problems, more...), "; ")
	d.render(w, r, u, http.StatusOK, "jobs", "Jobs", data)
}

// hostRow is one host's line on a job page, and one event of its stream.
type hostRow struct {
	Job  string `json:"job"`
	Host string `json:"host"`
	// State is pending, ok or failed.
	State    string        `json:"state"`
	Value    any           `json:"value,omitempty"`
	Short    string        `json:"-"`
	Error    string        `json:"error,omitempty"`
	Kind     string        `json:"kind,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	Seq      int64         `json:"seq,omitempty"`
}

// maxShort bounds the value shown in a row; the JSON twin has it whole.
const maxShort = 300

func makeRow(job, host string, r *overlord.Result) hostRow {
	row := hostRow{Job: job, Host: host, State: "pending"}
	if r == nil {
		return row
	}
	row.Duration, row.Seq = r.Duration, r.Seq
	if r.Err != nil {
		row.State, row.Kind = "failed", overlord.ErrorKind(r.Err)
		var he *overlord.HostError
		err := r.Err
		if errors.As(err, &he) {
			err = he.Err
		}
		row.Error = err.Error()
		return row
	}
	row.State, row.Value = "ok", r.Value
	b, err := json.Marshal(r.Value)
	if err != nil {
		b = []byte(fmt.Sprint(r.Value))
	}
	row.Short = clipText(string(b), maxShort)
	return row
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8Start(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// summary counts a job's hosts.
type summary struct {
	Job     string `json:"job"`
	State   string `json:"state"`
	Total   int    `json:"total"`
	OK      int    `json:"ok"`
	Failed  int    `json:"failed"`
	Pending int    `json:"pending"`
	Done    bool   `json:"done"`
	// Rerun are the failed hosts of a finished job, when the person
	// shown the summary may re-run them: the summary then carries the
	// "Re-run on the failed hosts" form, on the page and in the
	// stream's "done" event alike.
	Rerun []string `json:"rerun_hosts,omitempty"`
}

func summarize(j *overlord.Job) summary {
	s := summary{Job: j.ID, State: string(j.State), Total: len(j.Hosts), Done: j.State.Finished()}
	for _, r := range j.Results {
		if r.Err != nil {
			s.Failed++
		} else {
			s.OK++
		}
	}
	s.Pending = max(0, s.Total-s.OK-s.Failed)
	return s
}

// jobData is the job page.
type jobData struct {
	Job     jobView   `json:"job"`
	Summary summary   `json:"summary"`
	Rows    []hostRow `json:"rows"`
	// Cursor is the largest result number shown: the stream resumes
	// after it, so nothing recorded between this page and the stream is
	// missed, and nothing is sent twice.
	Cursor int64 `json:"cursor"`
	// Stream is the URL of the live updates; empty once the job is over.
	Stream string `json:"stream,omitempty"`
	// Args are the arguments as the audit log keeps them (secrets
	// redacted).
	Args   []any    `json:"args"`
	CLI    string   `json:"cli"`
	Failed []string `json:"failed_hosts"`
	// CanRerun is set when the user may re-run the failed hosts.
	CanRerun bool `json:"can_rerun"`
}

// visibleJob reads a job the user may see; others are "no such job".
func (d *Dashboard) visibleJob(r *http.Request, u User, id string) (*overlord.Job, error) {
	if d.cfg.Jobs == nil {
		return nil, errNoJobs
	}
	j, err := d.cfg.Overlord.Job(r.Context(), id)
	if errors.Is(err, overlord.ErrNoJob) || err == nil && !d.sees(u, j.Method) {
		return nil, &gofunc.Fault{Code: gofunc.CodeNotFound, Message: "no such job: " + id}
	}
	return j, err
}

func (d *Dashboard) job(w http.ResponseWriter, r *http.Request, u User) {
	j, err := d.visibleJob(r, u, r.PathValue("id"))
	if err != nil {
		d.failErr(w, r, u, "job", err)
		return
	}
	rec, err := d.cfg.Jobs.Get(r.Context(), j.ID)
	if err != nil {
		d.failErr(w, r, u, "job", err)
		return
	}
	data := jobData{Job: viewJob(j), Summary: summarize(j), Args: rec.Args, Failed: failedHosts(j)}
	if data.Args == nil {
		data.Args = []any{}
	}
	hosts := slices.SortedFunc(slices.Values(j.Hosts), naturalCompare)
	for _, h := range hosts {
		var res *overlord.Result
		if x, ok := j.Results[h]; ok {
			res = &x
			data.Cursor = max(data.Cursor, x.Seq)
		}
		data.Rows = append(data.Rows, makeRow(j.ID, h, res))
	}
	if !j.State.Finished() {
		data.Stream = fmt.Sprintf("/jobs/%s/stream?after=%d", j.ID, data.Cursor)
	}
	data.CLI = d.cliLine(j.Spec, j.Method, rec.Args)
	data.CanRerun = j.State.Finished() && len(data.Failed) > 0 && may(u.Role, gofunc.RoleOperator)
	if data.CanRerun {
		data.Summary.Rerun = data.Failed
	}
	d.render(w, r, u, http.StatusOK, "job", "Job "+j.ID, data)
}

// failedHosts are the hosts of a finished job that did not succeed.
func failedHosts(j *overlord.Job) []string {
	out := []string{}
	if !j.State.Finished() {
		return out
	}
	for _, h := range j.Hosts {
		if r, ok := j.Results[h]; !ok || r.Err != nil {
			out = append(out, h)
		}
	}
	return out
}

// cliLine is the func command that makes the same call: arguments as
// the audit log keeps them, so a secret reads "[redacted]" and must be
// typed in.
func (d *Dashboard) cliLine(spec, method string, args []any) string {
	module, meth, _ := strings.Cut(method, ".")
	words := []string{d.cfg.Command, shellQuote(spec), "call", module, meth}
	for _, a := range args {
		if s, ok := a.(string); ok {
			words = append(words, shellQuote(s))
			continue
		}
		b, err := json.Marshal(a)
		if err != nil {
			b = []byte(fmt.Sprint(a))
		}
		words = append(words, shellQuote(string(b)))
	}
	return strings.Join(words, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=@,+", c))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// rerun starts the job's call again on its failed hosts, as a new job
// for this user.
func (d *Dashboard) rerun(w http.ResponseWriter, r *http.Request, u User) {
	j, err := d.visibleJob(r, u, r.PathValue("id"))
	if err != nil {
		d.failErr(w, r, u, "job", err)
		return
	}
	failed := failedHosts(j)
	switch {
	case !j.State.Finished():
		d.fail(w, r, u, http.StatusConflict, "the job is still "+string(j.State)+": re-run its failed hosts when it is over")
		return
	case len(failed) == 0:
		d.fail(w, r, u, http.StatusConflict, "no host failed: nothing to re-run")
		return
	}
	rec, err := d.cfg.Jobs.Get(r.Context(), j.ID)
	if err != nil {
		d.failErr(w, r, u, "job", err)
		return
	}
	call, err := ixmlrpc.DecodeCall(bytes.NewReader(rec.Request), ixmlrpc.Limits{MaxBytes: int64(len(rec.Request)) + 1})
	if err != nil {
		d.failErr(w, r, u, "job request", err)
		return
	}
	module, method, _ := strings.Cut(call.Method, ".")
	job, err := d.startJob(r, u, strings.Join(failed, ";"), module, method, call.Params)
	if err != nil {
		d.failErr(w, r, u, "re-run", err)
		return
	}
	d.done(w, r, viewJob(job), "/jobs/"+job.ID)
}

// startJob starts an async call for u.
func (d *Dashboard) startJob(r *http.Request, u User, spec, module, method string, args []any) (*overlord.Job, error) {
	if !d.sees(u, module+"."+method) {
		return nil, &gofunc.Fault{Code: gofunc.CodeDenied, Message: fmt.Sprintf("%s may not call %s.%s here", u.Name, module, method)}
	}
	job, err := d.cfg.Overlord.Targets(spec).OnBehalfOf(u.OnBehalfOf()).CallAsync(r.Context(), module, method, args...)
	if err != nil {
		return nil, err
	}
	d.log.Info("job started", "job", job.ID, "method", job.Method, "spec", spec, "by", u.OnBehalfOf())
	return job, nil
}

// jobStream sends a job's results as server-sent events as they are
// recorded: one event per result, its id the store's sequence number of
// the result, its name "host-NAME", its data the host's row (HTML, or
// JSON with ?format=json). It starts after ?after=N or the Last-Event-ID
// a reconnecting browser sends, so that the page and the stream share
// one cursor and a reconnection neither misses nor repeats a result.
// "summary" events (no id) carry the counts, and "done" the final ones,
// after which the stream ends.
func (d *Dashboard) jobStream(w http.ResponseWriter, r *http.Request, u User) {
	j, err := d.visibleJob(r, u, r.PathValue("id"))
	if err != nil {
		d.failErr(w, r, u, "job", err)
		return
	}
	after, err := streamCursor(r)
	if err != nil {
		d.fail(w, r, u, http.StatusBadRequest, err.Error())
		return
	}
	asJSON := r.URL.Query().Get("format") == "json"
	ctx, cancel := d.untilClose(r.Context())
	defer cancel()
	watch := d.watches.acquire(j.ID)
	defer d.watches.release(watch)
	select {
	case <-watch.ready:
	case <-ctx.Done():
		return
	}
	s := newSSE(w, d.cfg.KeepAlive)
	keep := time.NewTicker(d.cfg.KeepAlive)
	defer keep.Stop()
	for {
		job, changed, err := watch.current()
		if err != nil {
			s.event("", "failed", err.Error())
			return
		}
		sent, ok := d.sendResults(s, job, &after, asJSON)
		if !ok {
			return
		}
		if job.State.Finished() {
			d.sendSummary(s, "done", job, u, asJSON)
			return
		}
		if sent > 0 {
			d.sendSummary(s, "summary", job, u, asJSON)
		}
		if !s.flush() {
			return
		}
		select {
		case <-changed:
		case <-keep.C:
			if !s.comment("keepalive") {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// sendResults sends the job's results numbered after *after, in order,
// and moves *after on. Once the job is over it also sends the rows of
// hosts that have no stored result (they carry no number). ok is false
// when the client is gone.
func (d *Dashboard) sendResults(s *sse, job *overlord.Job, after *int64, asJSON bool) (sent int, ok bool) {
	var hosts []string
	for h, r := range job.Results {
		if r.Seq > *after || r.Seq == 0 && job.State.Finished() {
			hosts = append(hosts, h)
		}
	}
	slices.SortFunc(hosts, func(a, b string) int {
		return cmp.Compare(job.Results[a].Seq, job.Results[b].Seq)
	})
	for _, h := range hosts {
		r := job.Results[h]
		row := makeRow(job.ID, h, &r)
		data, err := d.rowData(row, asJSON)
		if err != nil {
			d.log.Error("stream row failed", "job", job.ID, "host", h, "error", err)
			return sent, false
		}
		id := ""
		if r.Seq > 0 {
			id = fmt.Sprint(r.Seq)
			*after = r.Seq
		}
		if !s.event(id, "host-"+h, data) {
			return sent, false
		}
		sent++
	}
	return sent, true
}

func (d *Dashboard) rowData(row hostRow, asJSON bool) (string, error) {
	if asJSON {
		b, err := json.Marshal(row)
		return string(b), err
	}
	return d.fragment("hostrow", row)
}

func (d *Dashboard) sendSummary(s *sse, event string, job *overlord.Job, u User, asJSON bool) {
	sum := summarize(job)
	if failed := failedHosts(job); len(failed) > 0 && may(u.Role, gofunc.RoleOperator) {
		sum.Rerun = failed
	}
	var data string
	var err error
	if asJSON {
		var b []byte
		b, err = json.Marshal(sum)
		data = string(b)
	} else {
		data, err = d.fragment("summary", sum)
	}
	if err != nil {
		d.log.Error("stream summary failed", "job", job.ID, "error", err)
		return
	}
	s.event("", event, data)
	s.flush()
}
