package overlord_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/groupsfile"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/test"
	"github.com/gofunc/gofunc/overlord"
)

// fakeFacts answers facts.list with facts chosen per minion, and counts
// the calls so tests can see the cache work.
type fakeFacts struct {
	facts map[string]any
	calls *atomic.Int64
}

func (f *fakeFacts) List() map[string]any {
	f.calls.Add(1)
	return f.facts
}

// blob answers with n bytes, for result size limits.
type blob struct{}

func (blob) Get(n int) string { return strings.Repeat("x", n) }

// factsFleet starts web1, web2 (debian, 8 cpus), db1 (fedora, 2 cpus)
// and old1 (no facts module) with the test module and fake facts.
func factsFleet(t *testing.T, calls *atomic.Int64) *fleettest.Fleet {
	names := []string{"web1.test", "web2.test", "db1.test", "old1.test"}
	facts := map[string]map[string]any{
		"web1.test": {"os": "debian", "arch": "x86_64", "cpu_count": int64(8), "kernel": "6.1.0-18-amd64"},
		"web2.test": {"os": "Debian", "arch": "aarch64", "cpu_count": int64(8), "kernel": "6.1.0-20-arm64"},
		"db1.test":  {"os": "fedora", "arch": "x86_64", "cpu_count": int64(2), "kernel": "6.8.9"},
	}
	return fleettest.Start(t, fleettest.Config{Minions: len(names), NoBuiltins: true,
		Name: func(i int) string { return names[i-1] },
		Modules: func(name string, srv *minion.Server) error {
			if err := srv.Register("test", &test.Module{}); err != nil {
				return err
			}
			if f, ok := facts[name]; ok {
				return srv.Register("facts", &fakeFacts{facts: f, calls: calls})
			}
			return nil
		}})
}

