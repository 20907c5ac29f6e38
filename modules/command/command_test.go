package command

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestRunNoShell(t *testing.T) {
	m := &Module{}
	hostile := "; rm -rf / $(reboot) `id` | cat"
	r, err := m.Run(t.Context(), []string{"echo", hostile}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stdout != hostile+"\n" || r.ExitCode != 0 || r.Stderr != "" || r.StdoutRaw != nil {
		t.Fatalf("Run = %+v, want the argument echoed literally", r)
	}
	if r.DurationS <= 0 {
		t.Errorf("duration_s = %v", r.DurationS)
	}
}

func TestRunExitCodeStdinEnvDir(t *testing.T) {
	m := &Module{}
	dir := t.TempDir()
	r, err := m.Run(t.Context(), []string{"sh", "-c", `cat; echo "$A $B" >&2; pwd; exit 7`}, RunOptions{
		Stdin: "input\n",
		Env:   map[string]any{"A": "alpha", "B": "beta"},
		Dir:   dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "input\n" + dir + "\n"; r.Stdout != want {
		t.Errorf("stdout = %q, want %q", r.Stdout, want)
	}
	if r.Stderr != "alpha beta\n" || r.ExitCode != 7 || r.Signal != "" {
		t.Errorf("Run = %+v", r)
	}
	// The list form of env, overriding an inherited variable.
	t.Setenv("GOFUNC_TEST_VAR", "inherited")
	r, err = m.Run(t.Context(), []string{"sh", "-c", `echo "$GOFUNC_TEST_VAR $C"`}, RunOptions{
		Env: []any{"GOFUNC_TEST_VAR=override", "C=x=y"},
	})
	if err != nil || r.Stdout != "override x=y\n" {
		t.Fatalf("Run = %+v, %v", r, err)
	}
	r, err = m.Run(t.Context(), []string{"sh", "-c", `echo "$GOFUNC_TEST_VAR"`}, RunOptions{})
	if err != nil || r.Stdout != "inherited\n" {
		t.Fatalf("Run = %+v, %v; want the minion's environment", r, err)
	}
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	m := &Module{}
	// The shell starts a background sleep and waits: both are in the group.
	// The timeout leaves the shell seconds to print the sleep's pid on a
	// loaded machine; the sleep would outlast it twenty times over.
	r, err := m.Run(t.Context(), []string{"sh", "-c", "sleep 60 & echo $!; wait"},
		RunOptions{Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !r.TimedOut || r.Signal != "KILL" || r.ExitCode != -1 {
		t.Fatalf("Run = %+v, want timed_out with signal KILL", r)
	}
	if r.DurationS > 30 {
		t.Errorf("took %vs for a 3s timeout", r.DurationS)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil {
		t.Fatalf("stdout %q: %v", r.Stdout, err)
	}
	modtest.WaitGone(t, pid)
}

func TestRunContextDeadlineIsTimeoutFault(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := (&Module{}).Run(ctx, []string{"sleep", "60"}, RunOptions{})
	modtest.WantCode(t, err, gofunc.CodeTimeout)
}

func TestRunCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := (&Module{}).Run(ctx, []string{"sleep", "60"}, RunOptions{})
	modtest.WantCode(t, err, gofunc.CodeCanceled)
}

func TestRunTruncates(t *testing.T) {
	m := &Module{MaxOutput: 1000}
	r, err := m.Run(t.Context(), []string{"sh", "-c", "yes | head -c 5000; yes | head -c 50 >&2"}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Stdout) != 1000 || len(r.Stderr) != 50 || !r.Truncated {
		t.Fatalf("stdout %d bytes, stderr %d, truncated %v; want 1000, 50, true", len(r.Stdout), len(r.Stderr), r.Truncated)
	}
	r, err = m.Run(t.Context(), []string{"sh", "-c", "yes | head -c 5000"}, RunOptions{MaxOutput: 10})
	if err != nil || r.Stdout != "y\ny\ny\ny\ny\n" || !r.Truncated {
		t.Fatalf("Run = %+v, %v; want 10 bytes", r, err)
	}
}

func TestRunBinaryOutput(t *testing.T) {
	r, err := (&Module{}).Run(t.Context(), []string{"printf", `ok\377\000\001x`}, RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("ok\xff\x00\x01x")
	if !bytes.Equal(r.StdoutRaw, want) {
		t.Errorf("stdout_raw = %q, want %q", r.StdoutRaw, want)
	}
	if r.Stdout != "ok\uFFFD\uFFFD\uFFFDx" {
		t.Errorf("stdout = %q", r.Stdout)
	}
}

func TestRunLeftoverChildDoesNotHang(t *testing.T) {
	// The background sleep keeps stdout open; the call still returns once
	// the shell exits (after DefaultWaitDelay), not after 30 seconds.
	r, err := (&Module{}).Shell(t.Context(), "sleep 30 & echo $!", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(r.Stdout))
	if err != nil {
		t.Fatalf("stdout %q: %v", r.Stdout, err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if r.ExitCode != 0 || r.DurationS > 10 {
		t.Fatalf("Shell = %+v", r)
	}
}

func TestShell(t *testing.T) {
	r, err := (&Module{}).Shell(t.Context(), "echo $((1+2)) | tr 3 x", RunOptions{})
	if err != nil || r.Stdout != "x\n" {
		t.Fatalf("Shell = %+v, %v", r, err)
	}
}

func TestRunNotFound(t *testing.T) {
	_, err := (&Module{}).Run(t.Context(), []string{"gofunc-no-such-command"}, RunOptions{})
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	_, err = (&Module{}).Run(t.Context(), []string{"/nonexistent/bin/x"}, RunOptions{})
	modtest.WantCode(t, err, gofunc.CodeNotFound)
}

func TestHostileArguments(t *testing.T) {
	m := &Module{}
	ctx := t.Context()
	for name, call := range map[string]func() error{
		"empty argv":      func() error { _, err := m.Run(ctx, nil, RunOptions{}); return err },
		"empty program":   func() error { _, err := m.Run(ctx, []string{""}, RunOptions{}); return err },
		"NUL in argv":     func() error { _, err := m.Run(ctx, []string{"echo", "a\x00; reboot"}, RunOptions{}); return err },
		"10 GB output":    func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{MaxOutput: 10 << 30}); return err },
		"negative output": func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{MaxOutput: -1}); return err },
		"negative timeout": func() error {
			_, err := m.Run(ctx, []string{"true"}, RunOptions{Timeout: -time.Second})
			return err
		},
		"relative dir": func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{Dir: "../../etc"}); return err },
		"file as dir":  func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{Dir: "/etc/hostname"}); return err },
		"env not string": func() error {
			_, err := m.Run(ctx, []string{"true"}, RunOptions{Env: map[string]any{"A": 1}})
			return err
		},
		"env no equals": func() error {
			_, err := m.Run(ctx, []string{"true"}, RunOptions{Env: []string{"rm -rf /"}})
			return err
		},
		"env empty name": func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{Env: []string{"=x"}}); return err },
		"env NUL":        func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{Env: []string{"A=\x00"}}); return err },
		"env wrong type": func() error { _, err := m.Run(ctx, []string{"true"}, RunOptions{Env: 42}); return err },
		"stdin NUL":      func() error { _, err := m.Run(ctx, []string{"cat"}, RunOptions{Stdin: "a\x00"}); return err },
		"empty shell":    func() error { _, err := m.Shell(ctx, "  ", RunOptions{}); return err },
		"shell NUL":      func() error { _, err := m.Shell(ctx, "id\x00", RunOptions{}); return err },
		"exists NUL":     func() error { _, err := m.Exists("ls\x00"); return err },
		"exists empty":   func() error { _, err := m.Exists(""); return err },
	} {
		t.Run(name, func(t *testing.T) { modtest.WantCode(t, call(), gofunc.CodeBadArgs) })
	}
}

