package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
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

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	logs := &syncbuf.Buffer{}
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--ca-dir", authority.Dir()}, io.Discard, logs)
	}()
	var addr string
	for deadline := time.Now().Add(time.Minute); addr == ""; {
		if m := servingRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("funcweb did not start:\n%s", logs.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
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
	cancel()
	select {
	case c := <-exited:
		if c != exitOK {
			t.Errorf("exit %d after stop:\n%s", c, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("funcweb did not stop")
	}
}