func TestWhereFacts(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	f := factsFleet(t, &calls)
	c := f.Client()
	cases := []struct {
		sel  *overlord.Selection
		want string
	}{
		{c.Targets("*").Where("os", "debian"), "web1.test,web2.test"},
		{c.Targets("*").Where("arch", "x86_*"), "db1.test,web1.test"},
		{c.Targets("web*").WhereFacts("os=debian, arch=x86_64"), "web1.test"},
		{c.Targets("*").WhereFacts("cpu_count>=4"), "web1.test,web2.test"},
		{c.Targets("*").WhereFacts("cpu_count<4"), "db1.test"},
		{c.Targets("*").WhereFacts("os!=debian"), "db1.test"},
		{c.Targets("*").WhereFacts("kernel=6.1.*").Exclude("web2*"), "web1.test"},
	}
	for i, tc := range cases {
		hosts, err := tc.sel.Hosts(t.Context())
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if got := strings.Join(hosts, ","); got != tc.want {
			t.Errorf("case %d: %s, want %s", i, got, tc.want)
		}
	}
	// One fan-out fetched every host's facts; the rest came from the cache.
	if n := calls.Load(); n != 3 {
		t.Errorf("facts.list called %d times, want 3 (once per minion that has it)", n)
	}
	_, err := c.Targets("*").Where("os", "plan9").Call(t.Context(), "test", "ping")
	if !errors.Is(err, overlord.ErrNoMatch) || !strings.Contains(err.Error(), "os=plan9") ||
		!strings.Contains(err.Error(), "1 hosts did not report facts") {
		t.Errorf("no match: %v, want ErrNoMatch naming the filter and the host without facts", err)
	}
	for _, bad := range []string{"", "os", "OS=debian", "os=", "cpu_count>=many", "a=b,,c=d"} {
		if _, err := c.Targets("*").WhereFacts(bad).Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrBadFilter) {
			t.Errorf("WhereFacts(%q): %v, want ErrBadFilter", bad, err)
		}
	}
	// With the cache off every resolution asks again.
	nocache := f.Client(overlord.WithFactsTTL(-1))
	before := calls.Load()
	for range 2 {
		if _, err := nocache.Targets("web*").Where("os", "debian").Hosts(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if n := calls.Load() - before; n != 4 {
		t.Errorf("without a cache facts.list was called %d times for 2 resolutions of 2 hosts, want 4", n)
	}
}

func TestGroupsFile(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 4, Name: func(i int) string {
		return []string{"web1.test", "web2.test", "db1.test", "cache1.test"}[i-1]
	}})
	path := filepath.Join(t.TempDir(), "groups")
	if err := os.WriteFile(path, []byte("# test\n[web]\nhosts = web*\n\n[front]\nhosts = @web\nhost = cache*\n[empty]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := f.Client(overlord.WithGroupsPath(path), overlord.WithGroups(map[string]string{"db": "db*"}))
	for spec, want := range map[string]string{
		"@web":         "web1.test,web2.test",
		"@front":       "cache1.test,web1.test,web2.test",
		"@front:c*":    "cache1.test",
		"@db;@web:*2*": "db1.test,web2.test",
	} {
		hosts, err := c.Targets(spec).Hosts(t.Context())
		if got := strings.Join(hosts, ","); err != nil || got != want {
			t.Errorf("%s = %s, %v; want %s", spec, got, err, want)
		}
	}
	if _, err := c.Targets("@empty").Hosts(t.Context()); !errors.Is(err, overlord.ErrNoMatch) {
		t.Errorf("@empty: %v, want ErrNoMatch", err)
	}
	if _, err := groupsfile.Edit(path, "web", "db1.test", false); err != nil {
		t.Fatal(err)
	}
	if spec, err := groupsfile.Edit(path, "web", "web*", true); err != nil || spec != "db1.test" {
		t.Fatalf("remove web* from web = %q, %v", spec, err)
	}
	hosts, err := c.Targets("@web").Hosts(t.Context())
	if got := strings.Join(hosts, ","); err != nil || got != "db1.test" {
		t.Errorf("@web after edits = %s, %v; the file must be read again", got, err)
	}
	if _, err := groupsfile.Edit(path, "nosuch", "", true); !errors.Is(err, overlord.ErrUnknownGroup) {
		t.Errorf("removing an unknown group: %v", err)
	}
	if err := os.WriteFile(path, []byte("[web]\nhosts = web 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrBadGroups) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad groups file: %v, want ErrBadGroups naming line 2", err)
	}
}

func TestAuditRecordsStartAndEnd(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	path := filepath.Join(t.TempDir(), "overlord-audit.log")
	trail, err := audit.Open(path, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	f.Minions()[1].SetFault(fleettest.Fault{Err: gofunc.Errorf(gofunc.CodeDenied, "no")})
	c := f.Client(overlord.WithAudit(trail))
	if _, err := c.Targets("*").Call(t.Context(), "test", "add", 1, 2); err == nil {
		t.Fatal("Call succeeded though m2 denies")
	}
	var recs []audit.Record
	if err := audit.Query([]string{path}, audit.Filter{}, func(r audit.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want a start, an end and the minions' heads: %v", len(recs), recs)
	}
	start, end, heads := recs[0], recs[1], recs[2]
	for _, h := range []string{"m1.test", "m2.test"} {
		if _, err := audit.ParseCheckpoint(heads.Details[h]); heads.Kind != audit.KindOverlordHeads || heads.CallID != start.CallID || err != nil {
			t.Errorf("heads record = %+v, want %s's audit head (%v)", heads, h, err)
		}
	}
	if start.Kind != audit.KindOverlordCall || start.Method != "test.add" || strings.Join(start.Targets, ",") != "m1.test,m2.test" ||
		start.Caller != "admin" || start.ArgsDigest == "" {
		t.Errorf("start record = %+v", start)
	}
	if end.Kind != overlord.KindCallEnd || end.CallID != start.CallID || end.Outcome != audit.OutcomeError ||
		end.Details["m1.test"] != "ok" || !strings.Contains(end.Details["m2.test"], "denied") {
		t.Errorf("end record = %+v", end)
	}
	// No audit, no call: with the log closed the call is refused.
	trail.Close()
	if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, gofunc.ErrAuditFailed) {
		t.Errorf("Call with a closed audit log: %v, want ErrAuditFailed", err)
	}
}

func TestStreamYieldsAsResultsArrive(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 3})
	f.Minions()[0].SetFault(fleettest.Fault{Delay: 500 * time.Millisecond})
	var order []string
	for r, err := range f.Overlord().Targets("*").Stream(t.Context(), "test", "ping") {
		if err != nil || r.Value != true {
			t.Errorf("%s: %v, %v", r.Host, r.Value, err)
		}
		order = append(order, r.Host)
	}
	if len(order) != 3 || order[2] != "m1.test" {
		t.Errorf("order %v: the slow m1 must come last", order)
	}
	for r, err := range f.Overlord().Targets("nope*").Stream(t.Context(), "test", "ping") {
		if !errors.Is(err, overlord.ErrNoMatch) || r.Host != "" {
			t.Errorf("bad spec streamed %+v, %v", r, err)
		}
	}
}

