package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// funcdBin is funcd built once for the tests that run it as a process.
var funcdBin string

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "funcd-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		funcdBin = filepath.Join(dir, "funcd")
		out, err := exec.Command(goTool(), "build", "-o", funcdBin, ".").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go build funcd: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// goTool is the go command; go test puts its GOROOT/bin first in PATH.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "go"
}

// fixture is a CA, a minion identity directory and an overlord identity,
// as `certmaster issue-overlord` and an enrolled minion leave them.
type fixture struct {
	t     *testing.T
	ca    *ca.Authority
	dir   string // the minion's --dir
	admin *identity.Identity
	addr  string // 127.0.0.1:port for --listen
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(root, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	id, err := a.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "minion")
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	admin, err := a.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, ca: a, dir: dir, admin: admin, addr: addr}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proc is a running funcd.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // the exit status, once done is closed
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startFuncd runs funcd with args and stops it (SIGTERM) when the test
// ends, logging its stderr if the test failed.
func startFuncd(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(funcdBin, args...), stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), "GOFUNC_LOG_LEVEL=debug")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("funcd stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// wait returns funcd's exit error once it has exited.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		p.t.Fatalf("funcd did not exit; stderr:\n%s", p.stderr.String())
		return nil
	}
}

// client calls a minion at addr, named name, as id.
type client struct {
	t    *testing.T
	addr string
	http *http.Client
}

func newClient(t *testing.T, id *identity.Identity, name, addr string) *client {
	tr := &http.Transport{TLSClientConfig: id.ClientTLSConfig(name)}
	t.Cleanup(tr.CloseIdleConnections)
	return &client{t: t, addr: addr, http: &http.Client{Transport: tr, Timeout: 20 * time.Second}}
}

