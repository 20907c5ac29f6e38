package minion_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/test"
)

var jobIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// jobCaller calls one minion as one identity.
type jobCaller struct {
	t *testing.T
	e *env
	c *http.Client
}

func (e *env) jobCaller(t *testing.T, name string) *jobCaller {
	c := e.client(gofunc.RoleOverlord, name)
	t.Cleanup(c.CloseIdleConnections)
	return &jobCaller{t: t, e: e, c: c}
}

func (j *jobCaller) call(method string, args ...any) (any, error) {
	return j.e.callKeep(j.c, method, args...)
}

func (j *jobCaller) async(method string, args ...any) string {
	j.t.Helper()
	id, err := j.call("async."+method, args...)
	if err != nil {
		j.t.Fatalf("async.%s: %v", method, err)
	}
	s, _ := id.(string)
	if !jobIDRE.MatchString(s) {
		j.t.Fatalf("async.%s = %#v, want a 32-digit hex job id", method, id)
	}
	return s
}

func (j *jobCaller) status(id string) (int64, any) {
	j.t.Helper()
	v, err := j.call("jobs.job_status", id)
	if err != nil {
		j.t.Fatalf("jobs.job_status(%s): %v", id, err)
	}
	pair, ok := v.([]any)
	if !ok || len(pair) != 2 {
		j.t.Fatalf("jobs.job_status = %#v, want [code, result]", v)
	}
	return pair[0].(int64), pair[1]
}

// wait polls until the job is no longer running.
func (j *jobCaller) wait(id string) (int64, any) {
	j.t.Helper()
	var code int64
	var result any
	eventually(j.t, "job "+id+" to finish", func() bool {
		code, result = j.status(id)
		return code != minion.JobRunning
	})
	return code, result
}

