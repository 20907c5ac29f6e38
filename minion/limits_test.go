package minion_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
)

// gate is a module whose calls block until released or cancelled, and
// tell the test when they start and when they see their context end.
type gate struct {
	started  chan string
	canceled chan string
	release  chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan string, 100), canceled: make(chan string, 100), release: make(chan struct{})}
}

func (g *gate) Wait(ctx context.Context, tag string) (string, error) {
	g.started <- tag
	select {
	case <-g.release:
		return tag, nil
	case <-ctx.Done():
		g.canceled <- tag
		return "", ctx.Err()
	}
}

func startGate(t *testing.T, configure func(*minion.Server)) (*env, *gate) {
	g := newGate()
	e := start(t, func(s *minion.Server) {
		mustRegister(t, s, "gate", g)
		if configure != nil {
			configure(s)
		}
	})
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	})
	return e, g
}

func recv(t *testing.T, what string, ch <-chan string) string {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(15 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return ""
	}
}

// goodCaller checks that a well-behaved caller is answered, n times,
// on fresh connections (so that it needs the accept loop and a slot).
func goodCaller(t *testing.T, e *env, n int) {
	t.Helper()
	c := e.client(gofunc.RoleOverlord, "good")
	for i := range n {
		if got, err := e.call(c, "test.echo", i); err != nil || got != int64(i) {
			t.Fatalf("well-behaved call %d during the abuse: %v, %v", i, got, err)
		}
	}
}

// dialFrom opens a TCP connection to addr from the loopback address src,
// so that an abuser and the well-behaved caller have different IPs.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	return c
}

// waitClosed reads from c until the server closes it.
func waitClosed(c net.Conn) error {
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return err
	}
	return nil
}

func TestOversizedBodyIsRefused(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.MaxBodyBytes = 64 << 10 })
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err := e.call(c, "test.echo", strings.Repeat("x", 100<<10))
	wantFault(t, "100 KiB body", err, gofunc.CodeTooLarge, "65536")

	// The same without a Content-Length: chunked, refused as it streams.
	var body bytes.Buffer
	xmlrpcEncodeCall(t, &body, "test.echo", strings.Repeat("x", 100<<10))
	req, err := http.NewRequest(http.MethodPost, "https://"+e.addr+"/RPC2", io.MultiReader(&body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, err = xmlrpc.DecodeResponse(resp.Body, xmlrpc.DefaultLimits)
	resp.Body.Close()
	c.CloseIdleConnections()
	wantFault(t, "100 KiB chunked body", err, gofunc.CodeTooLarge)
	goodCaller(t, e, 3)
}

func TestMalformedRequestsAreFaults(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	cases := []struct {
		name string
		body string
		code gofunc.Code
	}{
		{"truncated", "<methodCall><methodName>test.ping</methodName><params>", gofunc.CodeParse},
		{"not xml", "GET me a ping", gofunc.CodeParse},
		{"not a call", "<methodResponse><params/></methodResponse>", gofunc.CodeInvalid},
		{"bad int", "<methodCall><methodName>test.echo</methodName><params><param><value><int>12x</int></value></param></params></methodCall>", gofunc.CodeInvalid},
		{"entity bomb", `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><methodCall><methodName>&lol;</methodName></methodCall>`, gofunc.CodeInvalid},
		{"empty", "", gofunc.CodeParse},
	}
	for _, tc := range cases {
		_, err := e.post(c, bytes.NewBufferString(tc.body), nil)
		var f *gofunc.Fault
		if !errors.As(err, &f) || (f.Code != tc.code && f.Code != gofunc.CodeParse && f.Code != gofunc.CodeInvalid) {
			t.Errorf("%s: %v, want a parse or invalid-request fault", tc.name, err)
		}
	}
	for _, r := range e.records() {
		if r.Kind != "call.rejected" || r.Caller != "admin" {
			t.Errorf("record %+v, want a rejection naming the caller", r)
		}
	}
	goodCaller(t, e, 3)
}

func TestDeeplyNestedValueIsRefused(t *testing.T) {
	e := start(t, nil)
	var b strings.Builder
	b.WriteString("<methodCall><methodName>test.echo</methodName><params><param>")
	const depth = 200
	for range depth {
		b.WriteString("<value><array><data>")
	}
	for range depth {
		b.WriteString("</data></array></value>")
	}
	b.WriteString("</param></params></methodCall>")
	_, err := e.post(e.client(gofunc.RoleOverlord, "admin"), bytes.NewBufferString(b.String()), nil)
	wantFault(t, "200-deep array", err, gofunc.CodeTooLarge)
	goodCaller(t, e, 3)
}

func TestResultOverLimitIsFault(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.MaxResultBytes = 1024 })
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err := e.call(c, "test.echo", strings.Repeat("y", 4096))
	wantFault(t, "4 KiB result", err, gofunc.CodeTooLarge, "1024")
	recs := e.records()
	if end := recs[len(recs)-1]; end.Kind != "call.end" || end.Code != int(gofunc.CodeTooLarge) {
		t.Errorf("end record = %+v, want the too-large fault", end)
	}
	if got, err := e.call(c, "test.echo", "small"); err != nil || got != "small" {
		t.Errorf("small echo = %v, %v", got, err)
	}
}

