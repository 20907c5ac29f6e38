package caller_test

import (
	"testing"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/fleettest"
)

// A call over the broker is the same call: the result, the call id and
// audit head, and the minion's records naming the transport and the
// envelope.
func TestCallOverBroker(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 3})
	c := e.client(e.f.Admin())
	res, err := c.Targets("*").Call(t.Context(), "test", "add", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	for _, m := range e.f.Minions() {
		r := res[m.Name]
		if r.Err != nil || r.Value != int64(5) || r.CallID == "" || r.AuditHead.Seq == 0 {
			t.Fatalf("%s: %+v", m.Name, r)
		}
		recs := records(t, m.AuditPath, audit.Filter{CallID: r.CallID})
		if len(recs) != 2 || recs[0].Kind != audit.KindCallStart || recs[0].Details["via"] != "nats" ||
			recs[0].Details["signer"] == "" || recs[0].Details["deadline"] == "" || recs[0].Caller != "admin" {
			t.Errorf("%s: records %+v", m.Name, recs)
		}
	}
}
