package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/internal/readmecheck"
	"github.com/gofunc/gofunc/internal/syncbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The README's funcbroker reference names every flag --help shows, and
// no flag funcbroker lacks.
func TestREADMEMatchesHelp(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Name("funcbroker"))
	if err != nil {
		t.Fatal(err)
	}
	section, err := readmecheck.Section("### funcbroker")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range readmecheck.Check(parser.Model, readmecheck.Lines(section, "funcbroker")) {
		t.Error(p)
	}
}

func TestVersionAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"--version"}, &out, &errOut); code != exitOK || !strings.HasPrefix(out.String(), "funcbroker ") {
		t.Errorf("--version: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run(t.Context(), nil, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "--dir") {
		t.Errorf("no arguments: %d %q", code, errOut.String())
	}
}

// funcbroker refuses an identity that is not a broker's, and bad
// settings, as usage errors; with a broker identity it serves clients
// with gofunc certificates until its context ends, then exits 0.
func TestServe(t *testing.T) {
	root := t.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(root, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	minionDir := filepath.Join(root, "minion")
	mid, err := a.Issue(gofunc.RoleMinion, "web1.example.org", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := mid.Save(minionDir); err != nil {
		t.Fatal(err)
	}
	var errOut syncbuf.Buffer
	if code := run(t.Context(), []string{"--dir", minionDir}, &errOut, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "role broker") {
		t.Errorf("minion identity: exit %d\n%s", code, errOut.String())
	}

	brokerDir := filepath.Join(root, "broker")
	bid, err := a.Issue(gofunc.RoleBroker, "broker1", ca.IssueOptions{IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bid.Save(brokerDir); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{"--routes", "nats://127.0.0.1:6222"}, {"--monitor-listen", "0.0.0.0:8222"}, {"--metrics-listen", "0.0.0.0:9100"}, {"--listen", "nowhere"}} {
		errOut = syncbuf.Buffer{}
		if code := run(t.Context(), append([]string{"--dir", brokerDir}, bad...), &errOut, &errOut); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, code, exitUsage, errOut.String())
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := mln.Addr().String()
	mln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	errOut = syncbuf.Buffer{}
	go func() {
		done <- run(ctx, []string{"--dir", brokerDir, "--listen", addr, "--metrics-listen", metricsAddr}, &errOut, &errOut)
	}()
	var nc *nats.Conn
	for deadline := time.Now().Add(time.Minute); ; {
		nc, err = nats.Connect("nats://"+addr, nats.Secure(mid.ClientTLSConfig("")))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		cancel()
		<-done
		t.Fatalf("connect: %v\n%s", err, errOut.String())
	}
	// A client without a certificate is refused.
	if bad, err := nats.Connect("nats://"+addr, nats.Secure(&tls.Config{InsecureSkipVerify: true})); err == nil { //nolint:gosec // the refusal under test
		bad.Close()
		t.Error("a client without a certificate was admitted")
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `gofunc_broker_clients{role="minion"} 1`) {
		t.Errorf("metrics lack the minion connected:\n%s", body)
	}
	nc.Close()
	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("exit %d after the context ended\n%s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "no certmaster") {
		t.Errorf("no warning about the CRL without a certmaster:\n%s", errOut.String())
	}
}

// --stock-config writes a nats-server configuration with a user per
// live certificate of --ca-dir; it needs --ca-dir.
func TestStockConfigFlag(t *testing.T) {
	root := t.TempDir()
	caDir := filepath.Join(root, "ca")
	a, err := ca.Init(ca.Config{Dir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	brokerDir := filepath.Join(root, "broker")
	bid, err := a.Issue(gofunc.RoleBroker, "broker1", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bid.Save(brokerDir); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Issue(gofunc.RoleMinion, "web1.example.org", ca.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	var out, errOut syncbuf.Buffer
	if code := run(t.Context(), []string{"--dir", brokerDir, "--stock-config", "-"}, &out, &errOut); code != exitUsage {
		t.Errorf("without --ca-dir: exit %d\n%s", code, errOut.String())
	}
	out, errOut = syncbuf.Buffer{}, syncbuf.Buffer{}
	if code := run(t.Context(), []string{"--dir", brokerDir, "--stock-config", "-", "--ca-dir", caDir}, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut.String())
	}
	for _, want := range []string{`user: "CN=web1.example.org,OU=gofunc-minion,O=gofunc"`, `"gf.v1.call.web1_example_org"`,
		filepath.Join(brokerDir, "key.pem"), "verify_and_map: true", `listen: ":4222"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lacks %q:\n%s", want, out.String())
		}
	}
	file := filepath.Join(root, "nats.conf")
	if code := run(t.Context(), []string{"--dir", brokerDir, "--stock-config", file, "--ca-dir", caDir}, &out, &errOut); code != exitOK {
		t.Fatalf("to a file: exit %d\n%s", code, errOut.String())
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "web1_example_org") {
		t.Errorf("file: %v\n%s", err, b)
	}
}
