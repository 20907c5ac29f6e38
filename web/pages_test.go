package web

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
)

// denyCalls makes a caller the fleet's ACL refuses call test.ping on
// host n times: n denials in the minion's audit log.
func denyCalls(t *testing.T, e *env, caller, host string, n int) {
	t.Helper()
	c := e.fleet.As(gofunc.RoleViewer, caller)
	t.Cleanup(func() { c.Close() })
	for range n {
		res, _ := c.Targets(host).Call(t.Context(), "test", "ping")
		if err := res[host].Err; !errors.Is(err, gofunc.ErrDenied) {
			t.Fatalf("%s's call on %s: %v, want denied", caller, host, err)
		}
	}
}

// The Attention page lists each thing that needs a person, with a link
// to act: a pending request (with its key fingerprint), a certificate
// about to expire, an unreachable minion, a job running too long, a
// spike of denials (a minion's, and the refusals the dashboard met,
// counted by person); and a broken chain (the browser test).
func TestAttentionListsWhatNeedsAPerson(t *testing.T) {
	e := newEnv(t, envOptions{minions: 3, subnet: "127.0.21", config: func(c *Config) {
		c.LongJob, c.DenialSpike = time.Nanosecond, 3
	}})
	m1 := e.fleet.Minion("m1.test")
	e.dash.cfg.AuditLogs = append(e.dash.cfg.AuditLogs, AuditLog{Name: "m1", Path: m1.AuditPath})
	fp := submitRequest(t, e.fleet.CA, "newbie.test")
	if _, err := e.fleet.CA.Issue(gofunc.RoleOperator, "shortlived", ca.IssueOptions{Validity: 3 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.fleet.Minion("m3.test").Down()
	m1.SetFault(fleettest.Fault{Delay: 5 * time.Minute, Methods: []string{"test.echo"}})
	long, err := e.ov.Targets("m1.test").CallAsync(t.Context(), "test", "echo", "slow")
	if err != nil {
		t.Fatal(err)
	}
	denyCalls(t, e, "mallory", "m1.test", 3)
	// Refusals the dashboard met calling for someone: in its own log.
	for range 3 {
		res, _ := e.ov.Targets("m2.test").OnBehalfOf("eve@operator").Call(t.Context(), "command", "shell", "reboot")
		if err := res["m2.test"].Err; !errors.Is(err, gofunc.ErrDenied) {
			t.Fatalf("eve's command.shell through the dashboard: %v, want denied", err)
		}
	}

	var page attentionData
	if st := e.getJSON(e.users[gofunc.RoleViewer], "/", &page); st != 200 {
		t.Fatalf("attention: %d", st)
	}
	want := []struct{ kind, text, link string }{
		{"pending_request", fp, "/enrollment/requests/newbie.test/sign"},
		{"cert_expiring", "shortlived's operator certificate expires in 2 days", "/enrollment"},
		{"unreachable", "m3.test is unreachable", "/fleet/m3.test"},
		{"long_job", long.ID, "/jobs/" + long.ID},
		{"denials", "in m1: mallory (3)", "/audit?log=m1&outcome=denied&since=1h"},
		{"denials", "in overlord: eve@operator (3)", "/audit?log=overlord&kind=overlord.call.end&outcome=error&since=1h"},
	}
	for _, w := range want {
		i := slices.IndexFunc(page.Items, func(it attentionItem) bool {
			return it.Kind == w.kind && strings.Contains(it.Text, w.text) && it.Link == w.link
		})
		if i < 0 {
			t.Errorf("no %s item with %q linking to %s in %+v", w.kind, w.text, w.link, page.Items)
		}
	}
	if n := len(page.Items); n != len(want) {
		t.Errorf("%d items, want %d: %+v", n, len(want), page.Items)
	}
	if page.Items[0].Severity != "critical" {
		t.Errorf("critical items come first: %+v", page.Items)
	}
}

// "Re-run on failed hosts" is offered to operators once the job is
// over, and starts the same request on the failed hosts only, for the
// person; "copy as CLI" is the func command of the call.
func TestRerunOnFailedHostsAndCopyAsCLI(t *testing.T) {
	e := newEnv(t, envOptions{minions: 3, subnet: "127.0.22", config: func(c *Config) {
		c.Command = "func --dir /etc/gofunc/ops"
	}})
	operator, viewer := e.users[gofunc.RoleOperator], e.users[gofunc.RoleViewer]
	m2 := e.fleet.Minion("m2.test")
	m2.SetFault(fleettest.Fault{Err: &gofunc.Fault{Code: gofunc.CodeUnavailable, Message: "disk on fire"}})
	job, err := e.ov.Targets("m*").OnBehalfOf("operator-user@operator").CallAsync(t.Context(), "test", "echo", "it's $HOME")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ov.WaitJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	var page jobData
	if st := e.getJSON(operator, "/jobs/"+job.ID, &page); st != 200 {
		t.Fatalf("job page: %d", st)
	}
	if !slices.Equal(page.Failed, []string{"m2.test"}) || !page.CanRerun || page.Summary.Failed != 1 || page.Summary.OK != 2 {
		t.Errorf("job page: failed %v, can re-run %v, summary %+v", page.Failed, page.CanRerun, page.Summary)
	}
	if want := `func --dir /etc/gofunc/ops 'm*' call test echo 'it'\''s $HOME'`; page.CLI != want {
		t.Errorf("copy as CLI:\n%s\nwant\n%s", page.CLI, want)
	}
	if st := e.getJSON(viewer, "/jobs/"+job.ID, &page); st != 200 || page.CanRerun {
		t.Errorf("a viewer is offered the re-run: %d %v", st, page.CanRerun)
	}
	// The form is on the page once, and in the stream's "done" event
	// (what a page open while the job ran swaps in), for operators only.
	form := `action="/jobs/` + job.ID + `/rerun"`
	if resp, body := e.do(e.client(operator), "GET", "/jobs/"+job.ID, nil, nil); resp == nil || strings.Count(body, form) != 1 {
		t.Errorf("the operator's job page has %d re-run forms", strings.Count(body, form))
	}
	for who, want := range map[*identity.Identity]int{operator: 1, viewer: 0} {
		resp, err := e.openStream(t.Context(), who, job.ID, "", "")
		if err != nil {
			t.Fatal(err)
		}
		evs := readEvents(t, resp.Body, func(ev sseEvent) bool { return ev.name == "done" })
		resp.Body.Close()
		if len(evs) == 0 || evs[len(evs)-1].name != "done" || strings.Count(evs[len(evs)-1].data, form) != want {
			t.Errorf("%s: the stream's done event has not %d re-run forms: %+v", who.Role(), want, evs)
		}
	}

	m2.SetFault(fleettest.Fault{})
	post := func(id string) (*http.Response, string) {
		return e.do(e.client(operator), "POST", "/jobs/"+id+"/rerun", strings.NewReader(""),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
	}
	resp, body := post(job.ID)
	var again jobView
	if resp == nil || resp.StatusCode != 200 || json.Unmarshal([]byte(body), &again) != nil {
		t.Fatalf("re-run: %v %s", resp, body)
	}
	if again.Spec != "m2.test" || again.Hosts != 1 || again.Method != "test.echo" || again.For != "operator-user@operator" {
		t.Errorf("the re-run: %+v", again)
	}
	done, err := e.ov.WaitJob(t.Context(), again.ID)
	if err != nil || done.Err() != nil || done.Results["m2.test"].Value != "it's $HOME" {
		t.Fatalf("the re-run's result: %v %v %+v", err, done.Err(), done.Results)
	}
	if resp, _ := post(again.ID); resp == nil || resp.StatusCode != http.StatusConflict {
		t.Errorf("re-run of a job without failures: %v, want 409", resp)
	}
}

// The Audit page searches by caller, minion, method and outcome,
// denials included, and its export gives the same records as JSON
// lines with their chain fields; a bad time is a 400 with the reason.
func TestAuditSearchAndExport(t *testing.T) {
	e := newEnv(t, envOptions{minions: 2, subnet: "127.0.23"})
	m1 := e.fleet.Minion("m1.test")
	e.dash.cfg.AuditLogs = append(e.dash.cfg.AuditLogs, AuditLog{Name: "m1", Path: m1.AuditPath})
	denyCalls(t, e, "mallory", "m1.test", 2)
	if _, err := e.ov.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	viewer := e.users[gofunc.RoleViewer]

	q := url.Values{"log": {"m1"}, "caller": {"mall*"}, "outcome": {audit.OutcomeDenied}, "since": {"1h"}}.Encode()
	var page auditData
	if st := e.getJSON(viewer, "/audit?"+q, &page); st != 200 || page.Error != "" {
		t.Fatalf("search: %d %+v", st, page)
	}
	if len(page.Rows) != 2 {
		t.Fatalf("denials of mallory: %+v", page.Rows)
	}
	for _, r := range page.Rows {
		if r.Caller != "mallory" || r.Outcome != audit.OutcomeDenied || r.Method != "test.ping" || r.Log != "m1" {
			t.Errorf("record %+v", r)
		}
	}
	if c := page.Logs; len(c) != 2 || c[0].State != "verified" || c[1].State != "verified" || !strings.HasPrefix(c[1].Text(), "verified to seq ") {
		t.Errorf("chains: %+v", c)
	}

	resp, body := e.do(e.client(viewer), "GET", "/audit/export?"+q, nil, nil)
	if resp == nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("export: %v", resp)
	}
	var lines []auditRow
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var r auditRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines = append(lines, r)
	}
	if len(lines) != 2 || lines[0].Seq >= lines[1].Seq || lines[0].Hash == "" || lines[1].Prev == "" || lines[0].Log != "m1" {
		t.Errorf("export: %+v", lines)
	}

	// By minion: the overlord's call of m2 is found in the dashboard's log.
	if st := e.getJSON(viewer, "/audit?log=overlord&minion=m2.test&method=test.ping", &page); st != 200 || len(page.Rows) == 0 {
		t.Errorf("the overlord's records of m2: %d %+v", st, page.Rows)
	}
	for _, bad := range []string{"since=yesterday", "outcome=maybe", "caller=%5Bx", "limit=-1"} {
		if st := e.getJSON(viewer, "/audit?"+bad, &page); st != http.StatusBadRequest || page.Error == "" {
			t.Errorf("%s: %d %q, want 400 with the reason", bad, st, page.Error)
		}
	}
}
