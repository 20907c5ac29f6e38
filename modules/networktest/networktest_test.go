package networktest

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestIsPortOpen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	m := &Module{}
	if open, err := m.IsPortOpen(t.Context(), "127.0.0.1", port, 2); !open || err != nil {
		t.Fatalf("IsPortOpen(listening) = %v, %v", open, err)
	}
	if open, err := m.IsPortOpen(t.Context(), "localhost", port, 0); !open || err != nil {
		t.Fatalf("IsPortOpen(localhost) = %v, %v", open, err)
	}
	ln.Close()
	if open, err := m.IsPortOpen(t.Context(), "127.0.0.1", port, 2); open || err != nil {
		t.Fatalf("IsPortOpen(closed) = %v, %v", open, err)
	}
}

func TestDNSLookup(t *testing.T) {
	m := &Module{}
	addrs, err := m.DNSLookup(t.Context(), "localhost")
	if err != nil || !slices.Contains(addrs, "127.0.0.1") {
		t.Fatalf("DNSLookup(localhost) = %v, %v", addrs, err)
	}
	addrs, err = m.DNSLookup(t.Context(), "127.0.0.2")
	if err != nil || !reflect.DeepEqual(addrs, []string{"127.0.0.2"}) {
		t.Fatalf("DNSLookup(IP) = %v, %v", addrs, err)
	}
}

