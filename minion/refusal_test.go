package minion_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
)

// paddedCall is a call to method with n string parameters of size bytes.
func paddedCall(t testing.TB, method string, n, size int) []byte {
	t.Helper()
	params := make([]any, n)
	for i := range params {
		params[i] = strings.Repeat(string(rune('a'+i%26)), size)
	}
	var body bytes.Buffer
	if err := xmlrpc.EncodeCall(&body, method, params...); err != nil {
		t.Fatal(err)
	}
	return body.Bytes()
}

// afterName is what follows </methodName> in a call body.
func afterName(t testing.TB, body []byte) []byte {
	t.Helper()
	_, rest, ok := bytes.Cut(body, []byte("</methodName>"))
	if !ok {
		t.Fatalf("no </methodName> in the body")
	}
	return rest
}

// A denied call is recorded however many parameters it is padded with:
// its record says how many there were, how many bytes they took and
// their digest, without holding them. (The review padded command.shell
// with 300 parameters: the record went over the audit log's line limit
// and was dropped.)
func TestPaddedDenialIsRecorded(t *testing.T) {
	e := start(t, func(s *minion.Server) { mustRegister(t, s, "command", &command.Module{}) })
	mallory := e.client(gofunc.RoleMinion, "m2.test")
	shell := paddedCall(t, "command.shell", 300, 16<<10)
	echo := paddedCall(t, "test.echo", 300, 16<<10)
	for _, body := range [][]byte{shell, echo} {
		_, err := e.post(mallory, bytes.NewBuffer(body), nil)
		wantFault(t, "a padded call from a minion", err, gofunc.CodeDenied)
	}
	recs := e.records()
	if len(recs) != 2 {
		t.Fatalf("%d records, want the two denials: %v", len(recs), recs)
	}
	for i, body := range [][]byte{shell, echo} {
		r := recs[i]
		rest := afterName(t, body)
		if r.Kind != audit.KindCallDenied || r.Caller != "m2.test" || r.Role != "minion" || len(r.Args) != 0 ||
			r.Details["params"] != "300" || r.Details["rest_bytes"] != strconv.Itoa(len(rest)) || r.Details["rest_error"] != "" {
			t.Errorf("record %d = %+v\nwant a denial of m2.test counting 300 parameters in %d bytes", i, r, len(rest))
		}
	}
	if got := recs[0].Details["rest_sha256"]; !strings.HasPrefix(got, "omitted") {
		t.Errorf("command.shell's record digests its arguments (%q), which may hold secrets", got)
	}
	sum := sha256.Sum256(afterName(t, echo))
	if got := recs[1].Details["rest_sha256"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("test.echo's record digest = %q, want the SHA-256 of what followed the method name", got)
	}
	if _, err := audit.VerifyLog(e.auditPath); err != nil {
		t.Errorf("audit log: %v", err)
	}
}