func TestExists(t *testing.T) {
	m := &Module{}
	for name, want := range map[string]bool{
		"ls":                     true,
		"sh":                     true,
		"/bin/sh":                true,
		"gofunc-no-such-command": false,
		"/etc/passwd":            false, // exists, not executable
		"/nonexistent":           false,
	} {
		if got, err := m.Exists(name); err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add("A=1\nB=2")
	f.Add("=x")
	f.Add("A\x00=1")
	f.Fuzz(func(t *testing.T, s string) {
		list := strings.Split(s, "\n")
		env, err := ParseEnv(list)
		if err != nil {
			return
		}
		for _, kv := range env {
			name, _, ok := strings.Cut(kv, "=")
			if !ok || name == "" || strings.IndexByte(kv, 0) >= 0 {
				t.Fatalf("ParseEnv accepted %q", kv)
			}
		}
	})
}

func ExampleModule_Run() {
	m := &Module{}
	res, err := m.Run(context.Background(), []string{"echo", "hello; rm -rf /"}, RunOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("exit %d: %s", res.ExitCode, res.Stdout)
	// Output: exit 0: hello; rm -rf /
}

func BenchmarkRunTrue(b *testing.B) {
	m := &Module{}
	for b.Loop() {
		if _, err := m.Run(context.Background(), []string{"true"}, RunOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
