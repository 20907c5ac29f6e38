package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is a daemon started for a test.
type proc struct {
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// daemon starts a gofunc binary in the background; cleanup stops it
// with SIGTERM (then SIGKILL) and shows its log when the test failed.
func daemon(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return daemonEnv(t, nil, name, args...)
}

// daemonEnv is daemon with variables added to the environment.
func daemonEnv(t *testing.T, env []string, name string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(filepath.Join(binaries(t), name), args...), log: &bytes.Buffer{}, done: make(chan struct{})}
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	lw := &lockedWriter{buf: p.log}
	p.cmd.Stdout, p.cmd.Stderr = lw, lw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s %s log:\n%s", name, strings.Join(args, " "), p.output())
		}
	})
	return p
}

func (p *proc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output() string {
	lw := p.cmd.Stderr.(*lockedWriter)
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return p.log.String()
}

// runCmd runs a gofunc binary to completion and returns its stdout,
// stderr and exit code.
func runCmd(t *testing.T, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmdEnv(t, nil, name, args...)
}

// runCmdEnv is runCmd with variables added to the environment. The
// command's deadline guards against a hang, not a slow machine: it
// starts once the binaries are built (the first call builds them).
func runCmdEnv(t *testing.T, env []string, name string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin := filepath.Join(binaries(t), name)
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return o.String(), e.String(), code
}

// eventually retries check until it returns nil or the time is up.
func eventually(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCommandLineContract walks DESIGN.md's command-line contract with
// the real binaries: a certmaster, minions enrolling with a token, with
// manual approval, and with a wrong fingerprint; an overlord user; calls
// and their exit codes; revocation; audit verification.
func TestCommandLineContract(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out, errOut, code := runCmd(t, "certmaster", "init", "--dir", caDir, "--name", "e2e CA")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "sha256:") {
		t.Fatalf("certmaster init: exit %d, out %q, err %q", code, out, errOut)
	}
	fp := strings.TrimSpace(out)
	if again, _, _ := runCmd(t, "certmaster", "fingerprint", "--dir", caDir); strings.TrimSpace(again) != fp {
		t.Fatalf("fingerprint = %q, init said %q", again, fp)
	}
	cm := net.JoinHostPort("127.0.0.70", freePort(t, "127.0.0.70"))
	daemon(t, "certmaster", "serve", "--dir", caDir, "--listen", cm)
	waitListening(t, cm)

	// m1 enrolls with a one-time token: signed at once.
	token, _, code := runCmd(t, "certmaster", "token", "create", "--dir", caDir, "--uses", "1")
	if code != 0 {
		t.Fatalf("token create exit %d", code)
	}
	m1 := net.JoinHostPort("127.0.0.71", freePort(t, "127.0.0.71"))
	daemon(t, "funcd", "--dir", filepath.Join(dir, "m1"), "--certmaster", cm, "--ca-fingerprint", fp,
		"--token", strings.TrimSpace(token), "--name", "m1.e2e", "--listen", m1, "--crl-refresh", "300ms")
	waitListening(t, m1)

	// m2 asks without a token: it waits, pending, until the admin signs.
	m2 := net.JoinHostPort("127.0.0.72", freePort(t, "127.0.0.72"))
	m2proc := daemon(t, "funcd", "--dir", filepath.Join(dir, "m2"), "--certmaster", cm, "--ca-fingerprint", fp,
		"--name", "m2.e2e", "--listen", m2)
	eventually(t, hangTimeout, "m2's request is pending", func() error {
		out, _, _ := runCmd(t, "certmaster", "list", "--dir", caDir, "--json")
		if !strings.Contains(out, "m2.e2e") {
			return errors.New("not listed: " + out)
		}
		return nil
	})
	if _, e, code := runCmd(t, "certmaster", "sign", "--dir", caDir, "m2*"); code != 0 {
		t.Fatalf("certmaster sign: exit %d: %s", code, e)
	}
	waitListening(t, m2)

	// m3 pins a wrong fingerprint: it stops, non-zero, and sends nothing.
	_, e3, code := runCmd(t, "funcd", "--dir", filepath.Join(dir, "m3"), "--certmaster", cm,
		"--ca-fingerprint", "sha256:"+strings.Repeat("00", 32), "--name", "m3.e2e", "--listen", "127.0.0.73:0")
	if code == 0 {
		t.Fatalf("funcd with a wrong CA fingerprint exited 0: %s", e3)
	}
	if out, _, _ := runCmd(t, "certmaster", "list", "--dir", caDir, "--json"); strings.Contains(out, "m3.e2e") {
		t.Fatalf("a request from m3 reached the certmaster: %s", out)
	}

	// An overlord user, with credentials written 0600.
	ov := filepath.Join(dir, "overlord")
	if _, e, code := runCmd(t, "certmaster", "issue-overlord", "--dir", caDir, "--out", ov, "admin"); code != 0 {
		t.Fatalf("issue-overlord: exit %d: %s", code, e)
	}
	if st, err := os.Stat(filepath.Join(ov, "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("overlord key.pem: %v %v", st.Mode(), err)
	}
	fn := func(args ...string) (string, string, int) {
		return runCmd(t, "func", append([]string{"--dir", ov, "--certmaster", cm, "--timeout", "30s"}, args...)...)
	}

	out, e, code := fn("list_minions")
	if code != 0 || !strings.Contains(out, "m1.e2e") || !strings.Contains(out, "m2.e2e") {
		t.Fatalf("list_minions: exit %d\n%s\n%s", code, out, e)
	}
	out, e, code = fn("--json", "*", "ping")
	if code != 0 {
		t.Fatalf("ping: exit %d\n%s\n%s", code, out, e)
	}
	var res map[string]struct {
		OK    bool `json:"ok"`
		Value any  `json:"value"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || !res["m1.e2e"].OK || res["m2.e2e"].Value != true {
		t.Fatalf("ping --json: %v\n%s", err, out)
	}
	out, e, code = fn("m1*", "call", "command", "run", `["uname","-r"]`)
	if code != 0 || !strings.Contains(out, "exit_code") {
		t.Fatalf("call command run: exit %d\n%s\n%s", code, out, e)
	}
	if _, _, code = fn("nomatch*", "ping"); code != 3 {
		t.Fatalf("a spec matching nothing: exit %d, want 3", code)
	}
	if _, _, code = fn("--no-such-flag", "*", "ping"); code != 2 {
		t.Fatalf("a usage error: exit %d, want 2", code)
	}

	// One minion down: the call fails on that host, and func says so.
	m2proc.stop()
	out, _, code = fn("*", "ping")
	if code != 1 {
		t.Fatalf("ping with m2 down: exit %d, want 1\n%s", code, out)
	}

	// Revoke the overlord: the minions refuse it within their CRL refresh.
	if _, e, code := runCmd(t, "certmaster", "revoke", "--dir", caDir, "admin"); code != 0 {
		t.Fatalf("revoke: exit %d: %s", code, e)
	}
	eventually(t, hangTimeout, "m1 refuses the revoked overlord", func() error {
		if out, _, code := fn("m1*", "ping"); code != 1 {
			return errors.New("still answered: " + out)
		}
		return nil
	})

	// The minion's audit log verifies, and an edit is found.
	logPath := filepath.Join(dir, "m1", "audit.log")
	if out, e, code := runCmd(t, "func", "audit", "verify", logPath); code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, out, e)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tampered := filepath.Join(dir, "tampered.log")
	if err := os.WriteFile(tampered, bytes.Replace(b, []byte(`"test.ping"`), []byte(`"test.echo"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, _, code := runCmd(t, "func", "audit", "verify", tampered); code == 0 {
		t.Fatalf("a tampered log verified:\n%s", out)
	}
}