// Beyond MaxConcurrent, calls are refused at once with CodeBusy, without
// an audit record; when calls finish, callers are served again.
func TestBusyIsImmediateAndCheap(t *testing.T) {
	e, g := startGate(t, func(s *minion.Server) { s.MaxConcurrent = 2 })
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := e.client(gofunc.RoleOverlord, "admin")
			if got, err := e.call(c, "gate.wait", fmt.Sprint(i)); err != nil {
				t.Errorf("gate.wait %d: %v, %v", i, got, err)
			}
		}()
	}
	recv(t, "first call", g.started)
	recv(t, "second call", g.started)
	before := len(e.records())
	c := e.client(gofunc.RoleOverlord, "admin")
	for range 5 {
		_, err := e.call(c, "test.ping")
		wantFault(t, "third call", err, gofunc.CodeBusy, "2 calls in flight")
	}
	if after := len(e.records()); after != before {
		t.Errorf("busy refusals wrote %d audit records", after-before)
	}
	if st := e.srv.Stats(); st.Busy != 5 || st.InFlight < 2 {
		t.Errorf("Stats = %+v, want 5 busy and 2 in flight", st)
	}
	close(g.release)
	wg.Wait()
	goodCaller(t, e, 3)
}

func TestCallerDeadlineTravels(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	h := http.Header{gofunc.TimeoutHeader: {"200ms"}}
	_, err := e.callCtx(context.Background(), c, h, "test.sleep", 30)
	wantFault(t, "sleep 30s with 200ms budget", err, gofunc.CodeTimeout)
	for _, bad := range []string{"soon", "-1s", "0s", strings.Repeat("9", 100) + "h"} {
		_, err := e.callCtx(context.Background(), c, http.Header{gofunc.TimeoutHeader: {bad}}, "test.ping")
		wantFault(t, "timeout header "+bad, err, gofunc.CodeInvalid, gofunc.TimeoutHeader)
	}
}

func TestMaxCallTimeoutCapsCalls(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.MaxCallTimeout = 200 * time.Millisecond })
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err := e.call(c, "test.sleep", 30)
	wantFault(t, "sleep 30s under a 200ms cap", err, gofunc.CodeTimeout)
	_, err = e.callCtx(context.Background(), c, http.Header{gofunc.TimeoutHeader: {"1h"}}, "test.sleep", 30)
	wantFault(t, "sleep 30s asking 1h under a 200ms cap", err, gofunc.CodeTimeout)
	c.CloseIdleConnections()
}

// When the caller disconnects, the method's context ends promptly and
// the end record says the call was cancelled.
func TestDisconnectCancelsTheMethod(t *testing.T) {
	e, g := startGate(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := e.callCtx(ctx, c, nil, "gate.wait", "left")
		done <- err
	}()
	recv(t, "the call to start", g.started)
	cancel()
	if got := recv(t, "the method to see its context end", g.canceled); got != "left" {
		t.Fatalf("cancelled %q", got)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client error = %v", err)
	}
	eventually(t, "the end record", func() bool {
		recs := e.records()
		last := recs[len(recs)-1]
		return last.Kind == "call.end" && last.Code == int(gofunc.CodeCanceled)
	})
}

// The caller's deadline reaches processes a module starts: command.run
// kills the process group when the call's context ends.
func TestDeadlineKillsProcesses(t *testing.T) {
	e := start(t, func(s *minion.Server) { mustRegister(t, s, "command", &command.Module{}) })
	pidFile := filepath.Join(t.TempDir(), "pid")
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err := e.callCtx(context.Background(), c, http.Header{gofunc.TimeoutHeader: {"500ms"}},
		"command.run", []string{"sh", "-c", "echo $$ > " + pidFile + "; exec sleep 30"})
	c.CloseIdleConnections()
	wantFault(t, "command.run sleep 30 with a 500ms budget", err, gofunc.CodeTimeout)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the process to die", func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid)
	})
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && strings.Contains(string(stat), ") Z ")
}

