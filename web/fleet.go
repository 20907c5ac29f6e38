package web

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

// hostStatus is what the dashboard last learned of a minion by asking
// it for its facts.
type hostStatus struct {
	Facts map[string]any
	// Problem is why the last attempt failed, "" when it answered.
	Problem string
	// Kind is overlord.ErrorKind of the failure.
	Kind string
	// LastSeen is when the minion last answered (a denial is an answer).
	LastSeen time.Time
}

// reachable reports whether the minion answered the last attempt.
func (h hostStatus) reachable() bool {
	switch h.Kind {
	case "", "denied", "fault", "bad arguments", "no such method":
		return true
	}
	return false
}

// fleetStatus caches the fleet's facts and reachability for StatusTTL,
// so that page views do not each fan out to every minion.
type fleetStatus struct {
	d  *Dashboard
	mu sync.Mutex
	at time.Time
	// hosts by lower-case name
	hosts      map[string]hostStatus
	refreshing chan struct{}
}

// get returns the status, refreshed first when older than StatusTTL.
// Concurrent callers share one refresh, and each waits at most until its
// own context ends (then it gets the status as it was).
func (fs *fleetStatus) get(ctx context.Context) map[string]hostStatus {
	fs.mu.Lock()
	if time.Since(fs.at) < fs.d.cfg.StatusTTL && fs.hosts != nil {
		defer fs.mu.Unlock()
		return fs.hosts
	}
	wait := fs.refreshing
	if wait == nil {
		fs.refreshing = make(chan struct{})
		fs.mu.Unlock()
		fs.refresh()
		fs.mu.Lock()
		defer fs.mu.Unlock()
		return fs.hosts
	}
	fs.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.hosts
}

// refresh asks every minion for its facts, for at most StatusTimeout.
// It is not bound to the request that started it: the others wait for
// it too.
func (fs *fleetStatus) refresh() {
	ctx, cancel := context.WithTimeout(fs.d.closeCtx, fs.d.cfg.StatusTimeout)
	defer cancel()
	facts, errs, err := fs.d.cfg.Overlord.Targets("*").Facts(ctx)
	now := time.Now()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	defer close(fs.refreshing)
	fs.refreshing = nil
	next := map[string]hostStatus{}
	if err != nil && !errors.Is(err, overlord.ErrNoMatch) {
		fs.d.log.Warn("fleet status refresh failed", "error", err)
	}
	for h, f := range facts {
		next[strings.ToLower(h)] = hostStatus{Facts: f, LastSeen: now}
	}
	for h, e := range errs {
		st := hostStatus{Problem: e.Error(), Kind: overlord.ErrorKind(e)}
		var he *overlord.HostError
		if errors.As(e, &he) {
			st.Problem = he.Err.Error()
		}
		if st.reachable() {
			st.LastSeen = now
		} else if old, ok := fs.hosts[strings.ToLower(h)]; ok {
			st.LastSeen = old.LastSeen
		}
		next[strings.ToLower(h)] = st
	}
	fs.hosts, fs.at = next, now
}

