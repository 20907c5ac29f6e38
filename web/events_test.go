package web

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/minion"
)

// journals gives each minion an event journal served as events.since.
type journals struct {
	t  *testing.T
	mu sync.Mutex
	m  map[string]*events.Journal
}

func (js *journals) modules(name string, srv *minion.Server) error {
	j, err := events.Open(filepath.Join(js.t.TempDir(), "events"), events.Config{})
	if err != nil {
		return err
	}
	js.t.Cleanup(func() { j.Close() })
	js.mu.Lock()
	js.m[name] = j
	js.mu.Unlock()
	srv.Events = j // the minion serves events.since from it
	return nil
}

// awaitStarted waits until every minion has written its own
// lifecycle.started (Serve writes it on its goroutine), so that the
// events a test emits come after it.
func (js *journals) awaitStarted(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		started := 0
		js.mu.Lock()
		for _, j := range js.m {
			if j.Stats().Head > 0 {
				started++
			}
		}
		js.mu.Unlock()
		if started == len(js.m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d minions wrote lifecycle.started", started, len(js.m))
		}
	}
}

func (js *journals) emit(t *testing.T, name, version string) {
	t.Helper()
	js.mu.Lock()
	j := js.m[name]
	js.mu.Unlock()
	if _, err := j.Lifecycle(events.Lifecycle{Phase: events.PhaseStarted, Version: version}); err != nil {
		t.Fatal(err)
	}
}

// The Events page shows the minions' events, and its stream follows
// them from the page's cursor; a reconnection with Last-Event-ID sends
// nothing twice. A person whose dashboard ACL hides events.since gets
// neither.
func TestEventsPageAndStream(t *testing.T) {
	js := &journals{t: t, m: map[string]*events.Journal{}}
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleViewer, Methods: []string{"test.*"}},
		minion.Rule{Identity: "*", Role: gofunc.RoleOperator, Methods: []string{"*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{minions: 2, subnet: "127.0.17", modules: js.modules, acl: acl})
	js.awaitStarted(t)
	js.emit(t, "m1.test", "v1")
	js.emit(t, "m2.test", "v2")
	operator, viewer := e.users[gofunc.RoleOperator], e.users[gofunc.RoleViewer]

	var page eventsData
	if st := e.getJSON(operator, "/events?since=1h", &page); st != 200 {
		t.Fatalf("events page: %d %+v", st, page)
	}
	// Each minion's own lifecycle.started, then the two emitted here.
	if len(page.Rows) != 4 || page.Rows[3].Type != "lifecycle.started" || !strings.Contains(string(page.Rows[3].Data), "v2") || page.Cursor == "" || page.Error != "" {
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
	q := url.Values{"since": {page.Cursor}, "format": {"json"}}.Encode()
	resp := open(q, "")
	js.emit(t, "m1.test", "v3") // after the stream opened: it follows from the page's cursor
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
	js.emit(t, "m2.test", "v4")
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