func TestAsyncJobLifecycle(t *testing.T) {
	e, g := startGate(t, func(s *minion.Server) { s.JobDir = filepath.Join(t.TempDir(), "jobs") })
	admin := e.jobCaller(t, "admin")

	id := admin.async("gate.wait", "first")
	recv(t, "the job to start", g.started)
	if code, result := admin.status(id); code != minion.JobRunning || result != int64(-1) {
		t.Errorf("running job status = [%d, %v], want [0, -1]", code, result)
	}
	list, err := admin.call("jobs.list")
	if err != nil {
		t.Fatal(err)
	}
	jobs := list.([]any)
	if len(jobs) != 1 || jobs[0].(map[string]any)["id"] != id || jobs[0].(map[string]any)["state"] != "running" ||
		jobs[0].(map[string]any)["method"] != "gate.wait" {
		t.Errorf("jobs.list = %#v", list)
	}
	// A running job has no finish time: the member is left out, not
	// sent as 0001-01-01.
	if _, ok := jobs[0].(map[string]any)["finished"]; ok {
		t.Errorf("jobs.list sends a finish time for a running job: %#v", jobs[0])
	}
	close(g.release)
	if code, result := admin.wait(id); code != minion.JobFinished || result != "first" {
		t.Errorf("finished job status = [%d, %v], want [1, first]", code, result)
	}

	failed := admin.async("test.explode")
	code, result := admin.wait(failed)
	f, _ := result.(map[string]any)
	if code != minion.JobFinished || f["faultCode"] != int64(gofunc.CodeModule) || !strings.Contains(f["faultString"].(string), "boom") {
		t.Errorf("failed job status = [%d, %#v], want [1, {faultCode: 1, faultString: ...boom}]", code, result)
	}

	// The start and end records carry the job id and name the method run.
	var kinds []string
	for _, r := range e.records() {
		if r.Details["job"] == id {
			kinds = append(kinds, r.Kind+" "+r.Method+" "+r.Caller)
		}
	}
	if diff := cmp.Diff([]string{"call.start gate.wait admin", "call.end gate.wait admin"}, kinds); diff != "" {
		t.Errorf("records of job %s (-want +got):\n%s", id, diff)
	}

	// Files are private.
	info, err := os.Stat(filepath.Join(e.srv.JobDir, id+".job"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("job file mode %v, want 0600", info.Mode().Perm())
	}
	if dir, err := os.Stat(e.srv.JobDir); err != nil || dir.Mode().Perm() != 0o700 {
		t.Errorf("job dir: %v, %v; want mode 0700", dir.Mode().Perm(), err)
	}
}

func TestJobsBelongToTheirCaller(t *testing.T) {
	e, g := startGate(t, nil)
	alice, bob := e.jobCaller(t, "alice"), e.jobCaller(t, "bob")
	id := alice.async("gate.wait", "alice's")
	recv(t, "the job to start", g.started)

	if code, result := bob.status(id); code != minion.JobLostInSpace || result != int64(0) {
		t.Errorf("bob sees alice's job as [%d, %v], want [2, 0]", code, result)
	}
	_, err := bob.call("jobs.cancel", id)
	wantFault(t, "bob cancels alice's job", err, gofunc.CodeNotFound)
	if list, err := bob.call("jobs.list"); err != nil || len(list.([]any)) != 0 {
		t.Errorf("bob's jobs.list = %v, %v", list, err)
	}
	if code, _ := alice.status(id); code != minion.JobRunning {
		t.Errorf("alice's job status = %d after bob's attempts", code)
	}
	if code, result := alice.status("0123456789abcdef0123456789abcdef"); code != minion.JobLostInSpace || result != int64(0) {
		t.Errorf("unknown job = [%d, %v]", code, result)
	}

	if ok, err := alice.call("jobs.cancel", id); err != nil || ok != true {
		t.Fatalf("alice cancels her job: %v, %v", ok, err)
	}
	recv(t, "the job to see its cancellation", g.canceled)
	code, result := alice.wait(id)
	if f, _ := result.(map[string]any); code != minion.JobFinished || f["faultCode"] != int64(gofunc.CodeCanceled) {
		t.Errorf("cancelled job = [%d, %#v], want a CodeCanceled fault", code, result)
	}
	if ok, err := alice.call("jobs.cancel", id); err != nil || ok != false {
		t.Errorf("cancelling a finished job = %v, %v; want false", ok, err)
	}
}

// The ACL judges async.module.method as module.method; the jobs module
// cannot run async.
func TestAsyncIsAuthorizedLikeSync(t *testing.T) {
	pw := &power{}
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleOverlord, Methods: []string{"test.*", "jobs.*", "power.status"}},
		minion.Rule{Identity: "intern", Methods: []string{"test.sleep"}, Deny: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minion.Server) {
		s.ACL = acl
		mustRegister(t, s, "power", pw)
	})
	intern := e.jobCaller(t, "intern")
	_, err = intern.call("async.test.sleep", 0)
	wantFault(t, "intern async.test.sleep", err, gofunc.CodeDenied, "test.sleep")
	_, err = intern.call("async.power.reboot")
	wantFault(t, "intern async.power.reboot", err, gofunc.CodeDenied)
	_, err = intern.call("async.jobs.list")
	wantFault(t, "async.jobs.list", err, gofunc.CodeNoSuchMethod)
	_, err = intern.call("async.test.nope")
	wantFault(t, "async.test.nope", err, gofunc.CodeNoSuchMethod)
	_, err = intern.call("async.test.sleep", "x", "y")
	wantFault(t, "intern async.test.sleep(x, y)", err, gofunc.CodeDenied)
	_, err = intern.call("async.test.echo")
	wantFault(t, "async.test.echo()", err, gofunc.CodeBadArgs)
	if pw.reboots != 0 {
		t.Fatal("a denied async reboot ran")
	}
	id := intern.async("power.status")
	if code, result := intern.wait(id); code != minion.JobFinished || result != "up" {
		t.Errorf("async.power.status = [%d, %v]", code, result)
	}
	denied := 0
	for _, r := range e.records() {
		if r.Kind == "call.denied" {
			denied++
		}
	}
	if denied != 3 {
		t.Errorf("%d denials audited, want 3", denied)
	}
}

func TestMaxJobs(t *testing.T) {
	e, g := startGate(t, func(s *minion.Server) { s.MaxJobs = 1 })
	admin := e.jobCaller(t, "admin")
	admin.async("gate.wait", "one")
	recv(t, "the job to start", g.started)
	_, err := admin.call("async.gate.wait", "two")
	wantFault(t, "a second job", err, gofunc.CodeBusy, "1 async jobs")
	if st := e.srv.Stats(); st.JobsRunning != 1 {
		t.Errorf("Stats.JobsRunning = %d", st.JobsRunning)
	}
	// Sync calls are not held up by running jobs.
	if got, err := admin.call("test.ping"); err != nil || got != true {
		t.Errorf("test.ping while a job runs = %v, %v", got, err)
	}
}

func TestFinishedJobsExpire(t *testing.T) {
	jobDir := filepath.Join(t.TempDir(), "jobs")
	e := start(t, func(s *minion.Server) {
		s.JobDir = jobDir
		s.JobRetention = 50 * time.Millisecond
	})
	admin := e.jobCaller(t, "admin")
	id := admin.async("test.ping")
	admin.wait(id)
	eventually(t, "the job to expire", func() bool {
		code, _ := admin.status(id)
		return code == minion.JobLostInSpace
	})
	if _, err := os.Stat(filepath.Join(jobDir, id+".job")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("expired job file: %v, want it removed", err)
	}
}

