package minion_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/test"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a CA, a running minion and the means to call it.
type env struct {
	t         testing.TB
	dir       string
	authority *ca.Authority
	id        *identity.Identity
	srv       *minion.Server
	trail     *audit.Log
	addr      string
	auditPath string
}

// start runs a minion with the test module on 127.0.0.1; configure may
// adjust the server before it serves.
func start(t testing.TB, configure func(*minion.Server)) *env {
	t.Helper()
	dir := t.TempDir()
	// Tests issue a fresh certificate per client, often many for one
	// name: no cap on valid certificates per name (ca tests the cap).
	a, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca"), MaxLive: math.MaxInt})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	trail, err := audit.Open(auditPath, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, authority: a, id: id, trail: trail, auditPath: auditPath}
	e.srv = &minion.Server{Identity: id, Audit: trail}
	if err := e.srv.Register("test", &test.Module{}); err != nil {
		t.Fatal(err)
	}
	if configure != nil {
		configure(e.srv)
	}
	e.serve()
	return e
}

// serve starts e.srv on a fresh loopback listener and stops it (and
// closes the audit log) when the test ends.
func (e *env) serve() {
	t := e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	srv, trail := e.srv, e.trail
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, minion.ErrServerClosed) {
			t.Errorf("Serve = %v, want ErrServerClosed", err)
		}
		trail.Close()
	})
}

// stop shuts the minion down before the test ends (the cleanup's
// second Shutdown is harmless), so that everything it still holds, such
// as the summaries of suppressed refusals, is in the audit log.
func (e *env) stop() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Fatalf("Shutdown: %v", err)
	}
}

// identity issues a certificate of role for name from the env's CA.
func (e *env) identity(role gofunc.Role, name string) *identity.Identity {
	e.t.Helper()
	id, err := e.authority.Issue(role, name, ca.IssueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// revoke revokes name's certificates and installs the new CRL in the
// minion's identity, as its CRL refresh would.
func (e *env) revoke(name string) {
	e.t.Helper()
	if _, err := e.authority.Revoke(name, ca.ReasonKeyCompromise); err != nil {
		e.t.Fatal(err)
	}
	crl, err := e.authority.CRL()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.id.SetCRL(crl); err != nil {
		e.t.Fatal(err)
	}
}

// foreign issues a certificate of role for name from a CA of its own,
// which the minion does not trust.
func foreign(t testing.TB, role gofunc.Role, name string) *identity.Identity {
	t.Helper()
	other, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "other-ca")})
	if err != nil {
		t.Fatal(err)
	}
	id, err := other.Issue(role, name, ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// client returns an HTTP client presenting a fresh certificate of role
// for name, issued by the env's CA.
func (e *env) client(role gofunc.Role, name string) *http.Client {
	e.t.Helper()
	return httpClient(e.identity(role, name).ClientTLSConfig("m1.test"))
}

func httpClient(cfg *tls.Config) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 64}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// call sends module.method over c and returns the decoded result. It
// closes c's idle connections afterwards, so no goroutine outlives it.
func (e *env) call(c *http.Client, method string, params ...any) (any, error) {
	defer c.CloseIdleConnections()
	return e.callKeep(c, method, params...)
}

// callKeep is call that leaves the connection open for reuse.
func (e *env) callKeep(c *http.Client, method string, params ...any) (any, error) {
	return e.callCtx(context.Background(), c, nil, method, params...)
}

func (e *env) callCtx(ctx context.Context, c *http.Client, header http.Header, method string, params ...any) (any, error) {
	var body bytes.Buffer
	if err := xmlrpc.EncodeCall(&body, method, params...); err != nil {
		e.t.Fatal(err)
	}
	return e.postCtx(ctx, c, body.Bytes(), header)
}

func (e *env) post(c *http.Client, body *bytes.Buffer, header http.Header) (any, error) {
	defer c.CloseIdleConnections()
	return e.postCtx(context.Background(), c, body.Bytes(), header)
}

func (e *env) postCtx(ctx context.Context, c *http.Client, body []byte, header http.Header) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+e.addr+"/RPC2", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return xmlrpc.DecodeResponse(resp.Body, xmlrpc.Limits{MaxBytes: 128 << 20})
}

// records returns the call and connection records (kind call.*, job.*
// or tls.*) of the env's log.
func (e *env) records() []audit.Record {
	e.t.Helper()
	return readAudit(e.t, e.auditPath)
}

func readAudit(t testing.TB, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, audit.MaxRecordBytes+1)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if strings.HasPrefix(r.Kind, "call.") || strings.HasPrefix(r.Kind, "job.") || strings.HasPrefix(r.Kind, "tls.") {
			recs = append(recs, r)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return recs
}

// wantFault fails the test unless err is a fault with code.
func wantFault(t testing.TB, what string, err error, code gofunc.Code, contains ...string) *gofunc.Fault {
	t.Helper()
	var f *gofunc.Fault
	if !errors.As(err, &f) || f.Code != code {
		t.Fatalf("%s: err = %v, want a fault with code %d (%s)", what, err, int(code), code)
	}
	for _, s := range contains {
		if !strings.Contains(f.Message, s) {
			t.Errorf("%s: fault %q does not mention %q", what, f.Message, s)
		}
	}
	return f
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