// fleetRow is one minion on the Fleet page.
type fleetRow struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// Status is up, unreachable or unknown (not asked yet).
	Status   string    `json:"status"`
	Problem  string    `json:"problem,omitempty"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	OS       string    `json:"os,omitempty"`
	Kernel   string    `json:"kernel,omitempty"`
	CPUs     int64     `json:"cpus,omitempty"`
	Memory   int64     `json:"memory_bytes,omitempty"`
	// Cert is the minion's current certificate as the CA lists it; nil
	// without a CA or when the CA has none for the name.
	Cert *certView `json:"certificate,omitempty"`
}

type fleetData struct {
	Spec  string     `json:"spec"`
	Error string     `json:"error,omitempty"`
	Rows  []fleetRow `json:"minions"`
}

func (d *Dashboard) fleet(w http.ResponseWriter, r *http.Request, u User) {
	spec := strings.TrimSpace(r.URL.Query().Get("spec"))
	data := fleetData{Spec: spec, Rows: []fleetRow{}}
	rows, err := d.fleetRows(r.Context(), spec)
	if err != nil {
		var f *gofunc.Fault
		if errors.Is(err, overlord.ErrNoMatch) || errors.Is(err, overlord.ErrBadSpec) || errors.As(err, &f) {
			data.Error = err.Error()
			d.render(w, r, u, http.StatusBadRequest, "fleet", "Fleet", data)
			return
		}
		d.failErr(w, r, u, "fleet", err)
		return
	}
	data.Rows = rows
	d.render(w, r, u, http.StatusOK, "fleet", "Fleet", data)
}

// fleetRows lists the minions spec selects ("" is all) with their
// status and certificates.
func (d *Dashboard) fleetRows(ctx context.Context, spec string) ([]fleetRow, error) {
	minions, err := d.cfg.Overlord.Minions(ctx)
	if err != nil {
		return nil, err
	}
	if spec != "" {
		hosts, err := d.cfg.Overlord.Targets(spec).Hosts(ctx)
		if err != nil {
			return nil, err
		}
		minions = slices.DeleteFunc(minions, func(m overlord.Minion) bool { return !slices.Contains(hosts, m.Name) })
	}
	certs := d.minionCerts(ctx)
	status := d.status.get(ctx)
	now := time.Now()
	rows := make([]fleetRow, 0, len(minions))
	for _, m := range minions {
		row := fleetRow{Name: m.Name, Addr: m.Addr, Status: "unknown"}
		if st, ok := status[strings.ToLower(m.Name)]; ok {
			row.Status, row.Problem, row.LastSeen = "up", st.Problem, st.LastSeen
			if !st.reachable() {
				row.Status = "unreachable"
			}
			row.OS, row.Kernel = factString(st.Facts, "os"), factString(st.Facts, "kernel")
			if v := factString(st.Facts, "os_version"); v != "" && row.OS != "" {
				row.OS += " " + v
			}
			row.CPUs, row.Memory = factInt(st.Facts, "cpu_count"), factInt(st.Facts, "memory_total")
		}
		if c, ok := certs[strings.ToLower(m.Name)]; ok {
			v := d.certView(c, now)
			row.Cert = &v
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b fleetRow) int { return naturalCompare(a.Name, b.Name) })
	return rows, nil
}

// minionCerts maps each minion name to its current certificate: the
// newest valid one, else the newest.
func (d *Dashboard) minionCerts(ctx context.Context) map[string]ca.CertInfo {
	out := map[string]ca.CertInfo{}
	if d.cfg.CA == nil {
		return out
	}
	certs, err := d.cfg.CA.Certificates(ctx)
	if err != nil {
		d.log.Warn("certificates not listed", "error", err)
		return out
	}
	now := time.Now()
	for _, c := range certs {
		if c.Role != gofunc.RoleMinion {
			continue
		}
		key := strings.ToLower(c.Name)
		old, ok := out[key]
		valid := !c.Revoked && !c.Expired(now)
		oldValid := ok && !old.Revoked && !old.Expired(now)
		if !ok || valid && !oldValid || valid == oldValid && c.NotBefore.After(old.NotBefore) {
			out[key] = c
		}
	}
	return out
}

func factString(f map[string]any, k string) string {
	s, _ := f[k].(string)
	return s
}

func factInt(f map[string]any, k string) int64 {
	switch v := f[k].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}

// moduleView is one module on a minion page.
type moduleView struct {
	Name        string   `json:"name"`
	Version     string   `json:"version"`
	Description string   `json:"description"`
	Methods     []string `json:"methods"`
}

type minionData struct {
	Minion  fleetRow     `json:"minion"`
	Modules []moduleView `json:"modules"`
	// Problem is why the modules could not be listed.
	Problem string `json:"problem,omitempty"`
	// AuditHead is where the minion's audit log stood after answering
	// the dashboard ("seq:hash").
	AuditHead string    `json:"audit_head,omitempty"`
	Jobs      []jobView `json:"jobs"`
	// Calls are the newest calls that targeted the minion, from the
	// audit logs.
	Calls []callView `json:"calls"`
	// Events are its events of the last day (the newest minionEvents);
	// EventsShown is false when the person may not read events.
	Events      []eventRow `json:"events"`
	EventsShown bool       `json:"events_shown"`
	// Notes say what could not be read (calls, events).
	Notes []string `json:"notes,omitempty"`
}

// What a minion page lists of its recent past.
const (
	minionJobs   = 20
	minionCalls  = 20
	minionEvents = 20
)

func (d *Dashboard) minion(w http.ResponseWriter, r *http.Request, u User) {
	name := r.PathValue("name")
	rows, err := d.fleetRows(r.Context(), "")
	if err != nil {
		d.failErr(w, r, u, "fleet", err)
		return
	}
	i := slices.IndexFunc(rows, func(row fleetRow) bool { return strings.EqualFold(row.Name, name) })
	if i < 0 {
		d.fail(w, r, u, http.StatusNotFound, "no minion named "+name)
		return
	}
	data := minionData{Minion: rows[i], Modules: []moduleView{}, Jobs: []jobView{}}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.StatusTimeout)
	defer cancel()
	res, err := d.cfg.Overlord.Targets(data.Minion.Name).OnBehalfOf(u.OnBehalfOf()).Call(ctx, "system", "inventory")
	if hr, ok := res[data.Minion.Name]; ok {
		if hr.AuditHead.Seq > 0 {
			data.AuditHead = hr.AuditHead.String()
		}
		var inv map[string]struct {
			Description string   `xmlrpc:"description"`
			Version     string   `xmlrpc:"version"`
			Methods     []string `xmlrpc:"methods"`
		}
		if err := hr.Decode(&inv); err != nil {
			data.Problem = err.Error()
		}
		for _, name := range slices.Sorted(maps.Keys(inv)) {
			m := inv[name]
			data.Modules = append(data.Modules, moduleView{Name: name, Version: m.Version, Description: m.Description, Methods: m.Methods})
		}
	} else if err != nil {
		data.Problem = err.Error()
	}
	data.Jobs = d.jobsOf(r, u, data.Minion.Name, minionJobs)
	data.Calls, data.Notes = d.recentCalls(u, data.Minion.Name, "", minionCalls)
	data.Events = []eventRow{}
	if data.EventsShown = d.sees(u, eventsMethod); data.EventsShown {
		q := eventsQuery{Spec: data.Minion.Name, Limit: minionEvents}
		var problem string
		data.Events, _, _, problem = d.eventBacklog(r.Context(), u, q, overlord.EventsOptions{From: time.Now().Add(-24 * time.Hour)}, time.Time{})
		if problem != "" {
			data.Notes = append(data.Notes, "events: "+problem)
		}
	}
	d.render(w, r, u, http.StatusOK, "minion", data.Minion.Name, data)
}

// jobsOf lists the newest jobs (at most n) that targeted host and that
// u may see.
func (d *Dashboard) jobsOf(r *http.Request, u User, host string, n int) []jobView {
	out := []jobView{}
	if d.cfg.Jobs == nil {
		return out
	}
	all, err := d.cfg.Overlord.Jobs(r.Context())
	if err != nil {
		d.log.Warn("jobs not listed", "error", err)
		return out
	}
	for _, j := range all {
		if len(out) < n && d.sees(u, j.Method) && slices.ContainsFunc(j.Hosts, func(h string) bool { return strings.EqualFold(h, host) }) {
			out = append(out, viewJob(j))
		}
	}
	return out
}

// naturalCompare orders names as people count: m2 before m10.
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digits(a), digits(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Compare(len(na), len(nb)); c != 0 {
				return c
			}
			if c := strings.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digits(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
