package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
)

// sseEvent is one server-sent event as a browser would read it.
type sseEvent struct {
	id, name, data string
}

// readEvents reads events from a stream until n were read (n < 0: until
// it ends) or stop says so.
func readEvents(t *testing.T, body io.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.name == "" && len(data) == 0 {
				continue // a comment's end
			}
			cur.data = strings.Join(data, "\n")
			out = append(out, cur)
			if stop != nil && stop(cur) {
				return out
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id: "):
			cur.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return out
}

// openStream opens a job's stream as id, with the given Last-Event-ID
// (empty: none) and query.
func (e *env) openStream(ctx context.Context, id *identity.Identity, job, query, lastID string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/jobs/"+job+"/stream"+query, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	return e.client(id).Do(req)
}

// slowFleet holds host i's test.ping i*step.
func slowFleet(t *testing.T, e *env, step time.Duration) {
	for i, m := range e.fleet.Minions() {
		m.SetFault(fleettest.Fault{Delay: time.Duration(i+1) * step, Methods: []string{"test.ping"}})
	}
}

// A stream read in three parts (the page, a stream broken off after two
// results, a reconnection with Last-Event-ID, another with ?after=)
// gives every host's result exactly once, in store order, ending with
// "done"; the page's cursor is where the stream starts.
func TestStreamResumes(t *testing.T) {
	e := newEnv(t, envOptions{minions: 8, subnet: "127.0.14"})
	slowFleet(t, e, 150*time.Millisecond)
	job, err := e.ov.Targets("*").CallAsync(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	viewer := e.users[gofunc.RoleViewer]

	var page jobData
	if st := e.getJSON(viewer, "/jobs/"+job.ID, &page); st != 200 {
		t.Fatalf("job page: %d", st)
	}
	seen := map[string]int64{}
	for _, r := range page.Rows {
		if r.State != "pending" {
			seen[r.Host] = r.Seq
		}
	}
	if page.Stream == "" && !page.Summary.Done {
		t.Fatal("a running job's page has no stream")
	}
	last := page.Cursor
	take := func(resp *http.Response, n int) []sseEvent {
		defer resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
		}
		got := 0
		return readEvents(t, resp.Body, func(ev sseEvent) bool {
			if strings.HasPrefix(ev.name, "host-") {
				got++
			}
			return ev.name == "done" || n > 0 && got == n
		})
	}
	record := func(evs []sseEvent) (done bool) {
		for _, ev := range evs {
			if ev.name == "done" {
				done = true
			}
			if !strings.HasPrefix(ev.name, "host-") {
				continue
			}
			var row hostRow
			if err := json.Unmarshal([]byte(ev.data), &row); err != nil {
				t.Fatalf("event data %q: %v", ev.data, err)
			}
			id, _ := strconv.ParseInt(ev.id, 10, 64)
			if id != row.Seq || id <= last {
				t.Errorf("event id %q for seq %d after cursor %d", ev.id, row.Seq, last)
			}
			if _, dup := seen[row.Host]; dup {
				t.Errorf("%s sent twice", row.Host)
			}
			if "host-"+row.Host != ev.name || row.State != "ok" {
				t.Errorf("event %s carries %+v", ev.name, row)
			}
			seen[row.Host], last = row.Seq, id
		}
		return done
	}
	// Part 1: from the page's cursor, broken off after two results.
	resp, err := e.openStream(t.Context(), viewer, job.ID, fmt.Sprintf("?format=json&after=%d", page.Cursor), "")
	if err != nil {
		t.Fatal(err)
	}
	done := record(take(resp, 2))
	// Part 2: a browser's own reconnection, with Last-Event-ID.
	if !done {
		resp, err = e.openStream(t.Context(), viewer, job.ID, "?format=json&after=0", strconv.FormatInt(last, 10))
		if err != nil {
			t.Fatal(err)
		}
		done = record(take(resp, 2))
	}
	// Part 3: htmx's reconnection, a new URL with ?after=.
	if !done {
		resp, err = e.openStream(t.Context(), viewer, job.ID, fmt.Sprintf("?format=json&after=%d", last), "")
		if err != nil {
			t.Fatal(err)
		}
		done = record(take(resp, -1))
	}
	if !done {
		t.Error("the stream ended without done")
	}
	if len(seen) != 8 {
		t.Errorf("saw %d hosts, want 8: %v", len(seen), seen)
	}
	// After the end, resuming gives nothing more than done.
	resp, err = e.openStream(t.Context(), viewer, job.ID, fmt.Sprintf("?format=json&after=%d", last), "")
	if err != nil {
		t.Fatal(err)
	}
	if evs := take(resp, -1); len(evs) != 1 || evs[0].name != "done" {
		t.Errorf("resuming a finished job after its last result: %+v", evs)
	}
	// A bad cursor is refused.
	resp, err = e.openStream(t.Context(), viewer, job.ID, "?after=x", "")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("?after=x: %s", resp.Status)
	}
}