// Slow-loris clients, before and after the TLS handshake and while
// sending a body, are cut off by the read timeouts; a well-behaved
// caller is answered all the while.
func TestSlowLorisIsCutOff(t *testing.T) {
	// Limits short enough for the test, long enough for the
	// well-behaved caller's handshakes and requests on a loaded machine.
	e := start(t, func(s *minion.Server) {
		s.HandshakeTimeout = 2 * time.Second
		s.ReadHeaderTimeout = time.Second
		s.ReadTimeout = 2 * time.Second
	})
	mallory := e.identity(gofunc.RoleOverlord, "mallory")
	kinds := map[string]func() (net.Conn, []byte){
		"handshake": func() (net.Conn, []byte) {
			return dialFrom(t, "127.0.0.2", e.addr), []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc}
		},
		"headers": func() (net.Conn, []byte) {
			return tlsFrom(t, "127.0.0.2", e.addr, mallory.ClientTLSConfig("m1.test")), []byte("POST /RPC2 HTTP/1.1\r\nHost: m1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
		},
		"body": func() (net.Conn, []byte) {
			return tlsFrom(t, "127.0.0.2", e.addr, mallory.ClientTLSConfig("m1.test")),
				[]byte("POST /RPC2 HTTP/1.1\r\nHost: m1\r\nContent-Length: 4000\r\n\r\n<methodCall><methodName>test.ping</methodName>" + strings.Repeat(" ", 200))
		},
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	closed := make(chan string, 30)
	for kind, open := range kinds {
		for range 10 {
			conn, payload := open()
			wg.Add(2)
			go func() { // trickle a byte every 50ms until the server hangs up
				defer wg.Done()
				for _, b := range payload {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					if _, err := conn.Write([]byte{b}); err != nil {
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				if err := waitClosed(conn); err == nil {
					closed <- kind
				}
				conn.Close()
			}()
		}
	}
	goodCaller(t, e, 20)
	for range 30 {
		recv(t, "a slow client to be cut off", closed)
	}
	close(stop)
	wg.Wait()
	goodCaller(t, e, 2)
}

func tlsFrom(t *testing.T, src, addr string, cfg *tls.Config) net.Conn {
	t.Helper()
	c := tls.Client(dialFrom(t, src, addr), cfg)
	if err := c.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return c
}

// A flood of authenticated, idle connections from one host is capped by
// MaxConnsPerIP: the excess is closed as soon as its handshake is done,
// and another host is still served.
func TestConnectionFloodIsCapped(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.MaxConnsPerIP = 8 })
	const flood = 40
	cfg := e.identity(gofunc.RoleOverlord, "hog").ClientTLSConfig("m1.test")
	conns := make([]net.Conn, flood)
	for i := range conns {
		conns[i] = tlsFrom(t, "127.0.0.3", e.addr, cfg)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	eventually(t, "the excess connections to be refused", func() bool { return e.srv.Stats().ConnsRefused == flood-8 })
	closed := 0
	for _, c := range conns[8:] {
		if waitClosed(c) == nil {
			closed++
		}
	}
	if closed != flood-8 {
		t.Errorf("%d of the %d connections over the limit were closed", closed, flood-8)
	}
	goodCaller(t, e, 10)
}

func TestGetIsRefused(t *testing.T) {
	e := start(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + e.addr + "/RPC2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET = %s, Allow %q", resp.Status, resp.Header.Get("Allow"))
	}
}

func xmlrpcEncodeCall(t *testing.T, w io.Writer, method string, params ...any) {
	t.Helper()
	if err := xmlrpc.EncodeCall(w, method, params...); err != nil {
		t.Fatal(err)
	}
}

// Shutdown drains: a call in flight is answered, new connections are
// refused, and Serve returns ErrServerClosed. Close is idempotent.
func TestShutdownDrainsCallsInFlight(t *testing.T) {
	e, g := startGate(t, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	answer := make(chan error, 1)
	go func() {
		got, err := e.call(c, "gate.wait", "drained")
		if err == nil && got != "drained" {
			err = fmt.Errorf("got %v", got)
		}
		answer <- err
	}()
	recv(t, "the call to start", g.started)
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(context.Background()) }()
	eventually(t, "the listener to close", func() bool {
		conn, err := net.Dial("tcp", e.addr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a call in flight", err)
	default:
	}
	close(g.release)
	if err := <-answer; err != nil {
		t.Errorf("the call in flight: %v", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := e.srv.Close(); err != nil {
		t.Errorf("Close after Shutdown = %v", err)
	}
	if err := e.srv.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
