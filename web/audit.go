package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/glob"
)

// chainStatus is one audit log's verification.
type chainStatus struct {
	Name string `json:"name"`
	Path string `json:"path"`
	// State is verified, broken, torn (a final line cut short, which a
	// crash leaves and is no tampering), empty or unreadable.
	State   string `json:"state"`
	Records int    `json:"records"`
	// VerifiedTo is the last record of the unbroken chain; BrokenAt the
	// seq of the first record that does not verify (0 if none).
	VerifiedTo uint64 `json:"verified_to"`
	BrokenAt   uint64 `json:"broken_at,omitempty"`
	Problem    string `json:"problem,omitempty"`
}

// Text is the status as the pages say it.
func (c chainStatus) Text() string {
	switch c.State {
	case "verified":
		return fmt.Sprintf("verified to seq %d", c.VerifiedTo)
	case "broken":
		return fmt.Sprintf("broken at seq %d", c.BrokenAt)
	case "torn":
		return fmt.Sprintf("verified to seq %d, final line torn", c.VerifiedTo)
	}
	return c.State
}

// verifyCache keeps each log's verification while its files are
// unchanged (same names, sizes and modification times).
type verifyCache struct {
	mu sync.Mutex
	m  map[string]verifyEntry
}

type verifyEntry struct {
	key    string
	status chainStatus
}

// chains verifies every configured log.
func (d *Dashboard) chains() []chainStatus {
	out := make([]chainStatus, 0, len(d.cfg.AuditLogs))
	for _, l := range d.cfg.AuditLogs {
		out = append(out, d.chain(l))
	}
	return out
}

func (d *Dashboard) chain(l AuditLog) chainStatus {
	st := chainStatus{Name: l.Name, Path: l.Path}
	files, err := audit.Files(l.Path)
	if errors.Is(err, fs.ErrNotExist) {
		st.State = "empty"
		return st
	}
	if err != nil {
		st.State, st.Problem = "unreadable", err.Error()
		return st
	}
	key := filesKey(files)
	d.verified.mu.Lock()
	e, ok := d.verified.m[l.Path]
	d.verified.mu.Unlock()
	if ok && e.key == key {
		return e.status
	}
	sum, err := audit.Verify(files...)
	st.Records, st.VerifiedTo = sum.Records, sum.LastSeq
	var ve *audit.VerifyError
	switch {
	case err == nil && sum.Records == 0:
		st.State = "empty"
	case err == nil:
		st.State = "verified"
	case errors.Is(err, audit.ErrTorn):
		st.State, st.Problem = "torn", err.Error()
	case errors.As(err, &ve):
		st.State, st.Problem, st.BrokenAt = "broken", err.Error(), ve.Seq
		if st.BrokenAt == 0 {
			st.BrokenAt = sum.LastSeq + 1
		}
	default:
		st.State, st.Problem = "unreadable", err.Error()
	}
	d.verified.mu.Lock()
	if d.verified.m == nil {
		d.verified.m = map[string]verifyEntry{}
	}
	d.verified.m[l.Path] = verifyEntry{key: key, status: st}
	d.verified.mu.Unlock()
	return st
}

