package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/internal/glob"
	"github.com/gofunc/gofunc/overlord"
)

// eventsMethod is what reading events calls on the minions: the
// dashboard's ACL must let a person see it for the Events page.
const eventsMethod = "events.since"

// eventRow is one event, or one notice about a minion's chain (a gap, a
// fork, a restart), on the Events page and in its stream.
type eventRow struct {
	Host     string    `json:"host"`
	Seq      uint64    `json:"seq,omitempty"`
	Time     time.Time `json:"time,omitzero"`
	Type     string    `json:"type,omitempty"`
	Severity string    `json:"severity,omitempty"`
	Source   string    `json:"source,omitempty"`
	Data     string    `json:"data,omitempty"`
	// Notice describes a discontinuity of the host's chain, or a host
	// that could not be read; empty for an event.
	Notice string `json:"notice,omitempty"`
}

func makeEventRow(it overlord.EventItem, err error) eventRow {
	row := eventRow{Host: it.Host}
	switch {
	case err != nil:
		row.Notice = err.Error()
		var he *overlord.HostError
		if errors.As(err, &he) {
			row.Notice = "unreadable: " + he.Err.Error()
		}
	case it.Event != nil:
		e := it.Event
		row.Seq, row.Time, row.Type, row.Severity, row.Source = e.Seq, e.Time, e.Type, string(e.Severity), e.Source
		row.Data = clipText(string(e.Data), maxShort)
	case it.Notice != nil:
		row.Notice = it.Notice.String()
	}
	return row
}

// eventsQuery is the Events page's selection.
type eventsQuery struct {
	Spec  string `json:"spec"`
	Type  string `json:"type,omitempty"`
	Since string `json:"since,omitempty"`
	// Until ends the page before this time (RFC 3339, a date or a
	// duration ago): a page of history, which is not followed live.
	Until string `json:"until,omitempty"`
	Limit int    `json:"limit"`
}

type eventsData struct {
	Query eventsQuery `json:"query"`
	Error string      `json:"error,omitempty"`
	// Rows are the newest Limit events (and notices) of the backlog,
	// oldest first.
	Rows []eventRow `json:"events"`
	More bool       `json:"more"`
	// Cursor is where the backlog ended, per minion ("name=cursor,..."):
	// the stream, and a later visit with since=Cursor, start after it.
	Cursor string `json:"cursor"`
	Stream string `json:"stream"`
	// Older is the page of the events before these, when More (the
	// same selection, until the oldest row shown).
	Older string `json:"older,omitempty"`
}

const defaultEventLimit = 500

// eventsOptions reads since: a cursor list as the page and func events
// give, or a duration ("2h") or time to start from; empty means the
// last hour.
func eventsOptions(since string, now time.Time) (overlord.EventsOptions, error) {
	var opts overlord.EventsOptions
	if since == "" {
		opts.From = now.Add(-time.Hour)
		return opts, nil
	}
	if strings.Contains(since, "=") {
		cs, err := events.ParseCursors(since)
		if err != nil {
			return opts, fmt.Errorf("since: %w", err)
		}
		opts.Since = cs
		return opts, nil
	}
	t, err := parseWhen(since, now)
	if err != nil {
		return opts, fmt.Errorf("since: %w", err)
	}
	opts.From = t
	return opts, nil
}

// readsEvents refuses people whose dashboard ACL hides the minions'
// events.
func (d *Dashboard) readsEvents(w http.ResponseWriter, r *http.Request, u User) bool {
	if d.sees(u, eventsMethod) {
		return true
	}
	d.fail(w, r, u, http.StatusForbidden, fmt.Sprintf("the dashboard's ACL does not let %s read events (%s)", u.OnBehalfOf(), eventsMethod))
	return false
}

func (d *Dashboard) eventsPage(w http.ResponseWriter, r *http.Request, u User) {
	if !d.readsEvents(w, r, u) {
		return
	}
	v := r.URL.Query()
	q := eventsQuery{Spec: strings.TrimSpace(v.Get("spec")), Type: v.Get("type"), Since: v.Get("since"), Until: v.Get("until")}
	if q.Spec == "" {
		q.Spec = "*"
	}
	var err error
	if q.Limit, err = parseLimit(v, defaultEventLimit); err != nil {
		d.fail(w, r, u, http.StatusBadRequest, err.Error())
		return
	}
	data := eventsData{Query: q, Rows: []eventRow{}}
	now := time.Now()
	opts, err := eventsOptions(q.Since, now)
	var until time.Time
	if err == nil {
		if until, err = parseWhen(q.Until, now); err != nil {
			err = fmt.Errorf("until: %w", err)
		}
	}
	if err != nil {
		data.Error = err.Error()
		d.render(w, r, u, http.StatusBadRequest, "events", "Events", data)
		return
	}
	data.Rows, data.More, data.Cursor, data.Error = d.eventBacklog(r.Context(), u, q, opts, until)
	if until.IsZero() {
		data.Stream = "/events/stream?" + url.Values{"spec": {q.Spec}, "type": {q.Type}, "since": {data.Cursor}}.Encode()
	} else {
		data.Cursor = "" // a page of history: nothing to resume from
	}
	if data.More {
		data.Older = "/events?" + url.Values{"spec": {q.Spec}, "type": {q.Type}, "since": {q.Since},
			"until": {oldestTime(data.Rows).Format(time.RFC3339Nano)}, "limit": {strconv.Itoa(q.Limit)}}.Encode()
	}
	d.render(w, r, u, http.StatusOK, "events", "Events", data)
}