func (c *client) call(method string, params ...any) (any, error) {
	var body bytes.Buffer
	if err := xmlrpc.EncodeCall(&body, method, params...); err != nil {
		c.t.Fatal(err)
	}
	resp, err := c.http.Post("https://"+c.addr+"/RPC2", "text/xml", &body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return xmlrpc.DecodeResponse(resp.Body, xmlrpc.DefaultLimits)
}

// waitUp polls test.ping until funcd answers.
func (c *client) waitUp(p *proc) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := c.call("test.ping")
		if err == nil && got == true {
			return
		}
		select {
		case <-p.done:
			c.t.Fatalf("funcd exited (%v) before answering; stderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("funcd did not answer test.ping: %v; stderr:\n%s", err, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func records(t *testing.T, path string) []audit.Record {
	t.Helper()
	files, err := audit.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	if err := audit.Query(files, audit.Filter{}, func(r audit.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("audit query: %v", err)
	}
	return out
}

func runInProcess(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestInfo(t *testing.T) {
	f := newFixture(t)
	aclDir := filepath.Join(f.dir, "acl.d")
	if err := os.MkdirAll(aclDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(aclDir, "ops.acl"), []byte("admin@overlord = *\n!intern = command.*\nalice = test.*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runInProcess(t, "--dir", f.dir, "--info", "--listen", "127.0.0.1:7777")
	if code != 0 {
		t.Fatalf("funcd --info = %d; stderr:\n%s", code, stderr)
	}
	var got info
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("--info output is not JSON: %v\n%s", err, stdout)
	}
	id, err := identity.Load(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "m1.test" || got.Role != gofunc.RoleMinion || got.Serial != serial(id) ||
		got.CAFingerprint != f.ca.Fingerprint() || got.Listen != "127.0.0.1:7777" ||
		got.AuditLog != filepath.Join(f.dir, "audit.log") || got.JobDir != filepath.Join(f.dir, "jobs") ||
		!got.NotAfter.Equal(id.Leaf().NotAfter) || got.ACLSource != aclDir {
		t.Errorf("--info = %+v", got)
	}
	for _, m := range []string{"command", "test", "system", "jobs", "service"} {
		if !strings.Contains(strings.Join(got.Modules, ","), m) {
			t.Errorf("--info modules %v lack %s", got.Modules, m)
		}
	}
	// Rules without a role show the role they apply to: a grant is for
	// overlords only, a deny rule for every role.
	wantACL := []aclRule{{Rule: "admin@overlord = *", Source: "ops.acl:1"}, {Rule: "!intern@* = command.*", Source: "ops.acl:2"},
		{Rule: "alice@overlord = test.*", Source: "ops.acl:3"}}
	if fmt.Sprint(got.ACL) != fmt.Sprint(wantACL) {
		t.Errorf("--info acl = %v, want %v", got.ACL, wantACL)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "audit.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("--info created or touched the audit log: %v", err)
	}
}

// Flags come from gofunc.toml and GOFUNC_<FLAG> too; the flag wins
// over the environment, which wins over the file.
func TestConfigFileAndEnvironment(t *testing.T) {
	f := newFixture(t)
	toml := "listen = \"127.0.0.1:1111\"\njob-dir = \"/from/file\"\naudit_log = \"/file/audit.log\"\n"
	if err := os.WriteFile(filepath.Join(f.dir, "gofunc.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOFUNC_JOB_DIR", "/from/env")
	code, stdout, stderr := runInProcess(t, "--dir", f.dir, "--info", "--audit-log", "/flag/audit.log")
	if code != 0 {
		t.Fatalf("funcd --info = %d; stderr:\n%s", code, stderr)
	}
	var got info
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if got.Listen != "127.0.0.1:1111" || got.JobDir != "/from/env" || got.AuditLog != "/flag/audit.log" {
		t.Errorf("listen %q (want from the file), job dir %q (want from the env), audit log %q (want from the flag)", got.Listen, got.JobDir, got.AuditLog)
	}
}

func TestUsageAndStartupErrors(t *testing.T) {
	f := newFixture(t)
	empty := t.TempDir()
	cases := []struct {
		name    string
		args    []string
		code    int
		mention string
	}{
		{"no dir", nil, exitUsage, "--dir"},
		{"bad log level", []string{"--dir", f.dir, "--log-level", "loud"}, exitUsage, "log-level"},
		{"unknown flag", []string{"--dir", f.dir, "--frobnicate"}, exitUsage, "frobnicate"},
		{"help", []string{"--help"}, exitOK, ""},
		{"no identity, no certmaster", []string{"--dir", empty, "--listen", "127.0.0.1:0"}, exitError, "--certmaster"},
		{"no identity, no fingerprint", []string{"--dir", empty, "--certmaster", "127.0.0.1:1"}, exitError, "--ca-fingerprint"},
		{"info without identity", []string{"--dir", empty, "--info"}, exitError, "no identity"},
	}
	for _, c := range cases {
		code, _, stderr := runInProcess(t, c.args...)
		if code != c.code || !strings.Contains(stderr, c.mention) {
			t.Errorf("%s: exit %d, want %d; stderr %q should mention %q", c.name, code, c.code, stderr, c.mention)
		}
	}
}

// First start: funcd enrolls with the certmaster (pinning its CA), then
// serves; a wrong fingerprint stops it before any request is sent.
func TestEnrollThenServe(t *testing.T) {
	root := t.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(root, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: a, Autosign: "m9.*"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.Serve(ln)
	t.Cleanup(func() { svc.Close() })
	certmaster := ln.Addr().String()

	wrong := "sha256:" + strings.Repeat("ab", 32)
	bad := startFuncd(t, "--dir", filepath.Join(root, "bad"), "--certmaster", certmaster, "--ca-fingerprint", wrong,
		"--name", "m9.test", "--listen", freeAddr(t))
	if err := bad.wait(); err == nil {
		t.Fatal("funcd with a wrong CA fingerprint exited 0")
	}
	if reqs, err := a.Requests(); err != nil || len(reqs) != 0 {
		t.Fatalf("requests after a wrong fingerprint: %v, %v; want none sent", reqs, err)
	}

	addr := freeAddr(t)
	dir := filepath.Join(root, "m9")
	p := startFuncd(t, "--dir", dir, "--certmaster", certmaster, "--ca-fingerprint", a.Fingerprint(),
		"--name", "m9.test", "--listen", addr, "--crl-refresh", "1s")
	admin, err := a.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newClient(t, admin, "m9.test", addr).waitUp(p)
	if _, err := identity.Load(dir); err != nil {
		t.Errorf("enrolled identity not saved: %v", err)
	}
	saved, err := loadCertmaster(dir)
	if err != nil || saved.Certmaster != certmaster || saved.CAFingerprint != a.Fingerprint() {
		t.Errorf("saved certmaster = %+v, %v; want %s and the CA's fingerprint", saved, err, certmaster)
	}

	// A later start without --certmaster uses the saved one: the CRL
	// refresh still runs and a revoked overlord is refused.
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("funcd exit: %v", err)
	}
	p = startFuncd(t, "--dir", dir, "--listen", addr, "--crl-refresh", "200ms")
	newClient(t, admin, "m9.test", addr).waitUp(p)
	eveID, err := a.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve := newClient(t, eveID, "m9.test", addr)
	if _, err := eve.call("test.ping"); err != nil {
		t.Fatalf("eve before revocation: %v", err)
	}
	if _, err := a.Revoke("eve", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the saved certmaster's CRL to refuse eve", func() bool {
		eve.http.CloseIdleConnections()
		_, err := eve.call("test.ping")
		return err != nil
	})
	if strings.Contains(p.stderr.String(), "no certmaster known") {
		t.Errorf("funcd warned of no certmaster although one was saved:\n%s", p.stderr.String())
	}
}

// Without --certmaster and without a saved one (or with one saved for
// another CA), funcd warns loudly, at start and in --info, that the CRL
// and renewal are off.
func TestNoCertmasterWarns(t *testing.T) {
	f := newFixture(t)
	check := func(what string) {
		t.Helper()
		code, stdout, stderr := runInProcess(t, "--dir", f.dir, "--info")
		if code != 0 {
			t.Fatalf("%s: --info = %d: %s", what, code, stderr)
		}
		var got info
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got.Certmaster != "" || got.CertmasterSource != "none" || len(got.Warnings) != 1 ||
			!strings.Contains(got.Warnings[0], "renewal are OFF") {
			t.Errorf("%s: --info = %+v, want the no-certmaster warning", what, got)
		}
		if !strings.Contains(stderr, "[WARN]") || !strings.Contains(stderr, "no certmaster known") {
			t.Errorf("%s: stderr lacks the warning:\n%s", what, stderr)
		}
	}
	check("nothing saved")
	wrongCA := "sha256:" + strings.Repeat("cd", 32)
	if err := saveCertmaster(f.dir, savedCertmaster{Certmaster: "127.0.0.1:1", CAFingerprint: wrongCA}); err != nil {
		t.Fatal(err)
	}
	check("saved for another CA")

	if err := saveCertmaster(f.dir, savedCertmaster{Certmaster: "127.0.0.1:1", CAFingerprint: f.ca.Fingerprint()}); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runInProcess(t, "--dir", f.dir, "--info")
	var got info
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("--info = %d, %v", code, err)
	}
	if got.Certmaster != "127.0.0.1:1" || got.CertmasterSource != certmasterFile || len(got.Warnings) != 0 {
		t.Errorf("--info with a saved certmaster = %+v", got)
	}
	code, stdout, _ = runInProcess(t, "--dir", f.dir, "--info", "--certmaster", "127.0.0.1:2")
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Certmaster != "127.0.0.1:2" || got.CertmasterSource != "config" {
		t.Errorf("--certmaster over the saved one: %+v, %v", got, err)
	}
}

// SIGHUP reloads the ACL directory without a restart; a broken ACL file
// keeps the rules in force.
func TestSIGHUPReloadsACL(t *testing.T) {
	f := newFixture(t)
	aclDir := filepath.Join(f.dir, "acl.d")
	writeACL := func(text string) {
		if err := os.MkdirAll(aclDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(aclDir, "ops.acl"), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeACL("admin@overlord = test.ping\n")
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)
	if _, err := c.call("test.echo", "x"); !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("test.echo before the reload = %v, want denied", err)
	}

	writeACL("admin@overlord = test.*\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "test.echo to be allowed", func() bool {
		got, err := c.call("test.echo", "x")
		return err == nil && got == "x"
	})

	writeACL("this is not an acl\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the failed reload to be logged", func() bool { return strings.Contains(p.stderr.String(), "reload acl failed") })
	if got, err := c.call("test.echo", "y"); err != nil || got != "y" {
		t.Errorf("after a broken ACL file, test.echo = %v, %v; want the old rules kept", got, err)
	}
	var reloads int
	for _, r := range records(t, filepath.Join(f.dir, "audit.log")) {
		if r.Kind == "minion.reload" {
			reloads++
		}
	}
	if reloads != 2 {
		t.Errorf("%d reload records, want 2", reloads)
	}
}

// SIGHUP also re-reads the identity directory: a re-issued certificate
// is served to new connections, and a new crl.pem refuses the revoked.
func TestSIGHUPReloadsIdentityAndCRL(t *testing.T) {
	f := newFixture(t)
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	admin := newClient(t, f.admin, "m1.test", f.addr)
	admin.waitUp(p)
	eveID, err := f.ca.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eve := newClient(t, eveID, "m1.test", f.addr)
	if _, err := eve.call("test.ping"); err != nil {
		t.Fatalf("eve before revocation: %v", err)
	}

	if _, err := f.ca.Revoke("eve", 0); err != nil {
		t.Fatal(err)
	}
	crl, err := f.ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := f.ca.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Addr: f.addr})
	if err != nil {
		t.Fatal(err)
	}
	if err := renewed.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	if err := renewed.Save(f.dir); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the renewed certificate to be served", func() bool {
		conn, err := tls.Dial("tcp", f.addr, f.admin.ClientTLSConfig("m1.test"))
		if err != nil {
			return false
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(renewed.Leaf().SerialNumber) == 0
	})
	if _, err := eve.call("test.ping"); err == nil {
		t.Error("eve was served after her certificate was revoked and the CRL reloaded")
	}
	if got, err := admin.call("test.ping"); err != nil || got != true {
		t.Errorf("admin after the reload: %v, %v", got, err)
	}
	var reload audit.Record
	for _, r := range records(t, filepath.Join(f.dir, "audit.log")) {
		if r.Kind == "minion.reload" {
			reload = r
		}
	}
	if reload.Details["serial"] != serial(renewed) {
		t.Errorf("reload record = %+v, want the new serial %s", reload, serial(renewed))
	}
}

// SIGTERM drains: a call in flight gets its answer, then funcd exits 0.
func TestSIGTERMDrains(t *testing.T) {
	f := newFixture(t)
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)
	type answer struct {
		v   any
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		v, err := c.call("test.sleep", 1.0)
		ch <- answer{v, err}
	}()
	auditPath := filepath.Join(f.dir, "audit.log")
	eventually(t, "test.sleep to start", func() bool {
		for _, r := range records(t, auditPath) {
			if r.Kind == "call.start" && r.Method == "test.sleep" {
				return true
			}
		}
		return false
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	a := <-ch
	if a.err != nil {
		t.Errorf("the call in flight during SIGTERM: %v", a.err)
	}
	if err := p.wait(); err != nil {
		t.Errorf("funcd exit after SIGTERM: %v", err)
	}
	if _, err := audit.VerifyLog(auditPath); err != nil {
		t.Errorf("audit log after a clean stop: %v", err)
	}
}

// After kill -9 under load, the audit log verifies, and every call that
// ran, whether or not its answer came back, has its start record.
func TestKill9UnderLoad(t *testing.T) {
	f := newFixture(t)
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)

	marker := filepath.Join(t.TempDir(), "marker")
	var mu sync.Mutex
	answered := map[string]bool{} // tokens of calls that returned a result
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				token := fmt.Sprintf("w%d-%d", w, i)
				var err error
				if i%2 == 0 {
					_, err = c.call("test.echo", token)
				} else {
					// A side effect the test can see even when the answer is lost.
					_, err = c.call("command.run", []string{"sh", "-c", "echo " + token + " >> " + marker})
				}
				if err != nil {
					return // funcd is gone
				}
				mu.Lock()
				answered[token] = true
				mu.Unlock()
			}
		}()
	}
	eventually(t, "some load", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(answered) >= 60
	})
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	p.wait()
	close(stop)
	wg.Wait()

	auditPath := filepath.Join(f.dir, "audit.log")
	files, err := audit.Files(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(files...); err != nil {
		if !errors.Is(err, audit.ErrTorn) {
			t.Fatalf("audit log after kill -9: %v", err)
		}
		t.Logf("torn final record after kill -9 (repaired at the next start): %v", err)
	}

	// Restart: the log is reopened (and repaired if torn) and verifies whole.
	p2 := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	c.http.CloseIdleConnections()
	c.waitUp(p2)
	if _, err := audit.VerifyLog(auditPath); err != nil {
		t.Fatalf("audit log after restart: %v", err)
	}
	started := map[string]bool{}
	for _, r := range records(t, auditPath) {
		if r.Kind != "call.start" || len(r.Args) == 0 {
			continue
		}
		switch arg := r.Args[0].(type) {
		case string:
			started[arg] = true
		case []any:
			if len(arg) == 3 {
				if cmd, ok := arg[2].(string); ok {
					started[strings.Fields(cmd)[1]] = true
				}
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for token := range answered {
		if !started[token] {
			t.Errorf("call %s answered but has no start record", token)
		}
	}
	ran := 0
	file, err := os.Open(marker)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		ran++
		if !started[sc.Text()] {
			t.Errorf("command %s ran but has no start record", sc.Text())
		}
	}
	t.Logf("%d calls answered, %d commands ran, before kill -9", len(answered), ran)
}

// A restart with only --dir listens where the last --listen said, not
// on every address (issue 12): funcd remembers it in DIR/funcd.json.
func TestListenRemembered(t *testing.T) {
	f := newFixture(t)
	// Nothing remembered yet: the default, and --info says so.
	code, stdout, stderr := runInProcess(t, "--dir", f.dir, "--info")
	var got info
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Listen != ":51234" || got.ListenSource != listenFromDefault {
		t.Fatalf("--info before any --listen = %d, %+v, %v; stderr:\n%s", code, got, err, stderr)
	}
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(); err != nil {
		t.Fatalf("funcd exit after SIGTERM: %v", err)
	}
	p = startFuncd(t, "--dir", f.dir)
	c.waitUp(p) // serving on f.addr again, told only --dir
	code, stdout, stderr = runInProcess(t, "--dir", f.dir, "--info")
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Listen != f.addr || got.ListenSource != listenFromFile {
		t.Errorf("--info after a start with --listen = %d, %+v, %v; stderr:\n%s", code, got, err, stderr)
	}
}