func filesKey(files []string) string {
	var b strings.Builder
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return ""
		}
		fmt.Fprintf(&b, "%s:%d:%d;", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

// auditQuery is the Audit page's search.
type auditQuery struct {
	Log     string `json:"log,omitempty"`
	Since   string `json:"since,omitempty"`
	Until   string `json:"until,omitempty"`
	Caller  string `json:"caller,omitempty"`
	Minion  string `json:"minion,omitempty"`
	Method  string `json:"method,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Kind    string `json:"kind,omitempty"`
	CallID  string `json:"call_id,omitempty"`
	Limit   int    `json:"limit"`
}

const (
	defaultAuditLimit = 200
	maxAuditLimit     = 10000
)

func parseAuditQuery(r *http.Request, now time.Time) (auditQuery, audit.Filter, error) {
	v := r.URL.Query()
	q := auditQuery{Log: v.Get("log"), Since: v.Get("since"), Until: v.Get("until"), Caller: v.Get("caller"),
		Minion: v.Get("minion"), Method: v.Get("method"), Outcome: v.Get("outcome"), Kind: v.Get("kind"),
		CallID: v.Get("call_id"), Limit: defaultAuditLimit}
	var err error
	if q.Limit, err = parseLimit(v, defaultAuditLimit); err != nil {
		return q, audit.Filter{}, err
	}
	f := audit.Filter{Caller: q.Caller, Method: q.Method, Outcome: q.Outcome, Kind: q.Kind, CallID: q.CallID}
	if f.Since, err = parseWhen(q.Since, now); err != nil {
		return q, f, fmt.Errorf("since: %w", err)
	}
	if f.Until, err = parseWhen(q.Until, now); err != nil {
		return q, f, fmt.Errorf("until: %w", err)
	}
	if q.Outcome != "" && !slices.Contains(audit.Outcomes, q.Outcome) {
		return q, f, fmt.Errorf("outcome %q: want one of %s", q.Outcome, strings.Join(audit.Outcomes, ", "))
	}
	return q, f, f.Validate()
}

// parseLimit reads a page's limit= (how many rows it shows): a
// positive number, at most maxAuditLimit; def when absent.
func parseLimit(v url.Values, def int) (int, error) {
	s := v.Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return def, fmt.Errorf("limit %q: want a positive number", s)
	}
	return min(n, maxAuditLimit), nil
}

// maxDays bounds a day count ("3d"), so that it cannot overflow a
// time.Duration (about 292 years).
const maxDays = 100 * 366

// parseWhen reads a time: RFC 3339, a date, or a duration before now
// ("90m", "2h", "3d").
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02T15:04", s); err == nil { // what a datetime-local input sends
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if days, err := strconv.Atoi(n); err == nil && days >= 0 && days <= maxDays {
			return now.Add(-time.Duration(days) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want RFC 3339, a date or a duration such as 2h or 3d", s)
}

// matchMinion reports whether the record concerns a minion matching
// pattern: the caller (minion logs, the CA), the targets (an overlord's
// call) or a host's outcome (an overlord's end record).
func matchMinion(pattern string, r audit.Record) bool {
	if pattern == "" || glob.Match(pattern, r.Caller) {
		return true
	}
	if slices.ContainsFunc(r.Targets, func(t string) bool { return glob.Match(pattern, t) }) {
		return true
	}
	if r.Kind == audit.KindOverlordCallEnd || r.Kind == audit.KindOverlordHeads {
		for k := range r.Details {
			if glob.Match(pattern, k) {
				return true
			}
		}
	}
	return false
}

// personKeys are the Details that name the person a program acted for:
// a delegate's call (on_behalf_of, "alice@operator") and a CA action
// (by).
var personKeys = []string{"on_behalf_of", "by"}

// matchCaller reports whether the record's caller, or the person it
// acted for, matches pattern: searching for alice finds her calls
// through the dashboard, whose certificate is their caller. A person
// matches by "name@role" or by name alone.
func matchCaller(pattern string, r audit.Record) bool {
	if pattern == "" || glob.Match(pattern, r.Caller) {
		return true
	}
	for _, k := range personKeys {
		v := r.Details[k]
		name, _, _ := strings.Cut(v, "@")
		if v != "" && (glob.Match(pattern, v) || glob.Match(pattern, name)) {
			return true
		}
	}
	return false
}

// auditRow is a record with the log it came from.
type auditRow struct {
	Log string `json:"log"`
	audit.Record
}

type auditData struct {
	Logs    []chainStatus `json:"logs"`
	Query   auditQuery    `json:"query"`
	Rows    []auditRow    `json:"records"`
	More    bool          `json:"more"`
	Error   string        `json:"error,omitempty"`
	Export  string        `json:"export"`
	Outcome []string      `json:"-"`
}

// search returns the newest records (at most q.Limit) that match, that
// u may see, newest first; more reports whether older ones were left
// out. Problems reading a log (a broken chain stops its query) are
// returned with what was read before them.
func (d *Dashboard) search(u User, q auditQuery, f audit.Filter, each func(auditRow) error) (problems []string) {
	caller := f.Caller
	f.Caller = "" // matched below, on the person too
	for _, l := range d.cfg.AuditLogs {
		if q.Log != "" && q.Log != l.Name {
			continue
		}
		files, err := audit.Files(l.Path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = audit.Query(files, f, func(rec audit.Record) error {
				if !matchCaller(caller, rec) || !matchMinion(q.Minion, rec) || rec.Method != "" && !d.sees(u, rec.Method) {
					return nil
				}
				return each(auditRow{Log: l.Name, Record: rec})
			})
		}
		if err != nil {
			problems = append(problems, l.Name+": "+err.Error())
		}
	}
	return problems
}

func (d *Dashboard) auditPage(w http.ResponseWriter, r *http.Request, u User) {
	q, f, err := parseAuditQuery(r, time.Now())
	data := auditData{Logs: d.chains(), Query: q, Rows: []auditRow{}, Outcome: audit.Outcomes,
		Export: "/audit/export?" + r.URL.RawQuery}
	if err != nil {
		data.Error = err.Error()
		d.render(w, r, u, http.StatusBadRequest, "audit", "Audit", data)
		return
	}
	rows, more, problems := d.newest(u, q, f)
	data.Rows, data.More = append(data.Rows, rows...), more
	data.Error = strings.Join(problems, "; ")
	d.render(w, r, u, http.StatusOK, "audit", "Audit", data)
}

// newest returns the newest q.Limit records that match and that u may
// see, newest first; more reports whether older ones were left out.
func (d *Dashboard) newest(u User, q auditQuery, f audit.Filter) (rows []auditRow, more bool, problems []string) {
	problems = d.search(u, q, f, func(row auditRow) error {
		rows = append(rows, row)
		if len(rows) > 2*q.Limit { // keep the newest: drop the oldest half
			rows, more = slices.Delete(rows, 0, len(rows)-q.Limit), true
		}
		return nil
	})
	if len(rows) > q.Limit {
		rows, more = rows[len(rows)-q.Limit:], true
	}
	slices.SortStableFunc(rows, func(a, b auditRow) int { return b.Time.Compare(a.Time) })
	return rows, more, problems
}

// auditExport writes the matching records as JSON lines, oldest first
// within each log: each record with all its fields (seq, prev and hash
// included, so it can be checked against its log) and the name of its
// log.
func (d *Dashboard) auditExport(w http.ResponseWriter, r *http.Request, u User) {
	q, f, err := parseAuditQuery(r, time.Now())
	if err != nil {
		d.fail(w, r, u, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="gofunc-audit.jsonl"`)
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	problems := d.search(u, q, f, func(row auditRow) error { return enc.Encode(row) })
	for _, p := range problems {
		d.log.Warn("audit export incomplete", "problem", p, "user", u.Name)
	}
}
