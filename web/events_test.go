package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/minion"
)

// testEvent is the type of the events the tests write (each minion
// writes lifecycle.started itself).
const testEvent = "lifecycle.cert_renewed"

// emit writes a testEvent carrying version into the minion's journal.
func emit(t *testing.T, e *env, name, version string) {
	t.Helper()
	if _, err := e.fleet.Minion(name).Journal().Lifecycle(events.Lifecycle{Phase: events.PhaseCertRenewed, Version: version}); err != nil {
		t.Fatal(err)
	}
}

// The Events page shows the minions' events, and its stream follows
// them from the page's cursor; a reconnection with Last-Event-ID sends
// nothing twice. A person whose dashboard ACL hides events.since gets
// neither.
func TestEventsPageAndStream(t *testing.T) {
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleViewer, Methods: []string{"test.*"}},
		minion.Rule{Identity: "*", Role: gofunc.RoleOperator, Methods: []string{"*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{minions: 2, subnet: "127.0.17", events: true, acl: acl})
	emit(t, e, "m1.test", "v1")
	emit(t, e, "m2.test", "v2")
	operator, viewer := e.users[gofunc.RoleOperator], e.users[gofunc.RoleViewer]

	var page eventsData
	if st := e.getJSON(operator, "/events?since=1h&type="+testEvent, &page); st != 200 {
		t.Fatalf("events page: %d %+v", st, page)
	}
	if len(page.Rows) != 2 || page.Rows[0].Type != testEvent || page.Cursor == "" || page.Error != "" {
		t.Fatalf("events page: %+v", page)
	}
	for _, path := range []string{"/events", "/events/stream"} {
		if st := e.getJSON(viewer, path, nil); st != http.StatusForbidden {
			t.Errorf("viewer's %s: %d, want 403", path, st)
		}
	}

	open := func(query, lastID string) *http.Response {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+"/events/stream?"+query, nil)
		if lastID != "" {
			req.Header.Set("Last-Event-ID", lastID)
		}
		resp, err := e.client(operator).Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("stream: %v %v", resp, err)
		}
		return resp
	}
	q := url.Values{"since": {page.Cursor}, "type": {testEvent}, "format": {"json"}}.Encode()
	resp := open(q, "")
	emit(t, e, "m1.test", "v3") // after the stream opened: it follows from the page's cursor
	evs := readEvents(t, resp.Body, func(ev sseEvent) bool { return ev.name == "event" })
	resp.Body.Close()
	if len(evs) != 1 || !strings.Contains(evs[0].data, `"host":"m1.test"`) || !strings.Contains(evs[0].data, `v3`) {
		t.Fatalf("stream after the page's cursor: %+v", evs)
	}
	last := evs[0].id
	if _, err := events.ParseCursors(last); err != nil || !strings.Contains(last, "m1.test=") {
		t.Errorf("event id %q is not the cursors: %v", last, err)
	}
	// Reconnect with the last id: only what came after.
	emit(t, e, "m2.test", "v4")
	resp = open(q, last)
	evs = readEvents(t, resp.Body, func(ev sseEvent) bool { return ev.name == "event" })
	resp.Body.Close()
	if len(evs) != 1 || !strings.Contains(evs[0].data, "v4") {
		t.Errorf("resumed stream: %+v, want only v4", evs)
	}
	// The HTML stream carries table rows.
	resp = open(url.Values{"since": {page.Cursor}}.Encode(), "")
	evs = readEvents(t, resp.Body, func(ev sseEvent) bool { return ev.name == "event" })
	resp.Body.Close()
	if len(evs) == 0 || !strings.HasPrefix(evs[0].data, `<tr class="event`) {
		t.Errorf("HTML stream: %+v", evs)
	}
	// A cursor that does not parse is refused.
	if st := e.getJSON(operator, "/events/stream?since=m1.test%3Dbad", nil); st != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d, want 400", st)
	}
}

// A page that left older events out links to the events before them:
// the same selection until the oldest row shown, a page of history with
// no live stream; following the links reads every event once. A bad
// until is a 400.
func TestEventsPaging(t *testing.T) {
	e := newEnv(t, envOptions{minions: 1, subnet: "127.0.26", events: true})
	for i := range 5 {
		emit(t, e, "m1.test", fmt.Sprintf("v%d", i))
	}
	operator := e.users[gofunc.RoleOperator]
	var seen []string
	path := "/events?since=1h&limit=2&type=" + testEvent
	for pages := 0; path != ""; pages++ {
		if pages == 5 {
			t.Fatalf("more than 5 pages for 5 events")
		}
		var page eventsData
		if st := e.getJSON(operator, path, &page); st != 200 || page.Error != "" || len(page.Rows) == 0 {
			t.Fatalf("%s: %d %+v", path, st, page)
		}
		if pages > 0 && (page.Stream != "" || page.Cursor != "") {
			t.Errorf("a page of history is followed live: %+v", page)
		}
		var page1 []string
		for _, r := range page.Rows {
			page1 = append(page1, r.Data)
		}
		seen = append(page1, seen...) // each page is older than the last
		if page.More != (page.Older != "") {
			t.Errorf("more %v, older %q", page.More, page.Older)
		}
		path = page.Older
	}
	if len(seen) != 5 {
		t.Fatalf("read %d events over the pages, want 5: %v", len(seen), seen)
	}
	for i, d := range seen {
		if !strings.Contains(d, fmt.Sprintf(`"v%d"`, i)) {
			t.Errorf("event %d is %s", i, d)
		}
	}
	if st := e.getJSON(operator, "/events?until=yesterday-ish", nil); st != http.StatusBadRequest {
		t.Errorf("a bad until: %d, want 400", st)
	}
}

// Events written at one time stay on one page, so that the page before
// it (strictly older) loses none of them.
func TestNewestFromKeepsATimeTogether(t *testing.T) {
	at := func(sec ...int) []eventRow {
		var rows []eventRow
		for _, s := range sec {
			rows = append(rows, eventRow{Time: time.Unix(int64(s), 0)})
		}
		return rows
	}
	for _, c := range []struct {
		secs []int
		n    int
		want int
	}{
		{[]int{1, 2, 3, 4}, 2, 2},
		{[]int{1, 2, 2, 3}, 2, 1},
		{[]int{2, 2, 2, 3}, 2, 0},
		{[]int{1, 2, 3}, 3, 0},
	} {
		if got := newestFrom(at(c.secs...), c.n); got != c.want {
			t.Errorf("newestFrom(%v, %d) = %d, want %d", c.secs, c.n, got, c.want)
		}
	}
}