// Breaking out of a Stream loop abandons the calls in flight: the
// minion sees its caller go and cancels the method.
func TestStreamBreakCancelsRemoteWork(t *testing.T) {
	t.Parallel()
	// The slow call would take ten minutes: every wait below is far
	// shorter, and generous for a loaded machine.
	f := fleettest.Start(t, fleettest.Config{Minions: 2, HostTimeout: 10 * time.Minute})
	slow := f.Minions()[1]
	slow.SetFault(fleettest.Fault{Delay: 10 * time.Minute})
	start := time.Now()
	for r := range f.Overlord().Targets("*").Stream(t.Context(), "test", "ping") {
		if r.Host != "m1.test" {
			t.Fatalf("first result from %s", r.Host)
		}
		// Break only once the slow minion is running the call: before
		// that there is no remote work to cancel.
		waitFor(t, 2*time.Minute, func() bool {
			_, ok := lastRecord(t, slow.AuditPath, "call.start")
			return ok
		})
		break
	}
	if d := time.Since(start); d > 4*time.Minute {
		t.Fatalf("Stream took %v to stop after break", d)
	}
	// The minion's end record shows the call cancelled, not finished.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		rec, ok := lastRecord(t, slow.AuditPath, "call.end")
		if ok {
			if rec.Code != int(gofunc.CodeCanceled) {
				t.Errorf("slow minion's call ended %+v, want a cancellation", rec)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow minion's call never ended: remote work was not cancelled")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastRecord(t *testing.T, path, kind string) (audit.Record, bool) {
	t.Helper()
	var last audit.Record
	var found bool
	_ = audit.Query([]string{path}, audit.Filter{Kind: kind}, func(r audit.Record) error {
		last, found = r, true
		return nil
	})
	return last, found
}

func TestBatchStopsAfterFailures(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 5})
	f.Minions()[1].SetFault(fleettest.Fault{Err: errors.New("service would not restart")})
	res, err := f.Overlord().Targets("*").Batch(overlord.Batch{Size: 2}).Call(t.Context(), "test", "ping")
	if err == nil {
		t.Fatal("no error")
	}
	for h, want := range map[string]error{"m1.test": nil, "m2.test": gofunc.ErrInternal, "m3.test": overlord.ErrSkipped,
		"m4.test": overlord.ErrSkipped, "m5.test": overlord.ErrSkipped} {
		got := res[h].Err
		switch {
		case want == nil && got != nil:
			t.Errorf("%s: %v, want success", h, got)
		case want == gofunc.ErrInternal && (got == nil || errors.Is(got, overlord.ErrSkipped)):
			t.Errorf("%s: %v, want the module's failure", h, got)
		case want == overlord.ErrSkipped && !errors.Is(got, overlord.ErrSkipped):
			t.Errorf("%s: %v, want ErrSkipped", h, got)
		}
	}
	// Tolerating failures, 40% batches reach every host.
	res, _ = f.Overlord().Targets("*").Batch(overlord.Batch{Percent: 40, MaxFailures: 1}).Call(t.Context(), "test", "ping")
	if n := len(res.Failed()); n != 1 {
		t.Errorf("%d failed, want only m2: %v", n, res.Failed())
	}
	for _, b := range []overlord.Batch{{Size: -1}, {Percent: 101}, {Size: 2, Percent: 50}} {
		if _, err := f.Overlord().Targets("*").Batch(b).Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrBadBatch) {
			t.Errorf("Batch %+v: %v, want ErrBadBatch", b, err)
		}
	}
}

func TestBatchesRunOneAfterAnother(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 4})
	for _, m := range f.Minions() {
		m.SetFault(fleettest.Fault{Delay: 300 * time.Millisecond})
	}
	start := time.Now()
	if _, err := f.Overlord().Targets("*").Batch(overlord.Batch{Size: 2}).Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("two batches of 300ms calls took %v: they overlapped", d)
	}
}

func TestDecodeIntoSubsetStruct(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	res, err := f.Overlord().Targets("*").Call(t.Context(), "test", "echo",
		map[string]any{"name": "web1", "cpu_count": 8, "extra": map[string]any{"x": 1}, "list": []any{map[string]any{"a": 1, "b": 2}}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name     string
		CPUCount int `xmlrpc:"cpu_count"`
		List     []struct{ A int }
	}
	if err := res["m1.test"].Decode(&got); err != nil {
		t.Fatalf("Decode into a subset: %v", err)
	}
	if got.Name != "web1" || got.CPUCount != 8 || len(got.List) != 1 || got.List[0].A != 1 {
		t.Errorf("decoded %+v", got)
	}
	var wrong struct{ Name int }
	if err := res["m1.test"].Decode(&wrong); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Decode of a string into an int: %v, want a bad-args fault", err)
	}
}

