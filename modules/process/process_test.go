package process

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

// startChild starts prog with args and returns it; the cleanup kills it.
func startChild(t *testing.T, prog string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(prog, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitSignal waits for cmd to exit and returns the signal that ended it.
func waitSignal(t *testing.T, cmd *exec.Cmd) syscall.Signal {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the child did not die")
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() {
		t.Fatalf("the child exited with %v, not by a signal", cmd.ProcessState)
	}
	return ws.Signal()
}

func TestListAndInfo(t *testing.T) {
	m := &Module{}
	child := startChild(t, "sleep", "60")
	procs, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(procs, func(p Proc) bool { return p.PID == child.Process.Pid })
	if i < 0 {
		t.Fatalf("List has no process %d", child.Process.Pid)
	}
	p := procs[i]
	if p.PPID != os.Getpid() || p.User != "root" || p.Command != "sleep" ||
		!slices.Equal(p.Args, []string{"sleep", "60"}) || p.MemRSS <= 0 || p.MemPercent <= 0 {
		t.Errorf("List entry = %+v", p)
	}
	if !slices.IsSortedFunc(procs, func(a, b Proc) int { return a.PID - b.PID }) {
		t.Error("List is not ordered by PID")
	}

	info, err := m.Info(t.Context(), child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if info.PID != p.PID || info.Command != "sleep" || info.Threads != 1 || info.Exe == "" ||
		time.Since(info.Started) > time.Minute || info.Status == "" {
		t.Errorf("Info = %+v", info)
	}
}

func TestKillChild(t *testing.T) {
	m := &Module{}
	for _, sig := range []any{"TERM", "SIGKILL", 10, "2", "hup"} {
		child := startChild(t, "sleep", "60")
		want, _ := ParseSignal(sig)
		if ok, err := m.Kill(t.Context(), child.Process.Pid, sig); !ok || err != nil {
			t.Fatalf("Kill(%v) = %v, %v", sig, ok, err)
		}
		if got := waitSignal(t, child); got != want {
			t.Errorf("Kill(%v): child died of %v, want %v", sig, got, want)
		}
		// The process is gone (reaped): now it is not found.
		_, err := m.Kill(t.Context(), child.Process.Pid, sig)
		modtest.WantCode(t, err, gofunc.CodeNotFound)
	}
	child := startChild(t, "sleep", "60")
	if _, err := m.Kill(t.Context(), child.Process.Pid, nil); err != nil {
		t.Fatal(err)
	}
	if got := waitSignal(t, child); got != syscall.SIGTERM {
		t.Errorf("default signal %v, want TERM", got)
	}
}

func TestPkillExactName(t *testing.T) {
	// A copy of sleep under a unique name, so nothing else matches; longer
	// than the kernel's 15-character comm, so the full name must be used.
	name := fmt.Sprintf("gofunc-pkill-%06d", os.Getpid()%1000000)
	prog := filepath.Join(t.TempDir(), name)
	data, err := os.ReadFile("/bin/sleep")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prog, data, 0o755); err != nil {
		t.Fatal(err)
	}
	a := startChild(t, prog, "60")
	b := startChild(t, prog, "61")
	other := startChild(t, "sleep", "62")
	m := &Module{}
	pids, err := m.Pkill(t.Context(), name[:len(name)-1], "KILL") // a prefix is not a match
	if err != nil || len(pids) != 0 {
		t.Fatalf("Pkill(prefix) = %v, %v", pids, err)
	}
	pids, err = m.Pkill(t.Context(), name, "KILL")
	if err != nil {
		t.Fatal(err)
	}
	want := []int{a.Process.Pid, b.Process.Pid}
	slices.Sort(want)
	if !slices.Equal(pids, want) {
		t.Fatalf("Pkill = %v, want %v", pids, want)
	}
	waitSignal(t, a)
	waitSignal(t, b)
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("an unrelated sleep was hit: %v", err)
	}
}

func TestNeverSignalled(t *testing.T) {
	m := &Module{}
	_, err := m.Kill(t.Context(), 1, "TERM")
	modtest.WantCode(t, err, gofunc.CodeDenied)
	_, err = m.Kill(t.Context(), os.Getpid(), "KILL")
	modtest.WantCode(t, err, gofunc.CodeDenied)
	// pkill's filter skips them even when their names match.
	if checkTarget(1) == nil || checkTarget(os.Getpid()) == nil || checkTarget(os.Getpid()+1) != nil {
		t.Error("checkTarget does not protect PID 1 and the minion")
	}
}

func TestHostileArguments(t *testing.T) {
	m := &Module{}
	ctx := t.Context()
	child := startChild(t, "sleep", "60")
	pid := child.Process.Pid
	for name, call := range map[string]func() error{
		"pid -1 (everything)": func() error { _, err := m.Kill(ctx, -1, "KILL"); return err },
		"pid 0 (own group)":   func() error { _, err := m.Kill(ctx, 0, "KILL"); return err },
		"pid too big":         func() error { _, err := m.Kill(ctx, 1<<30, "KILL"); return err },
		"signal injection":    func() error { _, err := m.Kill(ctx, pid, "KILL; reboot"); return err },
		"signal 0":            func() error { _, err := m.Kill(ctx, pid, 0); return err },
		"signal 32":           func() error { _, err := m.Kill(ctx, pid, "32"); return err },
		"signal -9":           func() error { _, err := m.Kill(ctx, pid, -9); return err },
		"signal STOP":         func() error { _, err := m.Kill(ctx, pid, "STOP"); return err },
		"signal type":         func() error { _, err := m.Kill(ctx, pid, 9.5); return err },
		"empty name":          func() error { _, err := m.Pkill(ctx, "", "TERM"); return err },
		"NUL in name":         func() error { _, err := m.Pkill(ctx, "sleep\x00", "TERM"); return err },
		"long name":           func() error { _, err := m.Pkill(ctx, string(make([]byte, 300)), "TERM"); return err },
		"pkill bad signal":    func() error { _, err := m.Pkill(ctx, "sleep", "-rf"); return err },
		"info pid 0":          func() error { _, err := m.Info(ctx, 0); return err },
	} {
		t.Run(name, func(t *testing.T) { modtest.WantCode(t, call(), gofunc.CodeBadArgs) })
	}
	if err := child.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the child was hit by a refused call: %v", err)
	}
}

func TestInfoNotFound(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	_, err := (&Module{}).Info(t.Context(), cmd.Process.Pid) // reaped: gone
	modtest.WantCode(t, err, gofunc.CodeNotFound)
}

func TestLoadavg(t *testing.T) {
	avg, err := (&Module{}).Loadavg(t.Context())
	if err != nil || len(avg) != 3 {
		t.Fatalf("Loadavg = %v, %v", avg, err)
	}
	for _, v := range avg {
		if v < 0 {
			t.Errorf("negative load %v", v)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[any]syscall.Signal{
		nil: syscall.SIGTERM, "": syscall.SIGTERM, "TERM": syscall.SIGTERM, "sigusr1": syscall.SIGUSR1,
		"QUIT": syscall.SIGQUIT, 1: syscall.SIGHUP, int64(31): syscall.Signal(31), "9": syscall.SIGKILL,
	} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%#v) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{"TERM", "SIGKILL", "9", "0", "32", "-1", "STOP", "sigHUP"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, err := ParseSignal(s)
		if err == nil && (sig < 1 || sig > 31) {
			t.Fatalf("ParseSignal(%q) = %d", s, sig)
		}
	})
}