func TestHTTPCheck(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "fine") })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/missing", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	plain := httptest.NewServer(mux)
	defer plain.Close()
	m := &Module{}
	ctx := t.Context()
	for _, tc := range []struct {
		path   string
		opts   HTTPOptions
		ok     bool
		status int
	}{
		{"/ok", HTTPOptions{}, true, 200},
		{"/missing", HTTPOptions{}, false, 404},
		{"/missing", HTTPOptions{ExpectStatus: 404}, true, 404},
		{"/moved", HTTPOptions{}, true, 302}, // not followed
		{"/ok", HTTPOptions{ExpectStatus: 201}, false, 200},
	} {
		res, err := m.HTTPCheck(ctx, plain.URL+tc.path, tc.opts)
		if err != nil || res.OK != tc.ok || res.Status != tc.status || res.TLS || res.Error != "" || res.DurationS <= 0 {
			t.Errorf("HTTPCheck(%s, %+v) = %+v, %v", tc.path, tc.opts, res, err)
		}
	}
	res, err := m.HTTPCheck(ctx, plain.URL+"/slow", HTTPOptions{Timeout: 100 * time.Millisecond})
	if err != nil || res.OK || res.Status != 0 || res.Error == "" {
		t.Errorf("HTTPCheck(slow) = %+v, %v", res, err)
	}

	secure := httptest.NewTLSServer(mux)
	defer secure.Close()
	res, err = m.HTTPCheck(ctx, secure.URL+"/ok", HTTPOptions{})
	if err != nil || res.OK || !strings.Contains(res.Error, "certificate") {
		t.Errorf("HTTPCheck(untrusted) = %+v, %v; want a certificate error", res, err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(secure.Certificate())
	trusted := &Module{RootCAs: pool}
	res, err = trusted.HTTPCheck(ctx, secure.URL+"/ok", HTTPOptions{})
	if err != nil || !res.OK || !res.TLS || !res.TLSExpiry.Equal(secure.Certificate().NotAfter) {
		t.Errorf("HTTPCheck(trusted) = %+v, %v", res, err)
	}
	res, err = m.HTTPCheck(ctx, secure.URL+"/ok", HTTPOptions{Insecure: true})
	if err != nil || !res.OK || !res.TLS || res.TLSExpiry.IsZero() {
		t.Errorf("HTTPCheck(insecure) = %+v, %v", res, err)
	}

	// Nobody listening: a result, not a fault.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	res, err = m.HTTPCheck(ctx, "http://"+addr+"/", HTTPOptions{})
	if err != nil || res.OK || !strings.Contains(res.Error, "refused") {
		t.Errorf("HTTPCheck(closed) = %+v, %v", res, err)
	}
}

// fakePing writes a ping stand-in that records its argv and prints out.
func fakePing(t *testing.T, out string, exit int) (*Module, *modtest.ArgvLog) {
	t.Helper()
	path, log := modtest.FakeTool(t, "ping", out, exit)
	return &Module{PingPath: path}, log
}

const iputilsOK = `PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.
64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.028 ms
64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.050 ms

--- 127.0.0.1 ping statistics ---
2 packets transmitted, 2 received, 0% packet loss, time 1003ms
rtt min/avg/max/mdev = 0.028/0.039/0.050/0.011 ms
`

func TestPingWithFakeProgram(t *testing.T) {
	m, argv := fakePing(t, iputilsOK, 0)
	res, err := m.Ping(t.Context(), "127.0.0.1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transmitted != 2 || res.Received != 2 || res.PacketLoss != 0 || res.RTTAvgMS != 0.039 || !strings.Contains(res.Output, "icmp_seq=2") {
		t.Errorf("Ping = %+v", res)
	}
	if want := []string{m.PingPath, "-n", "-c", "2", "-w", "7", "--", "127.0.0.1"}; !reflect.DeepEqual(argv.Last(), want) {
		t.Errorf("argv = %q, want %q", argv.Last(), want)
	}

	m, _ = fakePing(t, "--- 127.0.0.9 ping statistics ---\n3 packets transmitted, 0 received, 100% packet loss, time 2030ms\n", 1)
	res, err = m.Ping(t.Context(), "127.0.0.9", 0)
	if err != nil || res.Received != 0 || res.PacketLoss != 100 || res.Transmitted != 3 {
		t.Errorf("Ping(no answer) = %+v, %v", res, err)
	}
	m, _ = fakePing(t, "", 2)
	_, err = m.Ping(t.Context(), "127.0.0.1", 1)
	modtest.WantCode(t, err, gofunc.CodeModule)
}

func TestPingUnavailable(t *testing.T) {
	m := &Module{PingPath: "/nonexistent/ping"}
	_, err := m.Ping(t.Context(), "127.0.0.1", 1)
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
	if _, err := os.Stat("/usr/bin/ping"); err != nil {
		_, err := (&Module{}).Ping(t.Context(), "127.0.0.1", 1)
		modtest.WantCode(t, err, gofunc.CodeUnavailable)
	}
}

func TestHostileArguments(t *testing.T) {
	m, argv := fakePing(t, iputilsOK, 0)
	ctx := t.Context()
	for _, host := range []string{"", "-rf", "--help", "nginx; reboot", "a b", "host\x00", "$(reboot)", "a..b",
		"-a.example", "a-.example", strings.Repeat("a", 64) + ".example", strings.Repeat("a.", 130) + "a", "exa_mple.com", "[::1]"} {
		_, err := m.IsPortOpen(ctx, host, 22, 1)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
		_, err = m.Ping(ctx, host, 1)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
		_, err = m.DNSLookup(ctx, host)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
	}
	if argv.Runs() != nil {
		t.Error("ping ran for an invalid host")
	}
	for name, call := range map[string]func() error{
		"port 0":         func() error { _, err := m.IsPortOpen(ctx, "127.0.0.1", 0, 1); return err },
		"port 65536":     func() error { _, err := m.IsPortOpen(ctx, "127.0.0.1", 65536, 1); return err },
		"timeout -1":     func() error { _, err := m.IsPortOpen(ctx, "127.0.0.1", 22, -1); return err },
		"timeout 1 hour": func() error { _, err := m.IsPortOpen(ctx, "127.0.0.1", 22, 3600); return err },
		"count 10000":    func() error { _, err := m.Ping(ctx, "127.0.0.1", 10000); return err },
		"count -1":       func() error { _, err := m.Ping(ctx, "127.0.0.1", -1); return err },
		"file url":       func() error { _, err := m.HTTPCheck(ctx, "file:///etc/shadow", HTTPOptions{}); return err },
		"gopher url":     func() error { _, err := m.HTTPCheck(ctx, "gopher://127.0.0.1/", HTTPOptions{}); return err },
		"relative url":   func() error { _, err := m.HTTPCheck(ctx, "/etc/passwd", HTTPOptions{}); return err },
		"url bad host":   func() error { _, err := m.HTTPCheck(ctx, "http://a;reboot/", HTTPOptions{}); return err },
		"url bad port":   func() error { _, err := m.HTTPCheck(ctx, "http://127.0.0.1:99999/", HTTPOptions{}); return err },
		"url control":    func() error { _, err := m.HTTPCheck(ctx, "http://127.0.0.1/\x00", HTTPOptions{}); return err },
		"status 42": func() error {
			_, err := m.HTTPCheck(ctx, "http://127.0.0.1/", HTTPOptions{ExpectStatus: 42})
			return err
		},
		"http timeout": func() error {
			_, err := m.HTTPCheck(ctx, "http://127.0.0.1/", HTTPOptions{Timeout: 10 * time.Hour})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { modtest.WantCode(t, call(), gofunc.CodeBadArgs) })
	}
	for _, ok := range []string{"127.0.0.1", "::1", "localhost", "localhost.", "a-b.example.com", "xn--bcher-kva.example"} {
		if err := CheckHost(ok); err != nil {
			t.Errorf("CheckHost(%q) = %v", ok, err)
		}
	}
}

func TestParsePing(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want PingStats
	}{
		{iputilsOK, PingStats{2, 2, 0, 0.028, 0.039, 0.050}},
		{"3 packets transmitted, 3 packets received, 0% packet loss\nround-trip min/avg/max = 0.058/0.067/0.078 ms\n",
			PingStats{3, 3, 0, 0.058, 0.067, 0.078}},
		{"5 packets transmitted, 3 received, +2 errors, 40% packet loss, time 4005ms\n", PingStats{5, 3, 40, 0, 0, 0}},
		{"4 packets transmitted, 3 received, 25.5% packet loss\nround-trip min/avg/max/stddev = 1.0/2.0/3.0/0.5 ms", PingStats{4, 3, 25.5, 1, 2, 3}},
	} {
		got, err := ParsePing([]byte(tc.out))
		if err != nil || got != tc.want {
			t.Errorf("ParsePing(%q) = %+v, %v; want %+v", tc.out, got, err, tc.want)
		}
	}
	if _, err := ParsePing([]byte("ping: unknown host\n")); err == nil {
		t.Error("ParsePing accepted output without statistics")
	}
}

func FuzzParsePing(f *testing.F) {
	f.Add([]byte(iputilsOK))
	f.Add([]byte("1 packets transmitted, 9 received, 999% packet loss\nrtt min/avg/max/mdev = 1/2/3/4 ms"))
	f.Add([]byte("999999999 packets transmitted, 0 received"))
	f.Fuzz(func(t *testing.T, out []byte) {
		s, err := ParsePing(out)
		if err != nil {
			return
		}
		if s.Transmitted < 0 || s.Received < 0 || s.PacketLoss < 0 || s.RTTMinMS < 0 {
			t.Fatalf("ParsePing(%q) = %+v", out, s)
		}
	})
}

func FuzzCheckHost(f *testing.F) {
	for _, s := range []string{"localhost", "127.0.0.1", "::1", "-rf", "a..b", "a.b."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if CheckHost(host) != nil {
			return
		}
		if strings.HasPrefix(host, "-") || strings.ContainsAny(host, " ;$`\x00/\\") {
			t.Fatalf("CheckHost accepted %q", host)
		}
	})
}
