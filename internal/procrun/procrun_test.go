package procrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunExitStatusAndStreams(t *testing.T) {
	dir := t.TempDir()
	out, err := Run(t.Context(), Spec{
		Argv:  []string{"sh", "-c", `cat; echo "$A" >&2; pwd; exit 7`, "; rm -rf /"},
		Dir:   dir,
		Env:   []string{"A=alpha"},
		Stdin: []byte("input\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "input\n" + dir + "\n"; string(out.Stdout) != want {
		t.Errorf("stdout = %q, want %q", out.Stdout, want)
	}
	if string(out.Stderr) != "alpha\n" || out.ExitCode != 7 || out.Signal != "" || out.TimedOut || out.Truncated {
		t.Errorf("Run = %+v", out)
	}
	if out.Duration <= 0 {
		t.Errorf("Duration = %v", out.Duration)
	}
}

func TestRunNoStdinIsDevNull(t *testing.T) {
	out, err := Run(t.Context(), Spec{Argv: []string{"cat"}})
	if err != nil || out.ExitCode != 0 || len(out.Stdout) != 0 {
		t.Fatalf("Run(cat) = %+v, %v; want an empty stdin", out, err)
	}
}

func TestRunSignalIsReported(t *testing.T) {
	out, err := Run(t.Context(), Spec{Argv: []string{"sh", "-c", "kill -TERM $$"}})
	if err != nil {
		t.Fatal(err)
	}
	if out.ExitCode != -1 || out.Signal != "TERM" || out.TimedOut {
		t.Errorf("Run = %+v, want exit -1 by signal TERM, not timed out", out)
	}
}

// sleeper is a shell that starts "sleep 60" in the background, prints
// its PID and waits for it.
var sleeper = []string{"sh", "-c", "sleep 60 & echo $!; wait"}

func TestRunTimeoutKillsGroup(t *testing.T) {
	out, err := Run(t.Context(), Spec{Argv: sleeper, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if !out.TimedOut || out.Signal != "KILL" || out.ExitCode != -1 {
		t.Fatalf("Run = %+v, want timed out by KILL", out)
	}
	modtest.WaitGone(t, pidIn(t, out.Stdout))
}

func TestRunContextEndKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(t.Context())
	var watcher sync.WaitGroup
	watcher.Go(func() { // cancels once the child's PID is written
		for ctx.Err() == nil {
			if b, err := os.ReadFile(pidFile); err == nil && bytes.HasSuffix(b, []byte("\n")) {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	_, err := Run(ctx, Spec{Argv: []string{"sh", "-c", `sleep 60 & echo $! > "$0"; wait`, pidFile}})
	cancel()
	watcher.Wait()
	modtest.WantCode(t, err, gofunc.CodeCanceled)
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	modtest.WaitGone(t, pidIn(t, b))

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = Run(ctx, Spec{Argv: []string{"sleep", "60"}})
	modtest.WantCode(t, err, gofunc.CodeTimeout)

	done, cancel2 := context.WithCancel(t.Context())
	cancel2()
	_, err = Run(done, Spec{Argv: []string{"sleep", "60"}})
	modtest.WantCode(t, err, gofunc.CodeCanceled)
}

func pidIn(t *testing.T, b []byte) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid %q: %v", b, err)
	}
	return pid
}

func TestRunLeftoverChildDoesNotHang(t *testing.T) {
	// The background sleep keeps stdout open; Run returns once the shell
	// has exited and WaitDelay has passed, not after 30 seconds.
	out, err := Run(t.Context(), Spec{Argv: []string{"sh", "-c", "sleep 30 & echo $!"}, WaitDelay: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pid := pidIn(t, out.Stdout)
	// Run did not wait for the leftover child: it is still running.
	_, statErr := os.Stat(fmt.Sprintf("/proc/%d", pid))
	syscall.Kill(pid, syscall.SIGKILL)
	if out.ExitCode != 0 || statErr != nil {
		t.Fatalf("Run = %+v; the leftover child: %v", out, statErr)
	}
}

func TestRunTruncates(t *testing.T) {
	out, err := Run(t.Context(), Spec{Argv: []string{"sh", "-c", "yes | head -c 5000; yes | head -c 50 >&2"}, MaxOutput: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Stdout) != 1000 || len(out.Stderr) != 50 || !out.Truncated {
		t.Fatalf("stdout %d bytes, stderr %d, truncated %v; want 1000, 50, true", len(out.Stdout), len(out.Stderr), out.Truncated)
	}
}

func TestRunMissingProgram(t *testing.T) {
	for _, prog := range []string{"gofunc-no-such-command", "/nonexistent/bin/x"} {
		_, err := Run(t.Context(), Spec{Argv: []string{prog}})
		modtest.WantCode(t, err, gofunc.CodeNotFound)
		_, err = Run(t.Context(), Spec{Argv: []string{prog}, Tool: true})
		modtest.WantCode(t, err, gofunc.CodeUnavailable)
		if !strings.Contains(err.Error(), prog+" is not installed") {
			t.Errorf("Run(missing tool) = %v, want it named", err)
		}
	}
	// Present but not executable: it could not start, it is not missing.
	_, err := Run(t.Context(), Spec{Argv: []string{"/etc/hostname"}, Tool: true})
	modtest.WantCode(t, err, gofunc.CodeModule)
}

func TestRunHostileSpec(t *testing.T) {
	for name, s := range map[string]Spec{
		"nil argv":        {},
		"empty program":   {Argv: []string{""}},
		"NUL in argv":     {Argv: []string{"echo", "a\x00; reboot"}},
		"10 GB output":    {Argv: []string{"true"}, MaxOutput: 10 << 30},
		"negative output": {Argv: []string{"true"}, MaxOutput: -1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Run(t.Context(), s)
			modtest.WantCode(t, err, gofunc.CodeBadArgs)
		})
	}
}

func TestOutputLimit(t *testing.T) {
	for _, tc := range []struct {
		asked, want int64
		ok          bool
	}{{0, 77, true}, {1, 1, true}, {MaxOutputCap, MaxOutputCap, true}, {MaxOutputCap + 1, 0, false}, {-1, 0, false}} {
		got, err := OutputLimit(tc.asked, 77)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("OutputLimit(%d, 77) = %d, %v; want %d, ok %v", tc.asked, got, err, tc.want, tc.ok)
		}
	}
}

func TestMessage(t *testing.T) {
	for _, tc := range []struct {
		stdout, stderr, want string
	}{
		{"", "", ""},
		{"  out \n", "", "out"},
		{"", "\terr\n", "err"},
		{"out\n", "err\n", "err\nout"},
		{"", "bad \x1b[31m\xff", "bad \uFFFD[31m\uFFFD"},
	} {
		if got := (Output{Stdout: []byte(tc.stdout), Stderr: []byte(tc.stderr)}).Message(); got != tc.want {
			t.Errorf("Message(%q, %q) = %q, want %q", tc.stdout, tc.stderr, got, tc.want)
		}
	}
	long := Output{Stderr: []byte("x" + strings.Repeat("é", MaxMessage))}
	got := long.Message()
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "...") || len(got) > MaxMessage+3 || len(got) < MaxMessage {
		t.Errorf("Message of %d bytes = %d bytes, valid %v", len(long.Stderr), len(got), utf8.ValidString(got))
	}
}

func TestFault(t *testing.T) {
	for _, tc := range []struct {
		out  Output
		want string
	}{
		{Output{ExitCode: 32, Stderr: []byte("mount: /x: no such device\n")}, "mount exited with 32: mount: /x: no such device"},
		{Output{ExitCode: 1}, "mount exited with 1"},
		{Output{ExitCode: -1, Signal: "SEGV"}, "mount was killed by signal SEGV"},
		{Output{ExitCode: -1, Signal: "KILL", TimedOut: true, Stdout: []byte("half")}, "mount timed out and was killed: half"},
	} {
		f := tc.out.Fault(gofunc.CodeConflict, "mount")
		if f.Code != gofunc.CodeConflict || f.Message != tc.want {
			t.Errorf("Fault = %v, want code conflict and %q", f, tc.want)
		}
	}
}

func TestContextFault(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	modtest.WantCode(t, ContextFault(ctx, "x"), gofunc.CodeCanceled)
	ctx, cancel = context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
	defer cancel()
	f := ContextFault(ctx, "mount.list")
	modtest.WantCode(t, f, gofunc.CodeTimeout)
	if !strings.Contains(f.Message, "mount.list") {
		t.Errorf("ContextFault = %v, want the work named", f)
	}
}

func TestToolEnv(t *testing.T) {
	t.Setenv("GOFUNC_LEAK", "secret")
	out, err := Run(t.Context(), Spec{Argv: []string{"/bin/sh", "-c", "env"}, Env: ToolEnv("DEBIAN_FRONTEND=noninteractive")})
	if err != nil {
		t.Fatal(err)
	}
	env := string(out.Stdout)
	for _, want := range []string{"LC_ALL=C\n", "LANG=C\n", "DEBIAN_FRONTEND=noninteractive\n", "PATH=/usr/local/sbin:"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment %q lacks %q", env, want)
		}
	}
	if strings.Contains(env, "GOFUNC_LEAK") {
		t.Errorf("the minion's environment leaked: %q", env)
	}
}

func TestFindProgram(t *testing.T) {
	dir := t.TempDir()
	missing, present := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(present, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	if got := FindProgram(missing, present); got != present {
		t.Errorf("FindProgram = %q, want the one that exists, %q", got, present)
	}
	if got := FindProgram(missing, filepath.Join(dir, "c")); got != missing {
		t.Errorf("FindProgram(none exists) = %q, want the first, %q", got, missing)
	}
}

func TestSignalName(t *testing.T) {
	if got := SignalName(syscall.SIGKILL); got != "KILL" {
		t.Errorf("SignalName(SIGKILL) = %q", got)
	}
	if got := SignalName(syscall.Signal(200)); got == "" {
		t.Error("SignalName(200) is empty")
	}
}

func TestSafeText(t *testing.T) {
	for _, tc := range []struct {
		in, text string
		raw      bool
	}{
		{"", "", false},
		{"héllo\tworld\r\n", "héllo\tworld\r\n", false},
		{"\uFFFD is fine", "\uFFFD is fine", false},
		{"a\x00b", "a\uFFFDb", true},
		{"\x1b[31mred", "\uFFFD[31mred", true},
		{"\xff\xfe", "\uFFFD\uFFFD", true},
		{"\uFFFE", "\uFFFD", true},
	} {
		text, raw := SafeText([]byte(tc.in))
		if text != tc.text || (raw != nil) != tc.raw || (raw != nil && string(raw) != tc.in) {
			t.Errorf("SafeText(%q) = %q, %q; want %q, raw %v", tc.in, text, raw, tc.text, tc.raw)
		}
	}
}

func FuzzSafeText(f *testing.F) {
	for _, s := range []string{"", "plain", "a\x00b", "\xff", "\xed\xa0\x80", "\U0010FFFF\uFFFF"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		text, raw := SafeText(b)
		if !utf8.ValidString(text) || !xmlSafe([]byte(text)) {
			t.Fatalf("SafeText(%q) text %q is not XML-safe", b, text)
		}
		if raw == nil && text != string(b) {
			t.Fatalf("SafeText(%q) altered the text without raw bytes", b)
		}
		if raw != nil && !bytes.Equal(raw, b) {
			t.Fatalf("SafeText(%q) raw = %q", b, raw)
		}
	})
}

func FuzzMessage(f *testing.F) {
	f.Add([]byte("out"), []byte("err"))
	f.Add([]byte("\xff\x00"), []byte(strings.Repeat("é", MaxMessage)))
	f.Fuzz(func(t *testing.T, stdout, stderr []byte) {
		msg := Output{Stdout: stdout, Stderr: stderr}.Message()
		if !utf8.ValidString(msg) || !xmlSafe([]byte(msg)) || len(msg) > MaxMessage+len("...") {
			t.Fatalf("Message(%q, %q) = %q: not XML-safe or too long", stdout, stderr, msg)
		}
	})
}

func ExampleRun() {
	out, err := Run(context.Background(), Spec{Argv: []string{"sh", "-c", "echo $0; exit 3", "; rm -rf /"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("exit %d: %s", out.ExitCode, out.Stdout)
	fmt.Println(out.Fault(gofunc.CodeModule, "sh").Message)
	// Output:
	// exit 3: ; rm -rf /
	// sh exited with 3: ; rm -rf /
}

func BenchmarkRunTrue(b *testing.B) {
	for b.Loop() {
		if _, err := Run(context.Background(), Spec{Argv: []string{"true"}}); err != nil {
			b.Fatal(err)
		}
	}
}