// oldestTime is the time of the oldest event among rows (notices have
// none).
func oldestTime(rows []eventRow) time.Time {
	var t time.Time
	for _, r := range rows {
		if !r.Time.IsZero() && (t.IsZero() || r.Time.Before(t)) {
			t = r.Time
		}
	}
	return t
}

// eventBacklog reads the events q selects from opts on, up to now (or
// before until, if set): the newest q.Limit (oldest first), whether
// older ones were left out, the cursors where the backlog ended, and
// what could not be read.
func (d *Dashboard) eventBacklog(ctx context.Context, u User, q eventsQuery, opts overlord.EventsOptions, until time.Time) (rows []eventRow, more bool, cursor, problem string) {
	ctx, cancel := context.WithTimeout(ctx, 2*d.cfg.StatusTimeout)
	defer cancel()
	rows = []eventRow{}
	cursors := events.Cursors{}
	for k, c := range opts.Since {
		cursors[k] = c
	}
	for it, err := range d.cfg.Overlord.Targets(q.Spec).OnBehalfOf(u.OnBehalfOf()).Events(ctx, opts) {
		if err != nil && it.Host == "" {
			problem = err.Error()
			break
		}
		if it.Host != "" && it.Cursor != (events.Cursor{}) {
			cursors[it.Host] = it.Cursor
		}
		if err == nil && it.Event != nil && (q.Type != "" && !glob.Match(q.Type, it.Event.Type) || !until.IsZero() && !it.Event.Time.Before(until)) {
			continue
		}
		rows = append(rows, makeEventRow(it, err))
		if len(rows) > 2*q.Limit {
			rows, more = append([]eventRow(nil), rows[newestFrom(rows, q.Limit):]...), true
		}
	}
	if len(rows) > q.Limit {
		rows, more = rows[newestFrom(rows, q.Limit):], true
	}
	return rows, more, cursors.String(), problem
}

// newestFrom is where the newest n rows begin, moved back over older
// rows written at the same time as the first of them (a journal writes
// a batch of events at one time): the page of older events then starts
// strictly before the page's oldest time, and loses none.
func newestFrom(rows []eventRow, n int) int {
	i := len(rows) - n
	for i > 0 && !rows[i].Time.IsZero() && rows[i-1].Time.Equal(rows[i].Time) {
		i--
	}
	return i
}

// eventsStream follows the minions' events as server-sent events: each
// event (name "event", data its row, HTML or with ?format=json JSON)
// has as id the cursors after it, per minion, so a reconnection
// (Last-Event-ID, or htmx's new request with ?since=) resumes after it
// with neither gap nor duplicate; notices about a minion's chain come
// as "notice" events.
func (d *Dashboard) eventsStream(w http.ResponseWriter, r *http.Request, u User) {
	if !d.readsEvents(w, r, u) {
		return
	}
	v := r.URL.Query()
	spec, typ := strings.TrimSpace(v.Get("spec")), v.Get("type")
	if spec == "" {
		spec = "*"
	}
	since := v.Get("since")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		since = id
	}
	opts, err := eventsOptions(since, time.Now())
	if err != nil {
		d.fail(w, r, u, http.StatusBadRequest, err.Error())
		return
	}
	opts.Follow = true
	asJSON := v.Get("format") == "json"
	cursors := events.Cursors{}
	for k, c := range opts.Since {
		cursors[k] = c
	}
	ctx, cancel := d.untilClose(r.Context())
	defer cancel()
	type item struct {
		it  overlord.EventItem
		err error
	}
	items := make(chan item)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for it, err := range d.cfg.Overlord.Targets(spec).OnBehalfOf(u.OnBehalfOf()).Events(ctx, opts) {
			select {
			case items <- item{it, err}:
			case <-ctx.Done():
				return
			}
		}
	}()
	defer func() { cancel(); <-done }()
	s := newSSE(w, d.cfg.KeepAlive)
	keep := time.NewTicker(d.cfg.KeepAlive)
	defer keep.Stop()
	for {
		select {
		case x := <-items:
			if x.it.Host != "" && x.it.Cursor != (events.Cursor{}) {
				cursors[x.it.Host] = x.it.Cursor
			}
			if x.err == nil && x.it.Event != nil && typ != "" && !glob.Match(typ, x.it.Event.Type) {
				continue
			}
			if !d.sendEvent(s, cursors, makeEventRow(x.it, x.err), x.it.Event != nil, asJSON) {
				return
			}
			if x.err != nil && x.it.Host == "" {
				return // the selection cannot be read at all
			}
		case <-keep.C:
			if !s.comment("keepalive") {
				return
			}
		case <-ctx.Done():
			return
		case <-done:
			return
		}
	}
}

func (d *Dashboard) sendEvent(s *sse, cursors events.Cursors, row eventRow, isEvent, asJSON bool) bool {
	var data string
	var err error
	if asJSON {
		var b []byte
		b, err = json.Marshal(row)
		data = string(b)
	} else {
		data, err = d.fragment("eventrow", row)
	}
	if err != nil {
		d.log.Error("event row failed", "host", row.Host, "error", err)
		return false
	}
	name := "notice"
	if isEvent {
		name = "event"
	}
	return s.event(cursors.String(), name, data) && s.flush()
}
