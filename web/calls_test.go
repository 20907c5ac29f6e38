package web

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// The Jobs page lists every call in the audit logs (the command line's
// too), paired with its outcome, as far as the person's ACL shows them
// and without the dashboard's own upkeep; a minion's page lists the
// calls that targeted it and its events; a call's records are found by
// its id.
func TestCallsAndMinionHistory(t *testing.T) {
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleViewer, Methods: []string{"test.ping", "facts.*", "system.*"}},
		minion.Rule{Identity: "*", Role: gofunc.RoleOperator, Methods: []string{"*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	cliLog := filepath.Join(t.TempDir(), "func-audit.log")
	e := newEnv(t, envOptions{minions: 2, subnet: "127.0.18", events: true, acl: acl,
		logs: []AuditLog{{Name: "cli", Path: cliLog}}})
	operator, viewer := e.users[gofunc.RoleOperator], e.users[gofunc.RoleViewer]
	if st := e.getJSON(viewer, "/fleet", nil); st != 200 { // the dashboard's own facts calls
		t.Fatalf("fleet: %d", st)
	}
	cli := e.fleet.Client(overlord.WithAudit(&audit.Shared{Path: cliLog}))
	t.Cleanup(func() { cli.Close() })
	if _, err := cli.Targets("m1.test").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	job, err := e.ov.Targets("*").OnBehalfOf("operator-user@operator").CallAsync(t.Context(), "test", "add", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ov.WaitJob(t.Context(), job.ID); err != nil {
		t.Fatal(err)
	}
	emit(t, e, "m1.test", "v9")

	find := func(calls []callView, method string) *callView {
		i := slices.IndexFunc(calls, func(c callView) bool { return c.Method == method })
		if i < 0 {
			return nil
		}
		return &calls[i]
	}
	var page jobsData
	if st := e.getJSON(operator, "/jobs", &page); st != 200 || page.Error != "" {
		t.Fatalf("jobs: %d %+v", st, page)
	}
	ping, add := find(page.Calls, "test.ping"), find(page.Calls, "test.add")
	if ping == nil || ping.Log != "cli" || ping.Outcome != audit.OutcomeOK || ping.Hosts != 1 || ping.Spec != "m1.test" || ping.For != "" {
		t.Errorf("the command line's call: %+v", ping)
	}
	if add == nil || add.Log != "overlord" || add.For != "operator-user@operator" || add.Caller != "funcweb" || add.Hosts != 2 || add.Outcome != audit.OutcomeOK {
		t.Errorf("the dashboard's call for the operator: %+v", add)
	}
	if f := find(page.Calls, "facts.list"); f != nil {
		t.Errorf("the dashboard's own status call is listed: %+v", f)
	}
	if len(page.Jobs) != 1 || page.Jobs[0].ID != job.ID {
		t.Errorf("jobs: %+v", page.Jobs)
	}
	if st := e.getJSON(viewer, "/jobs", &page); st != 200 || find(page.Calls, "test.add") != nil || find(page.Calls, "test.ping") == nil {
		t.Errorf("the viewer's calls (the ACL hides test.add): %d %+v", st, page.Calls)
	}

	var recs auditData
	st := e.getJSON(viewer, "/audit?log=cli&call_id="+ping.CallID, &recs)
	var kinds []string
	for _, r := range recs.Rows {
		kinds = append(kinds, r.Kind)
	}
	slices.Sort(kinds)
	if want := []string{audit.KindOverlordCall, audit.KindOverlordCallEnd, audit.KindOverlordHeads}; st != 200 || !slices.Equal(kinds, want) {
		t.Errorf("the call's records: %d %v, want %v", st, kinds, want)
	}

	// The person is found by name, though the dashboard was the caller
	// (in the call record; its end record names the dashboard alone).
	if st := e.getJSON(operator, "/audit?log=overlord&caller=operator-user&method=test.add", &recs); st != 200 || len(recs.Rows) != 1 || recs.Rows[0].Kind != audit.KindOverlordCall {
		t.Errorf("the operator's calls through the dashboard: %d %+v", st, recs.Rows)
	}
	for _, r := range recs.Rows {
		if r.Caller != "funcweb" || r.Details["on_behalf_of"] != "operator-user@operator" {
			t.Errorf("record %+v", r.Record)
		}
	}
	if st := e.getJSON(operator, "/audit?log=overlord&caller=someone-else&method=test.add", &recs); st != 200 || len(recs.Rows) != 0 {
		t.Errorf("someone else's calls: %d %+v", st, recs.Rows)
	}

	var m1, m2 minionData
	if st := e.getJSON(operator, "/fleet/m1.test", &m1); st != 200 {
		t.Fatalf("m1's page: %d", st)
	}
	if find(m1.Calls, "test.ping") == nil || find(m1.Calls, "test.add") == nil || len(m1.Notes) != 0 {
		t.Errorf("m1's calls: %+v %v", m1.Calls, m1.Notes)
	}
	ours := func(evs []eventRow) (n int) {
		for _, ev := range evs {
			if ev.Type == testEvent && strings.Contains(ev.Data, "v9") {
				n++
			}
		}
		return n
	}
	if !m1.EventsShown || ours(m1.Events) != 1 || m1.Events[0].Host != "m1.test" {
		t.Errorf("m1's events: %v %+v", m1.EventsShown, m1.Events)
	}
	if st := e.getJSON(operator, "/fleet/m2.test", &m2); st != 200 || find(m2.Calls, "test.ping") != nil || find(m2.Calls, "test.add") == nil {
		t.Errorf("m2's calls (the command line pinged only m1): %d %+v", st, m2.Calls)
	}
	if ours(m2.Events) != 0 {
		t.Errorf("m2's events: %+v", m2.Events)
	}
	if st := e.getJSON(viewer, "/fleet/m1.test", &m1); st != 200 || m1.EventsShown || len(m1.Events) != 0 {
		t.Errorf("a viewer whose ACL hides events: %d shown=%v %+v", st, m1.EventsShown, m1.Events)
	}
}

// The Jobs page selects jobs by method and state, lists at most limit
// of them (newest first) and says when it left older ones out; the
// calls below follow the method too. A bad state or limit is a 400.
func TestJobsFilter(t *testing.T) {
	e := newEnv(t, envOptions{minions: 1, subnet: "127.0.25"})
	operator := e.users[gofunc.RoleOperator]
	var ids []string
	for _, m := range []string{"ping", "ping", "add"} {
		var args []any
		if m == "add" {
			args = []any{1, 2}
		}
		job, err := e.ov.Targets("*").OnBehalfOf("operator-user@operator").CallAsync(t.Context(), "test", m, args...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.ov.WaitJob(t.Context(), job.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, job.ID)
	}
	methods := func(page jobsData) (jobs, calls []string) {
		for _, j := range page.Jobs {
			jobs = append(jobs, j.Method)
		}
		for _, c := range page.Calls {
			calls = append(calls, c.Method)
		}
		return jobs, calls
	}
	var page jobsData
	if st := e.getJSON(operator, "/jobs?method=test.a*", &page); st != 200 || page.More || len(page.Jobs) != 1 || page.Jobs[0].ID != ids[2] {
		t.Errorf("method test.a*: %d %+v", st, page)
	}
	if _, calls := methods(page); len(calls) != 1 || calls[0] != "test.add" {
		t.Errorf("calls of test.a*: %v", calls)
	}
	if st := e.getJSON(operator, "/jobs?limit=2", &page); st != 200 || !page.More || len(page.Jobs) != 2 || page.Jobs[0].ID != ids[2] || page.Jobs[1].ID != ids[1] {
		t.Errorf("limit 2: %d %+v", st, page)
	}
	if st := e.getJSON(operator, "/jobs?state=done&method=test.ping", &page); st != 200 || len(page.Jobs) != 2 {
		t.Errorf("done test.ping: %d %+v", st, page)
	}
	if st := e.getJSON(operator, "/jobs?state=failed", &page); st != 200 || len(page.Jobs) != 0 || page.More {
		t.Errorf("failed: %d %+v", st, page)
	}
	for _, bad := range []string{"state=exploded", "limit=0", "method=test.%5Bx"} {
		if st := e.getJSON(operator, "/jobs?"+bad, &page); st != 400 || page.Error == "" {
			t.Errorf("%s: %d %+v", bad, st, page)
		}
	}
	resp, body := e.do(e.client(operator), "GET", "/jobs?state=done", nil, nil)
	if resp == nil || resp.StatusCode != 200 || !strings.Contains(body, `<option value="done" selected>`) || !strings.Contains(body, `name="method"`) {
		t.Errorf("the page's filter form: %v\n%s", resp, body)
	}
}
