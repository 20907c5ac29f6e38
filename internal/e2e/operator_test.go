package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc/overlord"
)

// opFleet is three real funcd processes and an overlord directory that
// knows them, for driving the func binary the way an operator types it.
type opFleet struct {
	*fleet
	procs []*exec.Cmd
	addrs []string
}

func newOpFleet(t *testing.T) *opFleet {
	t.Helper()
	f := &opFleet{fleet: newFleet(t)}
	var list []overlord.Minion
	for i, ip := range []string{"127.0.0.81", "127.0.0.82", "127.0.0.83"} {
		name := []string{"web1.op", "web2.op", "web3.op"}[i]
		addr, proc := f.funcd(t, name, ip)
		f.procs, f.addrs = append(f.procs, proc), append(f.addrs, addr)
		list = append(list, overlord.Minion{Name: name, Addr: addr})
	}
	if err := writeMinions(filepath.Join(f.overlord, overlord.CacheFile), list); err != nil {
		t.Fatal(err)
	}
	return f
}

// fn runs the func binary with the fleet's overlord directory.
func (f *opFleet) fn(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmd(t, "func", append([]string{"--dir", f.overlord}, args...)...)
}

// TestOperatorRun: `func SPEC run` as DESIGN.md's contract says, on real
// minions: grouped stdout, stderr and exit status only where they are
// not empty or zero, the summary on stderr, exit 1 on a non-zero
// command and the command's status with --passthrough.
func TestOperatorRun(t *testing.T) {
	f := newOpFleet(t)
	out, errOut, code := f.fn(t, "*", "run", "echo", "hello")
	if code != 0 || out != "---------------- web[1-3].op (3)\nhello\n" || errOut != "3 ok\n" {
		t.Fatalf("run echo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, _, code := f.fn(t, "*", "run", "--", "false"); code != 1 {
		t.Errorf("run -- false: exit %d, want 1", code)
	}
	out, errOut, code = f.fn(t, "*", "run", "--passthrough", "--", "sh", "-c", "echo partial; echo broken >&2; exit 4")
	if code != 4 || out != "---------------- web[1-3].op (3): exit 4\npartial\n---- stderr\nbroken\n" ||
		errOut != "3 exited non-zero: web[1-3].op (exit 4)\n" {
		t.Errorf("run --passthrough: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// Streamed: every line carries its host; stdout is the commands'
	// output only.
	out, errOut, code = f.fn(t, "--stream", "*", "run", "--", "sh", "-c", "echo one; echo two; echo err >&2; exit 2")
	if code != 1 || strings.Count(out, "\n") != 6 || !strings.Contains(out, "web2.op: one\nweb2.op: two\n") ||
		!strings.Contains(errOut, "web3.op: err\nweb3.op: exit 2\n") || !strings.HasSuffix(errOut, "3 exited non-zero: web[1-3].op (exit 2)\n") {
		t.Errorf("run --stream: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// --json: a stable per-host shape for programs.
	out, _, code = f.fn(t, "--json", "web1*", "run", "--", "sh", "-c", "echo x; exit 5")
	var res map[string]struct {
		OK    bool `json:"ok"`
		Value struct {
			ExitCode int    `json:"exit_code"`
			Stdout   string `json:"stdout"`
		} `json:"value"`
		Error struct {
			Kind string `json:"kind"`
			Code int    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || res["web1.op"].OK || res["web1.op"].Value.ExitCode != 5 ||
		res["web1.op"].Value.Stdout != "x\n" || res["web1.op"].Error.Kind != "exit" || res["web1.op"].Error.Code != 5 {
		t.Errorf("run --json: exit %d, %v\n%s", code, err, out)
	}
}

// TestOperatorErrors: one line per failed host, no Go error chain and
// no URL, identical errors grouped, the timeout named, JSON on stdout
// whatever happens, and the hints a new user needs.
func TestOperatorErrors(t *testing.T) {
	f := newOpFleet(t)
	f.stop(t, 1)
	f.stop(t, 2)
	out, errOut, code := f.fn(t, "*", "ping")
	if code != 1 || out != "---------------- web1.op (1)\nok\n---------------- web[2-3].op (2)\nunreachable (connection refused)\n" ||
		errOut != "1 ok, 2 unreachable: web[2-3].op\n" {
		t.Errorf("ping with two minions down: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, _, _ = f.fn(t, "--stream", "*", "ping")
	if !strings.Contains(out, "web2.op: unreachable (connection refused)\n") || strings.Contains(out, "https://") {
		t.Errorf("streamed error line:\n%s", out)
	}
	out, errOut, code = f.fn(t, "--timeout", "1s", "web1*", "call", "test", "sleep", "10")
	if code != 1 || !strings.Contains(out, "timed out: no answer within 1s (--timeout)") || errOut != "1 timed out after 1s: web1.op\n" {
		t.Errorf("timeout: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	out, errOut, code = f.fn(t, "--json", "nothing*", "ping")
	if code != 3 || !json.Valid([]byte(out)) || !strings.Contains(out, `"kind": "no_match"`) || !strings.Contains(errOut, `no minion matched "nothing*"`) {
		t.Errorf("--json no match: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if _, errOut, code = f.fn(t, "ping"); code != 2 || !strings.Contains(errOut, "missing target spec") {
		t.Errorf("func ping: exit %d, %q", code, errOut)
	}
	if out, errOut, code = runCmd(t, "func"); code != 2 || out != "" || !strings.Contains(errOut, "Usage: func") {
		t.Errorf("bare func: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	_, errOut, code = runCmd(t, "func", "--dir", filepath.Join(t.TempDir(), "nothing"), "*", "ping")
	if code != 1 || !strings.Contains(errOut, "certmaster issue-overlord") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("no identity: exit %d, %q", code, errOut)
	}
}

// TestOperatorOutputFormats: --jsonl lines as hosts answer, --yaml
// numbers, --json on audit verify.
func TestOperatorOutputFormats(t *testing.T) {
	f := newOpFleet(t)
	out, _, code := f.fn(t, "--jsonl", "*", "call", "test", "add", "40", "2")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("--jsonl: exit %d\n%s", code, out)
	}
	for _, l := range lines {
		var r struct {
			Host  string `json:"host"`
			OK    bool   `json:"ok"`
			Value int    `json:"value"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil || !r.OK || r.Value != 42 || !strings.HasSuffix(r.Host, ".op") {
			t.Errorf("--jsonl line %q: %v", l, err)
		}
	}
	out, _, _ = f.fn(t, "--yaml", "web1*", "call", "test", "add", "40", "2")
	if !strings.Contains(out, "value: 42\n") {
		t.Errorf("--yaml number:\n%s", out)
	}
	out, _, code = f.fn(t, "web*", "doc", "command.run")
	if code != 0 || !strings.HasPrefix(out, "---------------- web[1-3].op (3)\ncommand.run(argv array, [options struct])\n") {
		t.Errorf("doc command.run: exit %d\n%s", code, out)
	}
	out, _, code = runCmd(t, "func", "--json", "audit", "verify", filepath.Join(f.overlord, "audit.log"))
	if code != 0 || !json.Valid([]byte(out)) || !strings.Contains(out, `"ok": true`) {
		t.Errorf("audit verify --json: exit %d\n%s", code, out)
	}
}

// TestOperatorInterrupt: Ctrl-C stops func with 130, says the remote
// work was cancelled, and the commands on the minions really stop.
func TestOperatorInterrupt(t *testing.T) {
	f := newOpFleet(t)
	// A sleep no one else runs, not even this test in another go test
	// process on the same machine.
	marker := fmt.Sprintf("31.%d", os.Getpid())
	bin := filepath.Join(binaries(t), "func")
	ctx, cancel := context.WithTimeout(context.Background(), 3*hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--dir", f.overlord, "*", "run", "--", "sleep", marker)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, hangTimeout, "the three remote sleeps run", func() error {
		if n := countProcs("sleep", marker); n != 3 {
			return fmt.Errorf("%d running", n)
		}
		return nil
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := exitCodeOf(err); code != 130 {
		t.Errorf("after Ctrl-C: exit %d (%v), want 130\nstderr:\n%s", code, err, errOut.String())
	}
	if !strings.Contains(errOut.String(), "interrupted") || !strings.Contains(errOut.String(), "cancelled") ||
		!strings.Contains(errOut.String(), "3 cancelled: web[1-3].op") {
		t.Errorf("stderr after Ctrl-C:\n%s", errOut.String())
	}
	eventually(t, hangTimeout, "the remote sleeps are killed", func() error {
		if n := countProcs("sleep", marker); n != 0 {
			return fmt.Errorf("%d still running", n)
		}
		return nil
	})
}

// countProcs counts processes whose command line is exactly argv.
func countProcs(argv ...string) int {
	want := strings.Join(argv, "\x00") + "\x00"
	entries, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(b) == want {
			n++
		}
	}
	return n
}

// stop stops minion i with SIGTERM and waits until its port is closed.
func (f *opFleet) stop(t *testing.T, i int) {
	t.Helper()
	if err := f.procs[i].Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, hangTimeout, "minion "+f.addrs[i]+" stops", func() error {
		c, err := net.DialTimeout("tcp", f.addrs[i], time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		return errors.New("still listening")
	})
}

func exitCodeOf(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestOperatorCertmaster: func with a real certmaster, as an operator
// meets it: it remembers the certmaster, renews its own certificate,
// survives ten runs in a row without throttling warnings, says which
// minions were left out because the CA revoked them, and tells a
// revoked overlord so.
func TestOperatorCertmaster(t *testing.T) {
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out, _, code := runCmd(t, "certmaster", "init", "--dir", caDir)
	if code != 0 {
		t.Fatalf("certmaster init: exit %d", code)
	}
	fp := strings.TrimSpace(out)
	cm := net.JoinHostPort("127.0.0.85", freePort(t, "127.0.0.85"))
	daemon(t, "certmaster", "serve", "--dir", caDir, "--listen", cm)
	waitListening(t, cm)
	token, _, _ := runCmd(t, "certmaster", "token", "create", "--dir", caDir, "--uses", "2")
	for i, ip := range []string{"127.0.0.86", "127.0.0.87"} {
		addr := net.JoinHostPort(ip, freePort(t, ip))
		daemon(t, "funcd", "--dir", filepath.Join(dir, fmt.Sprintf("m%d", i+1)), "--certmaster", cm, "--ca-fingerprint", fp,
			"--token", strings.TrimSpace(token), "--name", fmt.Sprintf("m%d.cm", i+1), "--listen", addr)
		waitListening(t, addr)
	}
	ov := filepath.Join(dir, "ov")
	// Two minutes of validity: past two thirds at once (the CA backdates
	// certificates by five minutes), so the first run renews it.
	if _, e, code := runCmd(t, "certmaster", "issue-overlord", "--dir", caDir, "--out", ov, "--validity", "2m", "ops"); code != 0 {
		t.Fatalf("issue-overlord: %s", e)
	}
	out, errOut, code := runCmd(t, "func", "--dir", ov, "--certmaster", cm, "list_minions")
	if code != 0 || !strings.Contains(out, "m1.cm\t") || !strings.Contains(out, "m2.cm\t") ||
		!strings.Contains(errOut, "func: renewed this overlord's certificate") {
		t.Fatalf("list_minions: exit %d\n%s\n%s", code, out, errOut)
	}
	// Ten runs in a row, as a script would: no warnings, no throttling.
	for i := range 10 {
		out, errOut, code = runCmd(t, "func", "--dir", ov, "--certmaster", cm, "*", "ping")
		if code != 0 || errOut != "2 ok\n" {
			t.Fatalf("run %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
	}
	// The certmaster is remembered: --refresh needs no flag.
	if out, errOut, code = runCmd(t, "func", "--dir", ov, "list_minions", "--refresh"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("list_minions --refresh: exit %d\n%s\n%s", code, out, errOut)
	}
	// A revoked minion is left out, and func says so.
	if _, e, code := runCmd(t, "certmaster", "revoke", "--dir", caDir, "m2.cm", "--reason", "keyCompromise"); code != 0 {
		t.Fatalf("revoke: %s", e)
	}
	out, errOut, code = runCmd(t, "func", "--dir", ov, "--certmaster", cm, "*", "ping")
	if code != 0 || strings.Contains(out, "m2.cm") || !strings.Contains(errOut, "func: left out m2.cm: its certificate was revoked on ") ||
		!strings.Contains(errOut, "(keyCompromise)") || !strings.HasSuffix(errOut, "1 ok\n") {
		t.Errorf("after revoking m2: exit %d\n%s\n%s", code, out, errOut)
	}
	// A revoked overlord is told so, not that the certmaster is
	// unreachable.
	if _, e, code := runCmd(t, "certmaster", "revoke", "--dir", caDir, "ops"); code != 0 {
		t.Fatalf("revoke ops: %s", e)
	}
	out, errOut, code = runCmd(t, "func", "--dir", ov, "--certmaster", cm, "*", "ping")
	if code != 1 || !strings.Contains(errOut, "this overlord's certificate (ops, serial ") || !strings.Contains(errOut, "was revoked on") ||
		strings.Contains(errOut, "unreachable") || strings.Contains(errOut, "did not answer") {
		t.Errorf("revoked overlord: exit %d\n%s\n%s", code, out, errOut)
	}
}