// A viewer whose dashboard ACL hides a method receives nothing of its
// jobs: not in the list, not the page, not the stream (HTML or JSON),
// not its audit records or export. Operators see both.
func TestViewerSeesNothingTheACLHides(t *testing.T) {
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleViewer, Methods: []string{"test.ping"}},
		minion.Rule{Identity: "*", Role: gofunc.RoleOperator, Methods: []string{"*"}},
		minion.Rule{Identity: "*", Role: gofunc.RoleAdmin, Methods: []string{"*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{subnet: "127.0.15", acl: acl})
	for _, m := range e.fleet.Minions() {
		m.SetFault(fleettest.Fault{Delay: time.Second, Methods: []string{"test.echo"}})
	}
	hidden, err := e.ov.Targets("*").CallAsync(t.Context(), "test", "echo", "TOPSECRET-VALUE")
	if err != nil {
		t.Fatal(err)
	}
	shown, err := e.ov.Targets("*").CallAsync(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	viewer, operator := e.users[gofunc.RoleViewer], e.users[gofunc.RoleOperator]

	// While the hidden job runs, its stream is refused to the viewer.
	resp, err := e.openStream(t.Context(), viewer, hidden.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "TOPSECRET") || strings.Contains(string(body), "host-") {
		t.Errorf("viewer's stream of the hidden job: %s %q", resp.Status, body)
	}
	for _, id := range []string{hidden.ID, shown.ID} {
		if _, err := e.ov.WaitJob(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"", "?format=json"} {
		resp, err := e.openStream(t.Context(), viewer, hidden.ID, q, "")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "TOPSECRET") {
			t.Errorf("viewer's stream%s of the hidden job: %s %q", q, resp.Status, body)
		}
	}
	for _, path := range []string{"/jobs", "/jobs/" + hidden.ID, "/audit", "/audit/export", "/fleet/m1.test", "/"} {
		for _, accept := range []string{"text/html", "application/json"} {
			resp, body := e.do(e.client(viewer), "GET", path, nil, map[string]string{"Accept": accept})
			if resp == nil {
				t.Fatalf("GET %s: %s", path, body)
			}
			leaked := strings.Contains(body, "TOPSECRET") || strings.Contains(body, "test.echo")
			if path == "/jobs/"+hidden.ID { // the page answers "no such job", naming only what was asked
				leaked = leaked || resp.StatusCode != http.StatusNotFound
			} else {
				leaked = leaked || strings.Contains(body, hidden.ID)
			}
			if leaked {
				t.Errorf("viewer's %s (%s) shows the hidden job:\n%s", path, accept, clipText(body, 2000))
			}
		}
	}
	// The viewer does see what the ACL grants, and the operator both.
	var list jobsData
	e.getJSON(viewer, "/jobs", &list)
	if len(list.Jobs) != 1 || list.Jobs[0].ID != shown.ID {
		t.Errorf("viewer's jobs: %+v, want only %s", list.Jobs, shown.ID)
	}
	e.getJSON(operator, "/jobs", &list)
	if len(list.Jobs) != 2 {
		t.Errorf("operator's jobs: %+v, want both", list.Jobs)
	}
	resp, err = e.openStream(t.Context(), operator, hidden.ID, "?format=json", "")
	if err != nil {
		t.Fatal(err)
	}
	evs := readEvents(t, resp.Body, func(ev sseEvent) bool { return ev.name == "done" })
	resp.Body.Close()
	if n := len(evs); n != 4 || !strings.Contains(evs[0].data, "TOPSECRET") {
		t.Errorf("operator's stream of the finished job: %d events %+v, want 3 hosts and done", n, evs)
	}
}

// A run from the Run page is a job for the person: the job store, the
// dashboard's audit log and the minions' name them, and the minions
// see the dashboard's delegate certificate as the caller.
func TestRunActsForThePerson(t *testing.T) {
	e := newEnv(t, envOptions{minions: 2, subnet: "127.0.16"})
	operator := e.users[gofunc.RoleOperator]
	form := url.Values{"spec": {"*"}, "module": {"test"}, "method": {"add"}, "action": {"dry-run"}, "arg0": {"2"}, "arg1": {"3"}}
	post := func(form url.Values) (*http.Response, string) {
		return e.do(e.client(operator), "POST", "/run", strings.NewReader(form.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
	}
	resp, body := post(form)
	var dry runData
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal([]byte(body), &dry) != nil || dry.Dry == nil || dry.Dry.Token == "" {
		t.Fatalf("dry run: %v\n%s", resp, body)
	}
	if len(dry.Dry.Hosts) != 2 || !strings.Contains(dry.Dry.CLI, "func '*' call test add 2 3") {
		t.Errorf("dry run shows %+v", dry.Dry)
	}
	// Another user cannot run this dry run; a token runs once.
	other := e.client(e.users[gofunc.RoleAdmin])
	resp, _ = e.do(other, "POST", "/run", strings.NewReader(url.Values{"action": {"run"}, "token": {dry.Dry.Token}}.Encode()),
		map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
	if resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("another user's run of the dry run: %v", resp)
	}
	resp, body = post(url.Values{"action": {"run"}, "token": {dry.Dry.Token}})
	var job jobView
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal([]byte(body), &job) != nil || job.For != "operator-user@operator" {
		t.Fatalf("run: %v\n%s", resp, body)
	}
	if resp, _ = post(url.Values{"action": {"run"}, "token": {dry.Dry.Token}}); resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("a second run of one dry run: %v", resp)
	}
	done, err := e.ov.WaitJob(t.Context(), job.ID)
	if err != nil || done.Err() != nil {
		t.Fatalf("job: %v %v", err, done.Err())
	}
	if v := done.Results["m1.test"].Value; v != int64(5) && v != float64(5) {
		t.Errorf("test.add(2, 3) = %v", v)
	}
	found := false
	err = audit.Query([]string{e.fleet.Minions()[0].AuditPath}, audit.Filter{Kind: audit.KindCallStart, Method: "test.add"},
		func(r audit.Record) error {
			found = found || r.Caller == "funcweb" && r.Role == "delegate" && r.Details["on_behalf_of"] == "operator-user@operator"
			return nil
		})
	if err != nil || !found {
		t.Errorf("the minion's log has no test.add by funcweb for operator-user@operator (%v)", err)
	}
}
