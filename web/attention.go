package web

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

// attentionItem is one thing that needs a person, with where to act.
type attentionItem struct {
	// Kind is pending_request, cert_expiring, unreachable,
	// audit_broken, long_job, denials, crl_stale or problem.
	Kind string `json:"kind"`
	// Severity is warning or critical.
	Severity string `json:"severity"`
	Text     string `json:"text"`
	Link     string `json:"link"`
	Action   string `json:"action"`
}

type attentionData struct {
	Items []attentionItem `json:"items"`
	// Checked lists what was looked at, so an empty list says "all is
	// well" rather than "nothing was checked".
	Checked []string `json:"checked"`
}

// attention is the home page: what needs a person now.
func (d *Dashboard) attention(w http.ResponseWriter, r *http.Request, u User) {
	data := attentionData{Items: []attentionItem{}}
	now := time.Now()
	add := func(kind, sev, text, link, action string) {
		data.Items = append(data.Items, attentionItem{Kind: kind, Severity: sev, Text: text, Link: link, Action: action})
	}
	if d.cfg.CA != nil {
		data.Checked = append(data.Checked, "enrollment requests", "certificate expiry")
		d.caAttention(r, now, add)
	}
	data.Checked = append(data.Checked, "minions")
	d.fleetAttention(r, add)
	if len(d.cfg.AuditLogs) > 0 {
		data.Checked = append(data.Checked, "audit chains", "denials")
		d.auditAttention(u, now, add)
	}
	if d.cfg.Jobs != nil {
		data.Checked = append(data.Checked, "jobs")
		d.jobAttention(r, u, now, add)
	}
	if st := d.id.CRLStatus(); st.Stale {
		add("crl_stale", "warning", fmt.Sprintf("the dashboard's CRL is past its next update (%s old): revocations may be missed",
			st.Age.Round(time.Minute)), "/enrollment", "check the certmaster")
	}
	order := map[string]int{"critical": 0, "warning": 1}
	slices.SortStableFunc(data.Items, func(a, b attentionItem) int { return order[a.Severity] - order[b.Severity] })
	d.render(w, r, u, http.StatusOK, "attention", "Attention", data)
}

type addFunc func(kind, severity, text, link, action string)

func (d *Dashboard) caAttention(r *http.Request, now time.Time, add addFunc) {
	reqs, err := d.cfg.CA.Requests(r.Context())
	if err != nil {
		add("problem", "critical", "the CA's requests could not be read: "+err.Error(), "/enrollment", "look")
	}
	for _, q := range reqs {
		if q.Status != ca.StatusPending {
			continue
		}
		text := fmt.Sprintf("%s asks to enroll from %s (key %s)", q.Name, q.Source, q.KeyFingerprint)
		sev := "warning"
		if q.Conflict {
			text += ": " + q.ConflictReason
			sev = "critical"
		}
		add("pending_request", sev, text, "/enrollment/requests/"+q.Name+"/sign", "sign or reject")
	}
	certs, err := d.cfg.CA.Certificates(r.Context())
	if err != nil {
		add("problem", "critical", "the CA's certificates could not be read: "+err.Error(), "/enrollment", "look")
	}
	current := map[string]ca.CertInfo{} // the newest valid certificate of each name and role
	for _, c := range certs {
		k := c.Name + "@" + string(c.Role)
		if !c.Revoked && c.NotAfter.After(current[k].NotAfter) {
			current[k] = c
		}
	}
	for _, c := range current {
		left := c.NotAfter.Sub(now)
		switch {
		case left <= 0:
			add("cert_expiring", "critical", fmt.Sprintf("%s's %s certificate expired %s", c.Name, c.Role,
				c.NotAfter.UTC().Format(time.DateOnly)), "/enrollment", "renew or re-issue")
		case left < d.cfg.ExpiryWarning:
			add("cert_expiring", "warning", fmt.Sprintf("%s's %s certificate expires in %s (%s)", c.Name, c.Role,
				roundDays(left), c.NotAfter.UTC().Format(time.DateOnly)), "/enrollment", "renew")
		}
	}
}

