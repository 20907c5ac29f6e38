package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/events/watch"
)

// readEvents reads the whole journal through events.since as c.
func readEvents(t *testing.T, c *client) []events.Event {
	t.Helper()
	v, err := c.call("events.since", "", 0, events.MaxLimit, 0)
	if err != nil {
		t.Fatalf("events.since: %v", err)
	}
	var lines []string
	raw, _ := v.(map[string]any)["lines"].([]any)
	for _, l := range raw {
		lines = append(lines, l.(string))
	}
	evs, err := events.Receive("m1.test", lines)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// sourced lists the events as "type source".
func sourced(evs []events.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type+" "+e.Source)
	}
	return out
}

func writeWatches(t *testing.T, dir, toml string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "gofunc.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
}

// funcd runs the [[watch]] tables of its gofunc.toml into the journal,
// serves it with events.since to overlord and monitor certificates,
// reloads the watchers on SIGHUP (keeping them when the new tables are
// wrong), writes its lifecycle, and serves /metrics on its TLS port and
// on --metrics-listen.
func TestWatchersEventsAndMetrics(t *testing.T) {
	f := newFixture(t)
	watched := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(watched, []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeWatches(t, f.dir, fmt.Sprintf("log_level = \"debug\"\n[[watch]]\ntype = \"file\"\nname = \"motd\"\npath = %q\nevery = \"1s\"\n", watched))
	plain := freeAddr(t)
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr, "--metrics-listen", plain)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)
	eventually(t, "the file watcher's first state", func() bool {
		return slices.Contains(sourced(readEvents(t, c)), "file.changed motd")
	})
	if got := sourced(readEvents(t, c)); got[0] != "lifecycle.started minion" {
		t.Errorf("journal %v: does not start with lifecycle.started", got)
	}
	if err := os.WriteFile(watched, []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	count := func(what string) int {
		n := 0
		for _, s := range sourced(readEvents(t, c)) {
			if s == what {
				n++
			}
		}
		return n
	}
	// At least one more: a check may also catch the file truncated
	// before it is written.
	eventually(t, "the change to be seen", func() bool { return count("file.changed motd") >= 2 })

	// A monitor reads the journal; a viewer may not.
	mon, err := f.ca.Issue(gofunc.RoleMonitor, "prom", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := readEvents(t, newClient(t, mon, "m1.test", f.addr)); len(got) < 3 {
		t.Errorf("monitor read %d events", len(got))
	}
	viewer, err := f.ca.Issue(gofunc.RoleViewer, "bob", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newClient(t, viewer, "m1.test", f.addr).call("events.since", "", 0); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("viewer: %v, want denied", err)
	}

	// Metrics: on the TLS port to the monitor, on the loopback listener
	// to anyone on the host.
	get := func(c *http.Client, url string) (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tr := &http.Transport{TLSClientConfig: mon.ClientTLSConfig("m1.test")}
	defer tr.CloseIdleConnections()
	if code, page := get(&http.Client{Transport: tr}, "https://"+f.addr+"/metrics"); code != 200 ||
		!strings.Contains(page, "gofunc_event_journal_depth") || !strings.Contains(page, `gofunc_calls_total{method="since",module="events",outcome="ok"}`) {
		t.Errorf("/metrics on the TLS port: %d\n%.2000s", code, page)
	}
	vtr := &http.Transport{TLSClientConfig: viewer.ClientTLSConfig("m1.test")}
	defer vtr.CloseIdleConnections()
	if code, _ := get(&http.Client{Transport: vtr}, "https://"+f.addr+"/metrics"); code != http.StatusForbidden {
		t.Errorf("/metrics for a viewer: %d", code)
	}
	ptr := &http.Transport{}
	defer ptr.CloseIdleConnections()
	if code, page := get(&http.Client{Transport: ptr}, "http://"+plain+"/metrics"); code != 200 || !strings.Contains(page, "gofunc_audit_head_seq") ||
		!strings.Contains(page, "\ngofunc_audit_log_failed 0\n") {
		t.Errorf("/metrics on --metrics-listen: %d\n%.500s", code, page)
	}

	// A misspelt key: the reload is refused, the watcher goes on.
	writeWatches(t, f.dir, fmt.Sprintf("[[watch]]\ntype = \"file\"\nname = \"motd\"\npaht = %q\n", watched))
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the refused reload", func() bool { return strings.Contains(p.stderr.String(), "reload watchers failed") })
	before := count("file.changed motd")
	if err := os.WriteFile(watched, []byte("again\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the old watcher to go on", func() bool { return count("file.changed motd") > before })

	// A new table: its watcher starts.
	writeWatches(t, f.dir, fmt.Sprintf("[[watch]]\ntype = \"file\"\nname = \"motd2\"\npath = %q\nevery = \"1s\"\n", watched))
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the new watcher", func() bool { return count("file.changed motd2") >= 1 })
	if n := count("lifecycle.acl_reloaded minion"); n != 2 {
		t.Errorf("%d acl_reloaded events after two reloads", n)
	}

	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("exit: %v", err)
	}
	j, err := events.Open(filepath.Join(f.dir, "events"), events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	b, err := j.Since(events.Request{Limit: events.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := events.Receive("m1.test", b.Lines)
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != "lifecycle.stopping" {
		t.Errorf("last event %s, want lifecycle.stopping", last.Type)
	}
}

// Bad reporting settings are refused before funcd serves: a metrics
// listener on a routable address (usage), a [[watch]] table with a
// misspelt key (a failure naming the file).
func TestReportingSettingsRefused(t *testing.T) {
	f := newFixture(t)
	code, _, stderr := runInProcess(t, "--dir", f.dir, "--listen", f.addr, "--metrics-listen", "0.0.0.0:9851")
	if code != exitUsage || !strings.Contains(stderr, "loopback") {
		t.Errorf("--metrics-listen 0.0.0.0:9851: exit %d\n%s", code, stderr)
	}
	writeWatches(t, f.dir, "[[watch]]\ntype = \"file\"\nname = \"x\"\npaht = \"/etc/motd\"\n")
	code, _, stderr = runInProcess(t, "--dir", f.dir, "--listen", f.addr)
	if code != exitError || !strings.Contains(stderr, "gofunc.toml") || !strings.Contains(stderr, "paht") {
		t.Errorf("misspelt [[watch]] key: exit %d\n%s", code, stderr)
	}
}

// The README's [[watch]] example is a configuration funcd takes.
func TestREADMEWatchExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), "### Watchers")
	_, rest, _ = strings.Cut(rest, "```toml\n")
	example, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no toml block under ### Watchers")
	}
	ws, err := watch.Parse([]byte(example))
	if err != nil || len(ws) != 4 {
		t.Fatalf("%d watches, %v", len(ws), err)
	}
}
