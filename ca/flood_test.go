package ca

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

// enrollRaw sends one enroll call with a fresh CSR for name (or with
// key's, when given) and returns the answer's status, or the fault code.
func enrollRaw(t *testing.T, ts *testService, name string, key *ecdsaKey, local string) (string, gofunc.Code) {
	t.Helper()
	if key == nil {
		key, _ = newKey()
	}
	csr, err := makeCSR(key, name)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := rawCall(t, ts.addr, encodeCall(t, "enroll", map[string]any{"csr": string(csr), "name": name}), local)
	if err != nil {
		t.Fatal(err)
	}
	if code := faultCode(t, ans); code != 0 {
		return "", code
	}
	var got struct {
		Status string `xmlrpc:"status"`
	}
	if err := ans.Unmarshal(&got); err != nil {
		t.Fatal(err)
	}
	return got.Status, 0
}

func deniedRequests(recs []audit.Record) int {
	n := 0
	for _, r := range recs {
		if r.Kind == KindRequest && r.Outcome == audit.OutcomeDenied && r.Details["max_stored"] != "" {
			n++
		}
	}
	return n
}

func TestStoredRequestCap(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ts := startService(t, withClock(clock), func(_ *Service, c *Config) { c.MaxStored = 3 })
	keys := make([]*ecdsaKey, 3)
	for i := range keys {
		keys[i], _ = newKey()
		if st, code := enrollRaw(t, ts, fmt.Sprintf("m%d", i), keys[i], ""); st != "pending" || code != 0 {
			t.Fatalf("request %d = %q, fault %v", i, st, code)
		}
	}
	// Full: new names are refused, busy, and nothing is stored...
	for i := 3; i < 6; i++ {
		if st, code := enrollRaw(t, ts, fmt.Sprintf("m%d", i), nil, ""); code != gofunc.CodeBusy {
			t.Errorf("request %d over the cap = %q, fault %v; want busy", i, st, code)
		}
	}
	if reqs, _ := ts.Authority.Requests(); len(reqs) != 3 {
		t.Errorf("%d requests stored, want 3", len(reqs))
	}
	// ...while the stored ones are still answered.
	if st, code := enrollRaw(t, ts, "m0", keys[0], ""); st != "pending" || code != 0 {
		t.Errorf("poll of a stored request = %q, fault %v", st, code)
	}
	// Three refusals within a minute: one audit record.
	if n := deniedRequests(ts.auditRecords(t)); n != 1 {
		t.Errorf("%d audit records of refusals, want 1 per minute", n)
	}
	offset.Store(int64(61 * time.Second))
	if _, code := enrollRaw(t, ts, "m9", nil, ""); code != gofunc.CodeBusy {
		t.Errorf("over the cap a minute later: fault %v, want busy", code)
	}
	if n := deniedRequests(ts.auditRecords(t)); n != 2 {
		t.Errorf("%d audit records of refusals after a minute, want 2", n)
	}
	// Cleaning makes room.
	if _, err := ts.Authority.Clean("m1"); err != nil {
		t.Fatal(err)
	}
	if st, code := enrollRaw(t, ts, "m9", nil, ""); st != "pending" || code != 0 {
		t.Errorf("after clean = %q, fault %v", st, code)
	}
}

// Names differing only in case are one name, through the service: a
// second key asking for "m1" after "M1" is a conflict, and a signed M1
// holds the name m1 against another key.
func TestNameCaseCollisionsThroughService(t *testing.T) {
	ts := startService(t)
	k1, _ := newKey()
	k2, _ := newKey()
	if st, code := enrollRaw(t, ts, "M1", k1, ""); st != "pending" || code != 0 {
		t.Fatalf("M1 = %q, fault %v", st, code)
	}
	if st, code := enrollRaw(t, ts, "m1", k2, ""); st != string(StatusConflict) || code != 0 {
		t.Errorf("m1 with another key = %q, fault %v; want conflict", st, code)
	}
	pend, _ := ts.Authority.Pending()
	if len(pend) != 1 || pend[0].Name != "m1" || !pend[0].Conflict {
		t.Fatalf("pending = %+v, want one m1 marked in conflict", pend)
	}
	if _, err := ts.Authority.Clean("*"); err != nil {
		t.Fatal(err)
	}
	if st, _ := enrollRaw(t, ts, "M1", k1, ""); st != "pending" {
		t.Fatalf("M1 again = %q", st)
	}
	signed, err := ts.Authority.Sign("M1")
	if err != nil || len(signed) != 1 || signed[0].Name != "m1" {
		t.Fatalf("Sign(M1) = %+v, %v", signed, err)
	}
	if st, _ := enrollRaw(t, ts, "m1", k1, ""); st != string(StatusSigned) {
		t.Errorf("m1 with the signed key = %q, want signed", st)
	}
	for _, n := range []string{"m1", "M1", "m1"} {
		if st, code := enrollRaw(t, ts, n, k2, ""); st != string(StatusConflict) || code != 0 {
			t.Errorf("%s with another key after signing = %q, fault %v; want conflict", n, st, code)
		}
	}
}
