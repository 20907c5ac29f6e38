package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/fleettest"
)

// eventFleet is a fleet whose minions keep an event journal each.
func eventFleet(t *testing.T, n int) (*fleettest.Fleet, string, map[string]*events.Journal) {
	t.Helper()
	f, dir := fleetDirWith(t, fleettest.Config{Minions: n, HostTimeout: 5 * time.Second, Subnet: "127.0.8", Events: true})
	js := map[string]*events.Journal{}
	for _, m := range f.Minions() {
		js[m.Name] = m.Journal()
	}
	return f, dir, js
}

func emitState(t *testing.T, j *events.Journal, source, state string) {
	t.Helper()
	if _, err := j.Emit(source, &events.NagiosState{Plugin: "check_x", State: state, Code: map[string]int{"OK": 0, "CRITICAL": 2}[state],
		Output: source + " " + state}); err != nil {
		t.Fatal(err)
	}
}

// lastCursor is the cursor func events printed last on stderr.
func lastCursor(t *testing.T, stderr string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	c, ok := strings.CutPrefix(lines[len(lines)-1], "cursor: ")
	if !ok {
		t.Fatalf("last stderr line is not the cursor:\n%s", stderr)
	}
	return c
}

func TestEventsCommand(t *testing.T) {
	f, dir, js := eventFleet(t, 2)
	emitState(t, js["m1.test"], "disk", "OK")
	emitState(t, js["m2.test"], "load", "CRITICAL")
	emitState(t, js["m1.test"], "disk", "CRITICAL")

	o := runFunc(t, "", "--dir", dir, "*", "events").want(t, exitOK)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	// Each journal starts with the minion's lifecycle.started.
	if len(lines) != 5 || !strings.Contains(lines[0], "info lifecycle.started minion") || !strings.HasPrefix(lines[2], "m1.test #2 ") ||
		!strings.HasPrefix(lines[3], "m2.test #2 ") || !strings.Contains(lines[4], "critical nagios.state disk") {
		t.Fatalf("events:\n%s", o.stdout)
	}
	cursor := lastCursor(t, o.stderr)
	if !strings.Contains(o.stderr, "5 events; 2 ok") {
		t.Errorf("summary:\n%s", o.stderr)
	}

	// Resume: only what came since, then nothing.
	emitState(t, js["m2.test"], "load", "OK")
	o = runFunc(t, "", "--dir", dir, "*", "events", "--since", cursor).want(t, exitOK)
	if strings.TrimSpace(o.stdout) == "" || strings.Count(o.stdout, "\n") != 1 || !strings.HasPrefix(o.stdout, "m2.test #3 ") {
		t.Errorf("resumed:\n%s", o.stdout)
	}
	cursor = lastCursor(t, o.stderr)
	o = runFunc(t, "", "--dir", dir, "*", "events", "--since", cursor).want(t, exitOK)
	if o.stdout != "" || lastCursor(t, o.stderr) != cursor {
		t.Errorf("at the head: %q, cursor %q", o.stdout, lastCursor(t, o.stderr))
	}

	// --type, --since DURATION, --json.
	o = runFunc(t, "", "--dir", dir, "*", "events", "--since", "1h", "--type", "nagios.*").want(t, exitOK)
	if strings.Count(o.stdout, "\n") != 4 {
		t.Errorf("--since 1h --type:\n%s", o.stdout)
	}
	o = runFunc(t, "", "--dir", dir, "*", "events", "--type", "lifecycle.*").want(t, exitOK)
	if strings.Count(o.stdout, "lifecycle.started") != 2 || strings.Contains(o.stdout, "nagios") {
		t.Errorf("--type lifecycle.*:\n%s", o.stdout)
	}
	o = runFunc(t, "", "--dir", dir, "--json", "m1*", "events").want(t, exitOK)
	jl := strings.Split(strings.TrimSpace(o.stdout), "\n")
	var ev events.Event
	var end map[string]string
	if len(jl) != 4 || json.Unmarshal([]byte(jl[1]), &ev) != nil || ev.Minion != "m1.test" || ev.Seq != 2 ||
		json.Unmarshal([]byte(jl[3]), &end) != nil || !strings.HasPrefix(end["cursor"], "m1.test=3.") {
		t.Errorf("--json:\n%s", o.stdout)
	}

	// Bad --since: usage.
	runFunc(t, "", "--dir", dir, "*", "events", "--since", "yesterday").want(t, exitUsage)

	// A host down: reported, exit 1, the others' events and the cursor still there.
	f.Minion("m2.test").Down()
	o = runFunc(t, "", "--dir", dir, "*", "events", "--since", cursor).want(t, exitFailed)
	if !strings.Contains(o.stderr, "m2.test: unreachable") || !strings.Contains(lastCursor(t, o.stderr), "m2.test=3.") {
		t.Errorf("with m2 down:\n%s", o.stderr)
	}
}

// --cursor-file resumes where the last run stopped; --nagios-cmd writes
// the watcher events as commands for the certificate's host.
func TestEventsBridge(t *testing.T) {
	_, dir, js := eventFleet(t, 1)
	emitState(t, js["m1.test"], "disk", "CRITICAL")
	js["m1.test"].Lifecycle(events.Lifecycle{Phase: events.PhaseStarted, Version: "1"})
	state := filepath.Join(t.TempDir(), "cursor")
	cmdFile := filepath.Join(t.TempDir(), "nagios.cmd")
	if err := os.WriteFile(cmdFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	runFunc(t, "", "--dir", dir, "*", "events", "--cursor-file", state, "--nagios-cmd", cmdFile).want(t, exitOK)
	emitState(t, js["m1.test"], "disk", "OK")
	runFunc(t, "", "--dir", dir, "*", "events", "--cursor-file", state, "--nagios-cmd", cmdFile).want(t, exitOK)
	b, err := os.ReadFile(cmdFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "] PROCESS_SERVICE_CHECK_RESULT;m1.test;disk;2;") ||
		!strings.Contains(lines[1], ";m1.test;disk;0;") {
		t.Errorf("command file:\n%s", b)
	}
	saved, err := os.ReadFile(state)
	if err != nil || !strings.HasPrefix(string(saved), "m1.test=4.") {
		t.Errorf("cursor file %q, %v", saved, err)
	}
}

func TestStatsTable(t *testing.T) {
	f, dir := fleetDir(t, 2)
	f.Minion("m2.test").Down()
	o := runFunc(t, "", "--dir", dir, "*", "stats").want(t, exitFailed)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "LOAD1") || !strings.Contains(lines[0], "UPTIME") ||
		!strings.HasPrefix(strings.TrimSpace(lines[1]), "m1.test") || !strings.HasPrefix(lines[2], "m2.test: unreachable") {
		t.Fatalf("table:\n%s", o.stdout)
	}
	if f := strings.Fields(lines[1]); len(f) != 9 || f[7] == "-" {
		t.Errorf("row %q", lines[1])
	}
	if !strings.Contains(o.stderr, "1 ok, 1 unreachable: m2.test") {
		t.Errorf("summary %q", o.stderr)
	}
	o = runFunc(t, "", "--dir", dir, "--json", "m1*", "stats").want(t, exitOK)
	var res map[string]struct {
		OK    bool `json:"ok"`
		Value struct {
			Load map[string]float64 `json:"load"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &res); err != nil || !res["m1.test"].OK || res["m1.test"].Value.Load["cpus"] < 1 {
		t.Errorf("--json: %v\n%s", err, o.stdout)
	}
}
