package ca

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// bigNameEnroll is an enroll call whose name is n '>' characters, raw
// (XML allows them unescaped), as the security review sent it.
func bigNameEnroll(t *testing.T, n int) []byte {
	t.Helper()
	key, _ := newKey()
	csr, err := makeCSR(key, "x")
	if err != nil {
		t.Fatal(err)
	}
	return []byte(`<?xml version="1.0"?><methodCall><methodName>enroll</methodName><params><param><value><struct>` +
		`<member><name>name</name><value><string>` + strings.Repeat(">", n) + `</string></value></member>` +
		`<member><name>csr</name><value><string>` + string(csr) + `</string></value></member>` +
		`</struct></value></param></params></methodCall>`)
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// Issue 11 item 1: a 60 KB request whose name is 60,000 '>' characters
// wrote a ~700 KB fsynced audit record, and 40 of them from two
// addresses added 28 MB. Against the real service over TLS: the record
// is small, the fault quotes a clipped name, and 40 requests from two
// addresses add a bounded number of bounded records.
func TestRefusalAmplificationBounded(t *testing.T) {
	// The clock stands still: the per-source budget refills with time
	// (a record every 5s), and on a loaded machine the 40 requests may
	// take longer than that.
	start := time.Now()
	ts := startService(t, withClock(func() time.Time { return start }))
	body := bigNameEnroll(t, 60000)
	if len(body) > DefaultMaxBodyBytes || len(body) < 60000 {
		t.Fatalf("request of %d bytes, want about 60 KB", len(body))
	}
	before := fileSize(t, ts.auditPath)
	ans, err := rawCall(t, ts.addr, body, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if code := faultCode(t, ans); code != gofunc.CodeBadArgs {
		t.Fatalf("fault code %v, want bad arguments", code)
	}
	if len(ans) > 4<<10 {
		t.Errorf("the fault is %d bytes: it echoes the name", len(ans))
	}
	one := fileSize(t, ts.auditPath) - before
	if one <= 0 || one > 2<<10 {
		t.Errorf("one refusal wrote %d bytes of audit, want a bounded record (≤ 2 KiB)", one)
	}
	recs := ts.auditRecords(t)
	last := recs[len(recs)-1]
	if last.Kind != KindRequest || last.Outcome != "denied" || !strings.Contains(last.Caller, "[60000 bytes, sha256:") ||
		!strings.HasPrefix(last.Caller, strings.Repeat(">", maxRefusedName)) {
		t.Errorf("refusal record = %+v", last)
	}

	// 40 from two addresses, concurrently.
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			local := fmt.Sprintf("127.0.0.%d", 3+i%2)
			if _, err := rawCall(t, ts.addr, body, local); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	grew := fileSize(t, ts.auditPath) - before - one
	// At most the per-source burst from each address is written.
	if max := int64(2*refusalBurst) * (2 << 10); grew > max {
		t.Errorf("40 refusals from two addresses added %d bytes of audit, want at most %d", grew, max)
	}
	t.Logf("audit growth: first refusal %d bytes, 40 more %d bytes (was ~700 KB and 28 MB)", one, grew)

	// Later records say how many were left out.
	recs = ts.auditRecords(t)
	n := 0
	for _, r := range recs {
		if r.Kind == KindRequest && r.Outcome == "denied" {
			n++
		}
	}
	if n > 1+2*refusalBurst {
		t.Errorf("%d refusal records, want at most %d", n, 1+2*refusalBurst)
	}
}

// The count of refusals left out reaches the audit log with the next
// record from the source.
func TestRefusalSuppressedCounted(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a, err := Init(Config{Dir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	allowed := 0
	for range refusalBurst + 7 {
		if ok, _, _ := a.refusals.allow("192.0.2.7:1", clock()); ok {
			allowed++
		}
	}
	if allowed != refusalBurst {
		t.Fatalf("%d refusals recorded in a burst, want %d", allowed, refusalBurst)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	ev, ok := a.refusal("192.0.2.7:2", "bad name", errors.New("bad"))
	if !ok || ev.Details["suppressed_from_source"] != "7" {
		t.Errorf("next record %+v, %v; want suppressed_from_source=7", ev.Details, ok)
	}
}

// IPv6 sources are counted per /64: one host's many addresses are one
// source for rate limits and connection caps.
func TestSourceKey(t *testing.T) {
	tests := map[string]string{
		"192.0.2.1:4000":             "192.0.2.1",
		"192.0.2.1":                  "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2::ffff]:1":     "2001:db8:1:2::/64",
		"[::ffff:192.0.2.9]:1":       "192.0.2.9",
		"not an address":             "not an address",
	}
	for in, want := range tests {
		if got := SourceKey(in); got != want {
			t.Errorf("SourceKey(%q) = %q, want %q", in, got, want)
		}
	}
	var ls limiterSet
	ls.limit, ls.burst, ls.m = 1, 2, map[string]*limiterEntry{}
	now := time.Now()
	for i := range 3 {
		ok := ls.allow(SourceKey(fmt.Sprintf("[2001:db8::%x]:1", i+1)), now)
		if ok != (i < 2) {
			t.Errorf("request %d from the same /64: allowed=%v", i, ok)
		}
	}
}

// The certmaster caps its connections, per source and in all; bare TCP
// connections over the cap are closed at once, and others still enroll.
func TestConnectionCaps(t *testing.T) {
	ts := startService(t, withAutosign("*"), func(s *Service, _ *Config) { s.MaxConns, s.MaxConnsPerSource = 6, 3 })
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 10 * time.Second}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	closedAtOnce := func(c net.Conn) bool {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		c.Close()
		return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err)
	}
	for range 3 {
		held = append(held, dial("127.0.0.5"))
	}
	if !closedAtOnce(dial("127.0.0.5")) {
		t.Error("a 4th connection from one source was kept open")
	}
	for range 3 {
		held = append(held, dial("127.0.0.6"))
	}
	if !closedAtOnce(dial("127.0.0.7")) {
		t.Error("a connection over the total cap was kept open")
	}
	// Freeing slots lets others in again.
	for _, c := range held[:3] {
		c.Close()
	}
	held = held[3:]
	req := ts.enrollReq(t, "m1")
	if _, err := identity.Enroll(testCtx(t), req); err != nil {
		t.Errorf("enrollment after slots were freed: %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}