// Refusal records are rate limited per caller: a flood of denied calls
// writes a burst of records and then a counted summary, so the log
// grows by kilobytes, not by what the caller sent; every refusal is
// still accounted for, and other callers keep their own budget.
func TestDenialFloodIsRateLimited(t *testing.T) {
	e := start(t, nil)
	mallory := e.client(gofunc.RoleMinion, "m2.test")
	defer mallory.CloseIdleConnections()
	body := paddedCall(t, "test.echo", 4, 4<<10)
	const flood = 200
	for range flood {
		_, err := e.postCtx(context.Background(), mallory, body, nil)
		wantFault(t, "a minion calling test.echo", err, gofunc.CodeDenied)
	}
	// Another caller still gets its refusals recorded one by one.
	if _, err := e.call(e.client(gofunc.RoleMinion, "m3.test"), "test.ping"); err == nil {
		t.Fatal("m3.test may call test.ping")
	}
	if st := e.srv.Stats(); st.Denied != flood+1 {
		t.Errorf("Stats.Denied = %d, want %d", st.Denied, flood+1)
	}
	e.stop() // writes the summaries still pending

	info, err := os.Stat(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() > 256<<10 {
		t.Errorf("the audit log grew to %d bytes for %d denials of %d-byte calls", info.Size(), flood, len(body))
	}
	var recorded, suppressed, m3 int
	for _, r := range e.records() {
		switch {
		case r.Caller == "m3.test" && r.Kind == audit.KindCallDenied:
			m3++
		case r.Kind == audit.KindCallDenied:
			recorded++
		case r.Kind == audit.KindCallsSuppressed:
			n, err := strconv.Atoi(r.Details["denied"])
			if err != nil || r.Caller != "m2.test" || r.Role != "minion" || r.Details["methods"] != "test.echo" ||
				r.Details["suppressed"] != r.Details["denied"] || !strings.Contains(r.Error, r.Details["suppressed"]+" more refusals") {
				t.Errorf("summary %+v, want a count of m2.test's denied test.echo calls", r)
			}
			suppressed += n
		default:
			t.Errorf("unexpected record %v", r)
		}
	}
	if recorded+suppressed != flood || suppressed == 0 || recorded > flood/2 || m3 != 1 {
		t.Errorf("%d denials recorded one by one and %d counted in summaries (m3.test: %d); want %d in all, most of them counted",
			recorded, suppressed, m3, flood)
	}
}

// The ACL is decided from the method name alone, before the parameters
// are decoded: a caller that may not call a method is told so even when
// what follows the name is malformed, too deep or too large to decode.
func TestACLIsDecidedBeforeParams(t *testing.T) {
	e := start(t, nil)
	mallory := e.client(gofunc.RoleMinion, "m2.test")
	admin := e.client(gofunc.RoleOverlord, "admin")
	deep := strings.Repeat("<value><array><data>", 100) + strings.Repeat("</data></array></value>", 100)
	bodies := map[string]string{
		"bad int":  "<methodCall><methodName>test.echo</methodName><params><param><value><int>12x</int></value></param></params></methodCall>",
		"too deep": "<methodCall><methodName>test.echo</methodName><params><param>" + deep + "</param></params></methodCall>",
		"truncated": "<methodCall><methodName>test.echo</methodName><params><param><value><string>" +
			strings.Repeat("x", 32<<10),
	}
	for name, body := range bodies {
		_, err := e.post(mallory, bytes.NewBufferString(body), nil)
		wantFault(t, name+" from a minion", err, gofunc.CodeDenied, "may not call test.echo")
		// The same body from a caller the ACL allows is decoded, and
		// refused for what it is.
		_, err = e.post(admin, bytes.NewBufferString(body), nil)
		if f := gofunc.AsFault(err); f.Code == gofunc.CodeDenied || err == nil {
			t.Errorf("%s from an overlord: %v, want a decoding fault", name, err)
		}
	}
}

// The concurrency slot is taken before the parameters are decoded: when
// the minion is busy, a call is refused as busy without its parameters
// being decoded (here they would not decode at all).
func TestBusyBeforeParams(t *testing.T) {
	e, g := startGate(t, func(s *minion.Server) { s.MaxConcurrent = 1 })
	admin := e.client(gofunc.RoleOverlord, "admin")
	done := make(chan error, 1)
	go func() {
		_, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "gate.wait", "hold")
		done <- err
	}()
	recv(t, "the call holding the only slot", g.started)
	bad := "<methodCall><methodName>test.echo</methodName><params><param><value><int>12x</int></value></param></params></methodCall>"
	_, err := e.post(admin, bytes.NewBufferString(bad), nil)
	wantFault(t, "a malformed call while busy", err, gofunc.CodeBusy)
	close(g.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, err = e.post(admin, bytes.NewBufferString(bad), nil)
	wantFault(t, "the malformed call once a slot is free", err, gofunc.CodeInvalid)
}

// heapObjects is the bytes of heap objects now, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// peakHeap samples the heap until stop is closed and returns the
// highest value it saw.
func peakHeap(stop <-chan struct{}) <-chan uint64 {
	out := make(chan uint64, 1)
	go func() {
		var peak uint64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, heapObjects())
			select {
			case <-stop:
				out <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// 32 concurrent 8 MiB calls from a minion certificate, which may call
// nothing, cost the minion little memory: they are refused on their
// method name, and the bodies whose refusal is recorded are read
// without being decoded. (Before, each was decoded whole before the
// ACL: about 1 GB of heap.) Meanwhile an overlord is served.
func TestLargeDeniedCallsDoNotExhaustMemory(t *testing.T) {
	// Handshakes may be slow on a loaded machine under -race; they are
	// not what this test is about.
	e := start(t, func(s *minion.Server) { s.HandshakeTimeout = time.Minute })
	// One 8 MiB body, shared read-only by every sender so that the test
	// itself stays small: one string parameter, which a decoder holds
	// several times over (its buffer, the text, the string).
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\"?><methodCall><methodName>test.echo</methodName><params><param><value><string>")
	const end = "</string></value></param></params></methodCall>"
	b.Write(bytes.Repeat([]byte("x"), minion.DefaultMaxBodyBytes-b.Len()-len(end)))
	b.WriteString(end)
	body := b.Bytes()

	runtime.GC()
	base := heapObjects()
	stop := make(chan struct{})
	peak := peakHeap(stop)

	const senders = 32
	var wg sync.WaitGroup
	var mu sync.Mutex
	denied := 0
	for range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(gofunc.RoleMinion, "m2.test")
			c.Timeout = 5 * time.Minute // 256 MiB through TLS, on a loaded machine
			defer c.CloseIdleConnections()
			req, err := http.NewRequest(http.MethodPost, "https://"+e.addr+"/RPC2", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := c.Do(req)
			if err != nil {
				// The minion may answer and hang up before the whole
				// body is sent (a refusal it does not read to the end).
				return
			}
			defer resp.Body.Close()
			_, err = xmlrpc.DecodeResponse(resp.Body, xmlrpc.DefaultLimits)
			if f := gofunc.AsFault(err); f.Code != gofunc.CodeDenied {
				t.Errorf("8 MiB call from a minion: %v, want a denial", err)
				return
			}
			mu.Lock()
			denied++
			mu.Unlock()
		}()
	}
	goodCaller(t, e, 3)
	wg.Wait()
	close(stop)
	growth := int64(<-peak) - int64(base)
	t.Logf("heap peak %d MiB over a %d MiB base; %d of %d senders read their denial", growth>>20, base>>20, denied, senders)
	if growth > 96<<20 {
		t.Errorf("the heap grew by %d MiB under %d concurrent %d MiB denied calls, want under 96 MiB", growth>>20, senders, len(body)>>20)
	}
	if denied == 0 {
		t.Error("no sender got its denial")
	}
	e.stop()
	var accounted int
	for _, r := range e.records() {
		switch r.Kind {
		case audit.KindCallDenied:
			accounted++
			if r.Details["params"] != "1" || r.Details["rest_bytes"] != fmt.Sprint(len(afterName(t, body))) {
				t.Errorf("denial record %+v, want 1 parameter in %d bytes", r.Details, len(afterName(t, body)))
			}
		case audit.KindCallsSuppressed:
			n, _ := strconv.Atoi(r.Details["denied"])
			accounted += n
		}
	}
	if accounted != senders {
		t.Errorf("%d of %d denials accounted for in the audit log; %+v", accounted, senders, e.srv.Stats())
	}
}