func TestHugeResultIsCapped(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2, Modules: func(name string, srv *minion.Server) error {
		return srv.Register("blob", blob{})
	}})
	c := f.Client(overlord.WithMaxResultBytes(64 << 10))
	res, err := c.Targets("*").Call(t.Context(), "blob", "get", 1<<20)
	if err == nil {
		t.Fatal("a 1 MiB answer passed a 64 KiB limit")
	}
	for _, h := range res.Hosts() {
		if !errors.Is(res[h].Err, gofunc.ErrTooLarge) || !strings.Contains(res[h].Err.Error(), "MaxResultBytes") {
			t.Errorf("%s: %v, want a too-large error naming the limit", h, res[h].Err)
		}
	}
	res, err = c.Targets("*").Call(t.Context(), "blob", "get", 1000)
	if err != nil || len(res["m1.test"].Value.(string)) != 1000 {
		t.Errorf("small answer: %v", err)
	}
}

func TestCallAsyncSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 3})
	store := filepath.Join(t.TempDir(), "jobs.db")
	c := f.Client(overlord.WithJobStore(jobStore(t, store)))
	job, err := c.Targets("*").CallAsync(t.Context(), "test", "add", 40, 2)
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.WaitJob(t.Context(), job.ID)
	if err != nil || done.State != overlord.JobDone || done.Answered != 3 || done.Err() != nil {
		t.Fatalf("WaitJob = %+v, %v", done, err)
	}
	c.Close()
	if fi, err := os.Stat(store); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("job store mode: %v, %v; want 0600", fi, err)
	}
	// A new client (a restarted overlord) finds the job and its results.
	c2 := f.Client(overlord.WithJobStore(jobStore(t, store)))
	again, err := c2.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"m1.test", "m2.test", "m3.test"} {
		if r := again.Results[h]; r.Value != int64(42) || r.Err != nil {
			t.Errorf("%s after restart: %+v", h, r)
		}
	}
	jobs, err := c2.Jobs(t.Context())
	if err != nil || len(jobs) != 1 || jobs[0].ID != job.ID || jobs[0].Answered != 3 {
		t.Errorf("Jobs = %+v, %v", jobs, err)
	}
	if _, err := c2.Job(t.Context(), "nosuch"); !errors.Is(err, overlord.ErrNoJob) {
		t.Errorf("unknown job: %v", err)
	}
}

func TestCallAsyncInterruptedByClose(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2, HostTimeout: time.Minute})
	f.Minions()[1].SetFault(fleettest.Fault{Delay: time.Minute})
	store := filepath.Join(t.TempDir(), "jobs.db")
	c := f.Client(overlord.WithJobStore(jobStore(t, store)))
	job, err := c.Targets("*").CallAsync(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the fast host's answer to be recorded, then stop.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		j, err := c.Job(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Answered == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.Close()
	c2 := f.Client(overlord.WithJobStore(jobStore(t, store)))
	j, err := c2.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != overlord.JobInterrupted || j.Results["m1.test"].Value != true ||
		!errors.Is(j.Results["m2.test"].Err, context.Canceled) {
		t.Errorf("job after Close = %s, m1 %+v, m2 %v", j.State, j.Results["m1.test"], j.Results["m2.test"].Err)
	}
}