func roundDays(d time.Duration) string {
	if d < 48*time.Hour {
		return d.Round(time.Hour).String()
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

func (d *Dashboard) fleetAttention(r *http.Request, add addFunc) {
	rows, err := d.fleetRows(r.Context(), "")
	if err != nil {
		add("problem", "critical", "the minion list could not be read: "+err.Error(), "/fleet", "look")
		return
	}
	for _, row := range rows {
		if row.Status == "unreachable" {
			text := row.Name + " is unreachable: " + row.Problem
			if !row.LastSeen.IsZero() {
				text += " (last seen " + row.LastSeen.UTC().Format(time.RFC3339) + ")"
			}
			add("unreachable", "critical", text, "/fleet/"+row.Name, "look")
		}
	}
}

func (d *Dashboard) auditAttention(u User, now time.Time, add addFunc) {
	for _, c := range d.chains() {
		switch c.State {
		case "broken":
			add("audit_broken", "critical", fmt.Sprintf("audit log %s is %s: %s", c.Name, c.Text(), c.Problem),
				"/audit?log="+c.Name, "investigate")
		case "unreadable":
			add("audit_broken", "critical", fmt.Sprintf("audit log %s cannot be read: %s", c.Name, c.Problem),
				"/audit?log="+c.Name, "investigate")
		}
	}
	counts := d.denials(u, now.Add(-time.Hour))
	for _, log := range slices.Sorted(maps.Keys(counts)) {
		c := counts[log]
		total := 0
		var who []string
		for name, n := range c.by {
			total += n
			who = append(who, fmt.Sprintf("%s (%d)", name, n))
		}
		if total >= d.cfg.DenialSpike {
			slices.Sort(who)
			link := "/audit?log=" + log + "&outcome=denied&since=1h"
			if c.fromEnds {
				link = "/audit?log=" + log + "&kind=" + audit.KindOverlordCallEnd + "&outcome=error&since=1h"
			}
			add("denials", "warning", fmt.Sprintf("%d denials in the last hour in %s: %s", total, log, strings.Join(who, ", ")),
				link, "look")
		}
	}
}

// denialCount is one log's denials by who was denied.
type denialCount struct {
	by map[string]int
	// fromEnds is set when they were read from an overlord's call-end
	// records (each host's refusal) rather than a minion's denials.
	fromEnds bool
}

// deniedMark is how a host's refusal reads in an overlord's call-end
// record: the text of a denied fault.
var deniedMark = strings.TrimSpace((&gofunc.Fault{Code: gofunc.CodeDenied}).Error())

// denials counts, per log, the refusals since then: a minion's denied
// records (by caller, or the person a delegate called for), and the
// hosts that refused an overlord's calls (by the person the call was
// for, else the overlord).
func (d *Dashboard) denials(u User, since time.Time) map[string]*denialCount {
	counts := map[string]*denialCount{}
	count := func(log, who string, n int, fromEnd bool) {
		c := counts[log]
		if c == nil {
			c = &denialCount{by: map[string]int{}}
			counts[log] = c
		}
		c.by[who] += n
		c.fromEnds = c.fromEnds || fromEnd
	}
	persons := map[string]string{} // log and call id -> the person an overlord call was for
	d.search(u, auditQuery{}, audit.Filter{Since: since}, func(row auditRow) error {
		switch {
		case row.Outcome == audit.OutcomeDenied:
			who := row.Caller
			if p := row.Details["on_behalf_of"]; p != "" {
				who = p
			}
			count(row.Log, who, 1, false)
		case row.Kind == audit.KindOverlordCall && row.Details["on_behalf_of"] != "":
			persons[row.Log+"\x00"+row.CallID] = row.Details["on_behalf_of"]
		case row.Kind == audit.KindOverlordCallEnd && row.Outcome == audit.OutcomeError:
			n := 0
			for _, text := range row.Details {
				if strings.Contains(text, deniedMark) {
					n++
				}
			}
			if n > 0 {
				who := cmp.Or(persons[row.Log+"\x00"+row.CallID], row.Caller)
				count(row.Log, who, n, true)
			}
		}
		return nil
	})
	return counts
}

func (d *Dashboard) jobAttention(r *http.Request, u User, now time.Time, add addFunc) {
	jobs, err := d.cfg.Overlord.Jobs(r.Context())
	if err != nil {
		add("problem", "critical", "the jobs could not be read: "+err.Error(), "/jobs", "look")
		return
	}
	for _, j := range jobs {
		if j.State == overlord.JobRunning && now.Sub(j.Created) > d.cfg.LongJob && d.sees(u, j.Method) {
			add("long_job", "warning", fmt.Sprintf("job %s (%s on %s) has run for %s: %d of %d hosts answered",
				j.ID, j.Method, j.Spec, now.Sub(j.Created).Round(time.Second), j.Answered, len(j.Hosts)), "/jobs/"+j.ID, "follow")
		}
	}
}