// Jobs survive a restart: finished jobs answer with their result; a job
// that was running when the process died is reported lost, and audited.
func TestJobsSurviveRestart(t *testing.T) {
	jobDir := filepath.Join(t.TempDir(), "jobs")
	g := newGate()
	e := start(t, func(s *minion.Server) {
		s.JobDir = jobDir
		mustRegister(t, s, "gate", g)
	})
	admin := e.jobCaller(t, "admin")
	done := admin.async("test.echo", map[string]any{"big": int64(1) << 40, "list": []any{"a", nil}})
	admin.wait(done)
	running := admin.async("gate.wait", "forever")
	recv(t, "the job to start", g.started)

	// What a crash leaves behind is the directory as it is now, with the
	// running job's file still saying "running".
	crashDir := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, jobDir, crashDir)
	close(g.release)

	trail, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e2 := &env{t: t, authority: e.authority, id: e.id, trail: trail, auditPath: trail.Path()}
	e2.srv = &minion.Server{Identity: e.id, Audit: trail, JobDir: crashDir}
	mustRegister(t, e2.srv, "test", &test.Module{})
	e2.serve()
	admin2 := e2.jobCaller(t, "admin")

	code, result := admin2.status(done)
	if code != minion.JobFinished || !cmp.Equal(result, map[string]any{"big": int64(1) << 40, "list": []any{"a", nil}}) {
		t.Errorf("finished job after restart = [%d, %#v]", code, result)
	}
	code, result = admin2.status(running)
	f, _ := result.(map[string]any)
	if code != minion.JobLostInSpace || f["faultCode"] != int64(gofunc.CodeCanceled) || !strings.Contains(f["faultString"].(string), "outcome is unknown") {
		t.Errorf("cut-off job after restart = [%d, %#v], want lost", code, result)
	}
	if ok, err := admin2.call("jobs.cancel", running); err != nil || ok != false {
		t.Errorf("cancel a lost job = %v, %v", ok, err)
	}
	var lost []audit.Record
	for _, r := range e2.records() {
		if r.Kind == minion.KindJobLost {
			lost = append(lost, r)
		}
	}
	if len(lost) != 1 || lost[0].Details["job"] != running || lost[0].Caller != "admin" || lost[0].Method != "gate.wait" {
		t.Errorf("job.lost records = %+v", lost)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// Damaged job files are set aside, not fatal.
func TestDamagedJobFilesAreSetAside(t *testing.T) {
	jobDir := t.TempDir()
	bad := filepath.Join(jobDir, "0123456789abcdef0123456789abcdef.job")
	if err := os.WriteFile(bad, []byte(`{"v":1,"id":"nope"`), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minion.Server) { s.JobDir = jobDir })
	if got, err := e.jobCaller(t, "admin").call("test.ping"); err != nil || got != true {
		t.Errorf("test.ping = %v, %v", got, err)
	}
	if _, err := os.Stat(bad + ".bad"); err != nil {
		t.Errorf("damaged job file not set aside: %v", err)
	}
}

// Shutdown drains running jobs; Close cancels them, and they finish
// with a CodeCanceled fault that a restarted minion reports.
func TestCloseCancelsJobs(t *testing.T) {
	jobDir := filepath.Join(t.TempDir(), "jobs")
	g := newGate()
	e := start(t, func(s *minion.Server) {
		s.JobDir = jobDir
		mustRegister(t, s, "gate", g)
	})
	admin := e.jobCaller(t, "admin")
	id := admin.async("gate.wait", "x")
	recv(t, "the job to start", g.started)
	admin.c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a job that will not end = %v, want DeadlineExceeded", err)
	}
	recv(t, "the job to be cancelled", g.canceled)
	data, err := os.ReadFile(filepath.Join(jobDir, id+".job"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"state":"finished"`) {
		t.Errorf("job file after Shutdown: %s", data)
	}
}

// An async call is observed when its job starts (answered with its id)
// and again when the job ends, with how the method ended.
func TestAsyncJobsObserved(t *testing.T) {
	var mu sync.Mutex
	var seen []minion.CallObservation
	e := start(t, func(s *minion.Server) {
		s.Observe = func(o minion.CallObservation) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, o)
		}
	})
	admin := e.jobCaller(t, "admin")
	admin.wait(admin.async("test.ping"))
	admin.wait(admin.async("test.explode"))
	jobEnds := func() (ends []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range seen {
			if o.Job {
				ends = append(ends, o.Module+"."+o.Method+"="+string(o.Outcome))
			}
		}
		return ends
	}
	eventually(t, "both jobs' ends observed", func() bool { return len(jobEnds()) == 2 })
	if got := strings.Join(jobEnds(), " "); got != "test.ping=ok test.explode=fault" {
		t.Errorf("job ends observed: %s", got)
	}
	mu.Lock()
	defer mu.Unlock()
	starts := 0
	for _, o := range seen {
		if !o.Job && o.Module == "test" && o.Outcome == minion.OutcomeOK {
			starts++
		}
	}
	if starts != 2 {
		t.Errorf("%d job starts observed, want 2: %+v", starts, seen)
	}
}