// A job whose runner died (no heartbeat) reads as interrupted, its
// hosts without results as ErrInterrupted.
func TestJobLostRunnerIsInterrupted(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	c := f.Client(overlord.WithJobStore(jobStore(t, filepath.Join(t.TempDir(), "jobs.db"))))
	overlord.SetJobTiming(c, time.Hour, 200*time.Millisecond)
	job, err := c.Targets("*").Submit(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := overlord.ClaimJob(t.Context(), c, job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunJob(t.Context(), job.ID); !errors.Is(err, overlord.ErrJobNotQueued) {
		t.Errorf("RunJob of a claimed job: %v, want ErrJobNotQueued", err)
	}
	time.Sleep(300 * time.Millisecond)
	j, err := c.WaitJob(t.Context(), job.ID)
	if err != nil || j.State != overlord.JobInterrupted || !errors.Is(j.Results["m1.test"].Err, overlord.ErrInterrupted) {
		t.Errorf("lost job = %+v, %v", j, err)
	}
}

func TestSubmitThenRunJob(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	f.Minions()[0].SetFault(fleettest.Fault{Err: gofunc.Errorf(gofunc.CodeNotFound, "gone")})
	store := jobStore(t, filepath.Join(t.TempDir(), "jobs.db"))
	c := f.Client(overlord.WithJobStore(store))
	job, err := c.Targets("*").Submit(t.Context(), "test", "ping")
	if err != nil || job.State != overlord.JobQueued {
		t.Fatalf("Submit = %+v, %v", job, err)
	}
	// Another client (as `func jobs run` in another process) runs it.
	done, err := f.Client(overlord.WithJobStore(store)).RunJob(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if done.State != overlord.JobDone || !errors.Is(done.Results["m1.test"].Err, gofunc.ErrNotFound) ||
		done.Results["m2.test"].Value != true {
		t.Errorf("job = %+v", done)
	}
	var ce *overlord.CallError
	if !errors.As(done.Err(), &ce) || ce.Failed != 1 {
		t.Errorf("job.Err() = %v", done.Err())
	}
	if err := c.DeleteJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Job(t.Context(), job.ID); !errors.Is(err, overlord.ErrNoJob) {
		t.Errorf("deleted job: %v", err)
	}
}

func TestSources(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	// CertDir: the minions' certificates in a directory.
	dir := t.TempDir()
	for _, m := range f.Minions() {
		if err := m.Identity.Save(filepath.Join(dir, "x")); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "x", "cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, m.Name+".pem"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := overlord.CertDir(dir).Minions(t.Context())
	if err != nil || len(ms) != 2 || ms[0].Name != "m1.test" || !strings.HasPrefix(ms[0].Addr, "127.0.0.2:") {
		t.Fatalf("CertDir = %+v, %v", ms, err)
	}
	// A SourceFunc and a Resolver that knows the real ports.
	addrs := map[string]string{}
	for _, m := range f.Minions() {
		addrs[m.Name] = m.Addr
	}
	var resolved atomic.Int64
	c := f.Client(overlord.WithMinions(overlord.SourceFunc(func(context.Context) ([]overlord.Minion, error) {
		return []overlord.Minion{{Name: "m1.test"}, {Name: "m2.test"}}, nil
	})), overlord.WithResolver(func(_ context.Context, m overlord.Minion) (string, error) {
		resolved.Add(1)
		return addrs[m.Name], nil
	}))
	for range 3 {
		if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
			t.Fatal(err)
		}
	}
	if n := resolved.Load(); n != 2 {
		t.Errorf("resolver called %d times for 3 calls to 2 minions, want 2 (once per connection)", n)
	}
	failing := f.Client(overlord.WithMinions(overlord.SourceFunc(func(context.Context) ([]overlord.Minion, error) {
		return nil, fmt.Errorf("inventory service down")
	})))
	if _, err := failing.Targets("*").Call(t.Context(), "test", "ping"); err == nil || !strings.Contains(err.Error(), "inventory service down") {
		t.Errorf("failing source: %v", err)
	}
}

// A host that accepts connections but never speaks (a hung machine, a
// firewall black hole) times out on its own; the others are complete.
func TestSilentHostTimesOut(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accept, then say nothing
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	list := overlord.Static{{Name: "silent.test", Addr: silent.Addr().String()}}
	for _, m := range f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name, Addr: m.Addr})
	}
	// Timeouts long enough for the healthy hosts on a loaded machine;
	// the silent host never answers, so only they can end its call.
	c := f.Client(overlord.WithMinions(list), overlord.WithHostTimeout(20*time.Second), overlord.WithDialTimeout(10*time.Second))
	start := time.Now()
	res, err := c.Targets("*").Call(t.Context(), "test", "ping")
	if d := time.Since(start); d > 2*time.Minute {
		t.Errorf("Call took %v", d)
	}
	if err == nil || !errors.Is(res["silent.test"].Err, overlord.ErrTimeout) {
		t.Errorf("silent host: %v", res["silent.test"].Err)
	}
	if overlord.ErrorKind(res["silent.test"].Err) != "timeout" {
		t.Errorf("kind %q", overlord.ErrorKind(res["silent.test"].Err))
	}
	for _, m := range f.Minions() {
		if r := res[m.Name]; r.Err != nil || r.Value != true {
			t.Errorf("%s: %+v", m.Name, r)
		}
	}
}

// A minion whose certificate comes from another CA is refused.
func TestOtherCAIsUntrusted(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	other := fleettest.Start(t, fleettest.Config{Minions: 1, Subnet: "127.0.3"})
	stranger := other.Minions()[0]
	c := f.Client(overlord.WithMinions(overlord.Static{{Name: stranger.Name, Addr: stranger.Addr}}))
	res, err := c.Targets("*").Call(t.Context(), "test", "ping")
	if err == nil || !errors.Is(res[stranger.Name].Err, overlord.ErrUntrusted) {
		t.Errorf("minion of another CA: %v", res[stranger.Name].Err)
	}
}
