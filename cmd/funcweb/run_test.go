package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/readmecheck"
	"github.com/gofunc/gofunc/internal/syncbuf"
	"github.com/gofunc/gofunc/overlord"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The README's funcweb reference names every flag --help shows, and no
// flag funcweb lacks.
func TestREADMEMatchesHelp(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Name("funcweb"))
	if err != nil {
		t.Fatal(err)
	}
	section, err := readmecheck.Section("## funcweb, the dashboard")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range readmecheck.Check(parser.Model, readmecheck.Lines(section, "funcweb")) {
		t.Error(p)
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, &out, &errOut); code != exitOK || !strings.HasPrefix(out.String(), "funcweb ") {
		t.Errorf("--version: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "--dir") {
		t.Errorf("no arguments: %d %q", code, errOut.String())
	}
}

var servingRE = regexp.MustCompile(`addr=https://(127\.0\.0\.1:\d+)`)

// funcweb serves the dashboard over mutual TLS with a delegate
// certificate, refuses browsers without a certificate, answers a
// viewer, and stops cleanly on its context; a certificate of another
// role in DIR is a usage error.
func TestServe(t *testing.T) {
	authority, err := ca.Init(ca.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir, overlordDir := t.TempDir(), t.TempDir()
	self, err := authority.Issue(gofunc.RoleDelegate, "funcweb", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := self.Save(dir); err != nil {
		t.Fatal(err)
	}
	wrong, _ := authority.Issue(gofunc.RoleOverlord, "ops", ca.IssueOptions{})
	if err := wrong.Save(overlordDir); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"--dir", overlordDir, "--listen", "127.0.0.1:0"}, io.Discard, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "role delegate") {
		t.Errorf("an overlord certificate: exit %d, %s", code, errOut.String())
	}

	fw := startFuncweb(t, "--dir", dir, "--listen", "127.0.0.1:0", "--ca-dir", authority.Dir())
	addr := fw.addr
	viewer, _ := authority.Issue(gofunc.RoleViewer, "alice", ca.IssueOptions{})
	get := func(id *identity.Identity) (int, string, error) {
		pool := x509.NewCertPool()
		pool.AddCert(authority.Certificate())
		cfg := &tls.Config{RootCAs: pool}
		if id != nil {
			cfg.Certificates = []tls.Certificate{*id.Certificate()}
		}
		tr := &http.Transport{TLSClientConfig: cfg}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", "https://"+addr+"/enrollment", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(bufio.NewReader(resp.Body))
		return resp.StatusCode, string(b), nil
	}
	if _, _, err := get(nil); err == nil {
		t.Error("a browser without a certificate was served")
	}
	code, body, err := get(viewer)
	if err != nil || code != 200 || !strings.Contains(body, `"configured": true`) || !strings.Contains(body, `"name": "alice"`) {
		t.Errorf("viewer's /enrollment: %d %v\n%s", code, err, body)
	}
	fw.stop()
}

// funcweb is a funcweb run in the test's process.
type funcweb struct {
	t      *testing.T
	addr   string // where it serves HTTPS
	logs   *syncbuf.Buffer
	cancel context.CancelFunc
	exited chan int
}

// startFuncweb runs funcweb with args until it logs where it serves.
func startFuncweb(t *testing.T, args ...string) *funcweb {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	fw := &funcweb{t: t, logs: &syncbuf.Buffer{}, cancel: cancel, exited: make(chan int, 1)}
	go func() { fw.exited <- run(ctx, args, io.Discard, fw.logs) }()
	t.Cleanup(func() {
		cancel()
		<-fw.exited
	})
	fw.addr = fw.waitLog(servingRE)
	return fw
}

// waitLog waits for a line of funcweb's log that re matches, and
// returns re's first group.
func (fw *funcweb) waitLog(re *regexp.Regexp) string {
	fw.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(fw.logs.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			fw.t.Fatalf("funcweb logged no %s:\n%s", re, fw.logs.String())
		}
	}
}

// stop stops funcweb and checks that it exits 0.
func (fw *funcweb) stop() {
	fw.t.Helper()
	fw.cancel()
	select {
	case c := <-fw.exited:
		if c != exitOK {
			fw.t.Errorf("exit %d after stop:\n%s", c, fw.logs.String())
		}
		fw.exited <- c
	case <-time.After(time.Minute):
		fw.t.Fatal("funcweb did not stop")
	}
}

var metricsRE = regexp.MustCompile(`metrics_addr=(\S+)`)

// With --metrics-listen, the dashboard's overlord client is observed:
// a minion page that could not reach its minion shows in
// gofunc_overlord_calls_total and the minion's up series, served
// without TLS on loopback. Any other address is a usage error.
func TestMetricsListen(t *testing.T) {
	authority, err := ca.Init(ca.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	self, err := authority.Issue(gofunc.RoleDelegate, "funcweb", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := self.Save(dir); err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	if code := run(t.Context(), []string{"--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0"}, io.Discard, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "loopback") {
		t.Errorf("--metrics-listen 0.0.0.0:0: exit %d, %s", code, errOut.String())
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ghostAddr := closed.Addr().String()
	closed.Close() // nothing answers there now
	list, _ := json.Marshal([]overlord.Minion{{Name: "ghost", Addr: ghostAddr}})
	if err := os.WriteFile(filepath.Join(dir, overlord.CacheFile), list, 0o600); err != nil {
		t.Fatal(err)
	}
	fw := startFuncweb(t, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	plain := fw.waitLog(metricsRE)
	viewer, _ := authority.Issue(gofunc.RoleViewer, "alice", ca.IssueOptions{})
	pool := x509.NewCertPool()
	pool.AddCert(authority.Certificate())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{*viewer.Certificate()}}}
	defer tr.CloseIdleConnections()
	get := func(c *http.Client, url string) string {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", url, nil)
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	get(&http.Client{Transport: tr}, "https://"+fw.addr+"/fleet/ghost")
	plainClient := &http.Client{Transport: &http.Transport{}}
	defer plainClient.CloseIdleConnections()
	body := get(plainClient, "http://"+plain+"/metrics")
	for _, want := range []string{`gofunc_overlord_calls_total{outcome="unreachable"} `, `gofunc_overlord_minion_up{minion="ghost"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
	fw.stop()
}
