package watch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness runs watchers into a real journal and reads what they emit.
type harness struct {
	t       *testing.T
	j       *events.Journal
	tr      *events.Tracker
	checked chan string
	r       *Runner
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	j, err := events.Open(t.TempDir(), events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return &harness{t: t, j: j, tr: events.NewTracker(nil), checked: make(chan string, 100)}
}

func (h *harness) start(opts Options, ws ...Watch) {
	h.t.Helper()
	opts.Sink, opts.checked = h.j, h.checked
	r, err := Start(opts, ws)
	if err != nil {
		h.t.Fatal(err)
	}
	h.r = r
	h.t.Cleanup(func() { r.Close() })
}

// check triggers name's check and waits for it (trigger false: only
// waits, for the check every watcher makes when it starts).
func (h *harness) check(name string, trigger bool) {
	h.t.Helper()
	if trigger && !h.r.Trigger(name) {
		h.t.Fatalf("no watcher %q", name)
	}
	select {
	case got := <-h.checked:
		if got != name {
			h.t.Fatalf("checked %q, want %q", got, name)
		}
	case <-time.After(time.Minute):
		h.t.Fatalf("watcher %q did not check", name)
	}
}

// next returns the events emitted since the last call.
func (h *harness) next() []events.Event {
	h.t.Helper()
	b, err := h.j.Since(h.tr.Request("m", 0, 0))
	if err != nil {
		h.t.Fatal(err)
	}
	evs, notices := h.tr.Accept("m", b)
	if len(notices) > 0 {
		h.t.Fatalf("notices %v", notices)
	}
	return evs
}

// wantTypes fails unless the new events have exactly these types.
func (h *harness) wantTypes(types ...string) []events.Data {
	h.t.Helper()
	evs := h.next()
	var got []string
	var ds []events.Data
	for _, e := range evs {
		got = append(got, e.Type)
		d, err := e.Decode()
		if err != nil {
			h.t.Fatal(err)
		}
		ds = append(ds, d)
	}
	if strings.Join(got, ",") != strings.Join(types, ",") {
		h.t.Fatalf("events %v, want %v", evs, types)
	}
	return ds
}

// plugin writes a Nagios plugin that prints the first line of state and
// exits with the code on its second line.
func plugin(t *testing.T) (dir, stateFile string) {
	t.Helper()
	dir = t.TempDir()
	stateFile = filepath.Join(t.TempDir(), "state")
	script := "#!/bin/sh\n{ read out; read code; } < " + stateFile + "\necho \"$out\"\nexit $code\n"
	if err := os.WriteFile(filepath.Join(dir, "check_thing"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, stateFile
}

func setState(t *testing.T, file, out string, code int) {
	t.Helper()
	if err := os.WriteFile(file, []byte(out+"\n"+string(rune('0'+code))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestNagiosTransitionsOnly: OK -> CRITICAL -> CRITICAL -> OK gives an
// event for the first state and one per transition, perfdata parsed.
func TestNagiosTransitionsOnly(t *testing.T) {
	dir, state := plugin(t)
	setState(t, state, "THING OK | load=0.5;1;2;0;", 0)
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "thing", Every: MaxEvery, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	h.check("thing", false)
	first := h.wantTypes(events.TypeNagiosState)[0].(*events.NagiosState)
	if first.State != "OK" || first.Previous != "" || len(first.Perfdata) != 1 || first.Perfdata[0].Value != 0.5 || first.Perfdata[0].Crit != "2" {
		t.Fatalf("first = %+v", first)
	}
	setState(t, state, "THING CRITICAL - it broke | load=5;1;2;0;", 2)
	h.check("thing", true)
	crit := h.wantTypes(events.TypeNagiosState)[0].(*events.NagiosState)
	if crit.State != "CRITICAL" || crit.Previous != "OK" || crit.Code != 2 || crit.Output != "THING CRITICAL - it broke" {
		t.Errorf("crit = %+v", crit)
	}
	setState(t, state, "THING CRITICAL - still | load=6;1;2;0;", 2)
	h.check("thing", true)
	h.wantTypes() // same state: nothing
	setState(t, state, "THING OK", 0)
	h.check("thing", true)
	if ok := h.wantTypes(events.TypeNagiosState)[0].(*events.NagiosState); ok.Previous != "CRITICAL" {
		t.Errorf("recovery = %+v", ok)
	}
	evs, _ := h.j.Since(events.Request{})
	last, _ := events.Receive("m", evs.Lines[len(evs.Lines)-1:])
	if last[0].Severity != events.SeverityInfo || last[0].Source != "thing" {
		t.Errorf("recovery event %+v", last[0])
	}
}

// TestFailureReportedOnce: a plugin that cannot run gives one
// watch.failed, and watch.recovered when it runs again.
func TestFailureReportedOnce(t *testing.T) {
	dir, state := plugin(t)
	setState(t, state, "OK", 0)
	os.Rename(filepath.Join(dir, "check_thing"), filepath.Join(dir, "away"))
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "thing", Every: MaxEvery, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	h.check("thing", false)
	failed := h.wantTypes(events.TypeWatchFailed)[0].(*events.WatchProblem)
	if failed.Watch != "thing" || !strings.Contains(failed.Error, "check_thing") {
		t.Errorf("failed = %+v", failed)
	}
	h.check("thing", true)
	h.wantTypes()
	os.Rename(filepath.Join(dir, "away"), filepath.Join(dir, "check_thing"))
	h.check("thing", true)
	h.wantTypes(events.TypeWatchRecovered, events.TypeNagiosState)
}

func TestAlwaysEmitsEveryCheck(t *testing.T) {
	dir, state := plugin(t)
	setState(t, state, "OK", 0)
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "thing", Every: MaxEvery, Always: true, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	h.check("thing", false)
	h.check("thing", true)
	h.wantTypes(events.TypeNagiosState, events.TypeNagiosState)
}

// TestPauseDuringCalls: a check that falls due while a call runs waits
// for the call to end, and at most one interval.
func TestPauseDuringCalls(t *testing.T) {
	dir, state := plugin(t)
	setState(t, state, "OK", 0)
	var activity events.Activity
	end := activity.Begin()
	h := newHarness(t)
	h.start(Options{Activity: &activity},
		Watch{Name: "paused", Every: MaxEvery, PauseDuringCalls: true, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}},
		Watch{Name: "unpaused", Every: MaxEvery, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	// The unpaused watcher checks at once; the paused one waits.
	h.check("unpaused", false)
	select {
	case name := <-h.checked:
		t.Fatalf("%s checked during a call", name)
	default:
	}
	end()
	h.check("paused", false)

	// Busy for ever: the check still runs after one interval.
	h2 := newHarness(t)
	endForever := activity.Begin()
	defer endForever()
	start := time.Now()
	h2.start(Options{Activity: &activity}, Watch{Name: "bounded", Every: MinEvery, PauseDuringCalls: true,
		Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	h2.check("bounded", false)
	if time.Since(start) < MinEvery {
		t.Errorf("checked after %v while busy, want a wait of one interval", time.Since(start))
	}
}

func TestStartRefusesBadWatches(t *testing.T) {
	h := newHarness(t)
	for _, ws := range [][]Watch{
		{{Name: "bad;name", Check: &Service{Unit: "x"}}},
		{{Name: "x"}},
		{{Name: "x", Every: time.Millisecond, Check: &Service{Unit: "x"}}},
		{{Name: "x", Check: &Service{Unit: "x"}}, {Name: "x", Check: &Service{Unit: "y"}}},
		{{Name: "x", Check: &Service{Unit: "-rf"}}},
		{{Name: "x", Check: &File{Path: "relative"}}},
		{{Name: "x", Check: &Nagios{}}},
		{{Name: "x", Check: &Threshold{Metric: "disk", Crit: 90}}},
		{{Name: "x", Check: &Threshold{Metric: "load", Warn: 5, Crit: 2}}},
		{{Name: "x", Check: &Threshold{Metric: "cpu", Crit: 2}}},
	} {
		if r, err := Start(Options{Sink: h.j}, ws); err == nil {
			r.Close()
			t.Errorf("Start(%+v) accepted", ws)
		}
	}
	if _, err := Start(Options{}, nil); err == nil {
		t.Error("Start without a sink accepted")
	}
}

// TestServiceWithoutSystemd: skipped with a clear event, the others run.
func TestServiceWithoutSystemd(t *testing.T) {
	dir, state := plugin(t)
	setState(t, state, "OK", 0)
	h := newHarness(t)
	h.start(Options{SystemdRunDir: filepath.Join(t.TempDir(), "no-systemd")},
		Watch{Name: "nginx", Check: &Service{Unit: "nginx.service"}},
		Watch{Name: "thing", Every: MaxEvery, Check: &Nagios{Plugin: "check_thing", PluginDir: dir}})
	h.check("thing", false)
	ds := h.wantTypes(events.TypeWatchSkipped, events.TypeNagiosState)
	if p := ds[0].(*events.WatchProblem); p.Watch != "nginx" || !strings.Contains(p.Error, "systemd is not running") {
		t.Errorf("skipped = %+v", p)
	}
	if h.r.Trigger("nginx") {
		t.Error("a skipped watcher runs")
	}
}

// TestServiceStates runs a fake systemctl that reports what a file says.
func TestServiceStates(t *testing.T) {
	bin := t.TempDir()
	state := filepath.Join(t.TempDir(), "state")
	script := "#!/bin/sh\necho Id=nginx.service\necho LoadState=loaded\ncat " + state + "\n"
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755)
	set := func(active, sub string) {
		os.WriteFile(state, []byte("ActiveState="+active+"\nSubState="+sub+"\n"), 0o600)
	}
	set("active", "running")
	h := newHarness(t)
	h.start(Options{Systemctl: filepath.Join(bin, "systemctl"), SystemdRunDir: t.TempDir()},
		Watch{Name: "nginx", Every: MaxEvery, Check: &Service{Unit: "nginx"}})
	h.check("nginx", false)
	h.check("nginx", true)
	first := h.wantTypes(events.TypeServiceState)[0].(*events.ServiceState)
	if first.Unit != "nginx.service" || first.Active != "active" || first.Sub != "running" {
		t.Errorf("first = %+v", first)
	}
	set("failed", "failed")
	h.check("nginx", true)
	failed := h.wantTypes(events.TypeServiceState)[0].(*events.ServiceState)
	if failed.PrevActive != "active" || failed.PrevSub != "running" || failed.EventSeverity() != events.SeverityCritical {
		t.Errorf("failed = %+v", failed)
	}
}

// TestStateKeptAcrossRestarts: with a StateDir a restart is quiet unless
// something changed while the watcher was not running.
func TestStateKeptAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watched")
	os.WriteFile(path, []byte("one"), 0o644)
	stateDir := filepath.Join(t.TempDir(), "state")
	w := Watch{Name: "watched", Every: MaxEvery, Check: &File{Path: path, NoNotify: true}}
	h := newHarness(t)
	h.start(Options{StateDir: stateDir}, w)
	h.check("watched", false)
	h.wantTypes(events.TypeFileChanged)
	h.r.Close()

	h.start(Options{StateDir: stateDir}, w)
	h.check("watched", false)
	h.wantTypes() // nothing changed
	h.r.Close()

	os.WriteFile(path, []byte("two!"), 0o644)
	h.start(Options{StateDir: stateDir}, w)
	h.check("watched", false)
	fc := h.wantTypes(events.TypeFileChanged)[0].(*events.FileChanged)
	if fc.Was == nil || strings.Join(fc.Changed, ",") != "content,size" {
		t.Errorf("change while down = %+v", fc)
	}
	entries, _ := os.ReadDir(stateDir)
	for _, e := range entries {
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s is %v", e.Name(), fi.Mode())
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "f", Check: &File{Path: "/nonexistent/x"}})
	if err := h.r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRealPlugins runs Debian's monitoring-plugins (installed by
// .ci/run): check_disk with perfdata, and check_dummy for a transition.
func TestRealPlugins(t *testing.T) {
	const dir = "/usr/lib/nagios/plugins"
	if _, err := os.Stat(filepath.Join(dir, "check_disk")); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("monitoring-plugins-basic is missing: %v", err)
		}
		t.Skipf("SKIPPED: monitoring-plugins-basic is not installed: %v", err)
	}
	h := newHarness(t)
	h.start(Options{},
		Watch{Name: "root", Every: MaxEvery, Check: &Nagios{Plugin: "check_disk", Args: []string{"-w", "0%", "-c", "0%", "-p", "/"}}},
		Watch{Name: "dummy", Every: MaxEvery, Check: &Nagios{Plugin: "check_dummy", Args: []string{"2", "it broke"}}})
	for range 2 {
		<-h.checked
	}
	byWatch := map[string]*events.NagiosState{}
	for _, d := range h.wantTypesAny() {
		n := d.(*events.NagiosState)
		byWatch[n.Plugin] = n
	}
	if d := byWatch["check_disk"]; d == nil || d.State != "OK" || len(d.Perfdata) == 0 || d.Perfdata[0].UOM == "" {
		t.Errorf("check_disk = %+v", d)
	}
	if d := byWatch["check_dummy"]; d == nil || d.State != "CRITICAL" || d.Code != 2 || d.Output != "CRITICAL: it broke" {
		t.Errorf("check_dummy = %+v", d)
	}
}

// TestHugePluginOutputStillRecorded: a plugin printing far more than an
// event holds still has its state recorded, within the bound.
func TestHugePluginOutputStillRecorded(t *testing.T) {
	dir := t.TempDir()
	script := "#!/bin/sh\nrun() { yes \"$1\" | head -c \"$2\" | tr -d '\\n'; }\n" +
		"printf 'CRITICAL - '; run x 30000; printf ' | '\n" +
		"for i in $(seq 1 40); do printf \"l$i=1%s;2;3 \" \"$(run u 3000)\"; done\necho\n" +
		"run y 30000; echo\nexit 2\n"
	os.WriteFile(filepath.Join(dir, "check_big"), []byte(script), 0o755)
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "big", Every: MaxEvery, Check: &Nagios{Plugin: "check_big", PluginDir: dir}})
	h.check("big", false)
	evs := h.next()
	if len(evs) != 1 || evs[0].Type != events.TypeNagiosState || len(evs[0].Data) > events.MaxDataBytes {
		t.Fatalf("events %v", evs)
	}
	d, _ := evs[0].Decode()
	if n := d.(*events.NagiosState); n.State != "CRITICAL" || !strings.HasPrefix(n.Output, "CRITICAL - xxx") {
		t.Errorf("state %s, output %.40q", n.State, n.Output)
	}
}
