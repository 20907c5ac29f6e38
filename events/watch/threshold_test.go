package watch

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofunc/gofunc/events"
)

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func TestLevel(t *testing.T) {
	const ok, warn, crit = events.LevelOK, events.LevelWarning, events.LevelCritical
	for _, tc := range []struct {
		v    float64
		prev string
		want string
	}{
		{50, "", ok}, {80, "", warn}, {90, "", crit}, {95, ok, crit},
		{86, crit, crit}, {85, crit, warn}, {84, crit, warn}, {75.5, warn, warn}, {75, warn, ok}, {74, crit, ok},
		{89.9, warn, warn}, {79.9, ok, ok},
	} {
		if got := Level(tc.v, 80, 90, 5, tc.prev); got != tc.want {
			t.Errorf("Level(%v, prev %q) = %s, want %s", tc.v, tc.prev, got, tc.want)
		}
	}
	if got := Level(50, 0, 90, 5, ""); got != ok {
		t.Errorf("no warning level: %s", got)
	}
	if got := Level(88, 0, 90, 5, crit); got != crit {
		t.Errorf("no warning level, leaving critical: %s", got)
	}
	if got := Level(84, 0, 90, 5, crit); got != ok {
		t.Errorf("no warning level, left critical: %s", got)
	}
}

// TestThresholdDoesNotFlap: a load hovering around the critical
// threshold gives one event, not one per check.
func TestThresholdDoesNotFlap(t *testing.T) {
	proc := t.TempDir()
	os.WriteFile(filepath.Join(proc, "uptime"), []byte("100.0 50.0\n"), 0o644)
	os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu 1 1 1 1\ncpu0 1 1 1 1\ncpu1 1 1 1 1\n"), 0o644)
	setLoad := func(load5 float64) {
		os.WriteFile(filepath.Join(proc, "loadavg"), fmt.Appendf(nil, "0.1 %.2f 0.1 1/100 42\n", load5), 0o644)
	}
	setLoad(1)
	h := newHarness(t)
	h.start(Options{Proc: proc}, Watch{Name: "load", Every: MaxEvery, Check: &Threshold{Metric: "load", Warn: 3, Crit: 4, Hysteresis: 0.5}})
	h.check("load", false)
	var levels []string
	record := func() {
		for _, d := range h.wantTypesAny() {
			ts := d.(*events.ThresholdState)
			levels = append(levels, ts.Previous+">"+ts.Level)
		}
	}
	record()
	for _, v := range []float64{4.1, 3.9, 4.2, 3.8, 4.0, 3.6, 3.4, 3.7, 3.1, 2.6, 2.4} {
		setLoad(v)
		h.check("load", true)
		record()
	}
	want := ">ok ok>critical critical>warning warning>ok"
	if got := fmt.Sprint(levels); got != "["+want+"]" {
		t.Errorf("levels %v, want [%s]", levels, want)
	}
}

// wantTypesAny returns the data of the new events, whatever their types.
func (h *harness) wantTypesAny() []events.Data {
	h.t.Helper()
	var ds []events.Data
	for _, e := range h.next() {
		d, err := e.Decode()
		if err != nil {
			h.t.Fatal(err)
		}
		ds = append(ds, d)
	}
	return ds
}

// TestThresholdOnRealFilesystems reads this host's memory and the
// filesystem of a temporary directory.
func TestThresholdOnRealFilesystems(t *testing.T) {
	h := newHarness(t)
	h.start(Options{},
		Watch{Name: "mem", Every: MaxEvery, Check: &Threshold{Metric: "memory", Warn: 99.99, Crit: 100}},
		Watch{Name: "root", Every: MaxEvery, Check: &Threshold{Metric: "disk", Path: "/", Crit: 0.0001}},
		Watch{Name: "nomount", Every: MaxEvery, Check: &Threshold{Metric: "disk", Path: "/etc/passwd; rm", Crit: 1}})
	for range 3 {
		<-h.checked
	}
	byWatch := map[string]events.Data{}
	evs := h.next()
	for _, e := range evs {
		d, _ := e.Decode()
		byWatch[e.Source] = d
	}
	if m, ok := byWatch["mem"].(*events.ThresholdState); !ok || m.Level != events.LevelOK || m.Value <= 0 || m.Unit != "%" {
		t.Errorf("memory = %#v", byWatch["mem"])
	}
	if r, ok := byWatch["root"].(*events.ThresholdState); !ok || r.Level != events.LevelCritical || r.Path != "/" {
		t.Errorf("root = %#v", byWatch["root"])
	}
	if p, ok := byWatch["nomount"].(*events.WatchProblem); !ok || p.EventType() != events.TypeWatchFailed {
		t.Errorf("a path that is not a mountpoint = %#v", byWatch["nomount"])
	}
}
