package web

import (
	"strings"
	"time"

	"github.com/gofunc/gofunc/audit"
)

// callView is one call an overlord made, as its audit log tells it: the
// overlord.call record (who, what, where) joined with its
// overlord.call.end (how it went). Calls from the command line are here
// when their overlord's log is one of the dashboard's --audit-log.
type callView struct {
	Log    string    `json:"log"`
	CallID string    `json:"call_id"`
	Time   time.Time `json:"time"`
	Caller string    `json:"caller"`
	Role   string    `json:"role,omitempty"`
	// For is the person a delegate called for, "" for a caller acting
	// for itself.
	For    string `json:"on_behalf_of,omitempty"`
	Method string `json:"method"`
	Spec   string `json:"spec,omitempty"`
	Hosts  int    `json:"hosts"`
	// Outcome is ok, error (a host failed) or "" while the call has no
	// end record (running, or its overlord stopped).
	Outcome  string        `json:"outcome,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// callKinds matches the overlord's call and call-end records.
const callKinds = audit.KindOverlordCall + "*"

// recentCalls lists the newest calls (at most n, newest first) in the
// audit logs that u may see; minion, when set, keeps those that
// targeted it. The dashboard's own status calls (its caller name, for
// no one) are left out: they are its upkeep, not anyone's call.
func (d *Dashboard) recentCalls(u User, minion, method string, n int) (calls []callView, problems []string) {
	// A call is two records: read enough to pair the newest n.
	q := auditQuery{Minion: minion, Limit: 4 * n}
	rows, _, problems := d.newest(u, q, audit.Filter{Kind: callKinds, Method: method})
	ends := map[string]audit.Record{}
	for _, row := range rows {
		if row.Kind == audit.KindOverlordCallEnd {
			ends[row.Log+"\x00"+row.CallID] = row.Record
		}
	}
	self := d.id.Name()
	for _, row := range rows {
		if row.Kind != audit.KindOverlordCall || len(calls) == n {
			continue
		}
		c := callView{Log: row.Log, CallID: row.CallID, Time: row.Time, Caller: row.Caller, Role: row.Role,
			For: row.Details["on_behalf_of"], Method: row.Method, Spec: row.Details["spec"], Hosts: len(row.Targets)}
		if c.For == "" && strings.EqualFold(c.Caller, self) {
			continue
		}
		if end, ok := ends[row.Log+"\x00"+row.CallID]; ok {
			c.Outcome, c.Error, c.Duration = end.Outcome, end.Error, end.Duration
		}
		calls = append(calls, c)
	}
	if calls == nil {
		calls = []callView{}
	}
	return calls, problems
}
