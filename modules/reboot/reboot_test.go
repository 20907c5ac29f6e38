package reboot

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

// fakeShutdown writes a shutdown stand-in that records its argv and
// prints a line like systemd's shutdown does.
func fakeShutdown(t *testing.T, exit int) (*Module, *modtest.ArgvLog) {
	t.Helper()
	path, log := modtest.FakeBinary(t, "shutdown", fmt.Sprintf("echo 'Reboot scheduled'\nexit %d", exit))
	return &Module{Shutdown: path}, log
}

// recorded returns the arguments of shutdown's last run, without argv[0].
func recorded(t *testing.T, log *modtest.ArgvLog) []string {
	t.Helper()
	last := log.Last()
	if last == nil {
		t.Fatal("shutdown did not run")
	}
	return last[1:]
}

func TestRebootRunsShutdown(t *testing.T) {
	m, record := fakeShutdown(t, 0)
	before := time.Now()
	res, err := m.Reboot(t.Context(), 5, "-rf kernel update; don't panic")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"-r", "+5", "--", "-rf kernel update; don't panic"}; !reflect.DeepEqual(recorded(t, record), want) {
		t.Errorf("argv = %q, want %q", recorded(t, record), want)
	}
	if res.Output != "Reboot scheduled" || res.At.Before(before.Add(5*time.Minute-time.Second)) || res.At.After(time.Now().Add(5*time.Minute)) {
		t.Errorf("Reboot = %+v", res)
	}
	if _, err := m.Reboot(t.Context(), 0, ""); err != nil {
		t.Fatal(err)
	}
	if want := []string{"-r", "+0"}; !reflect.DeepEqual(recorded(t, record), want) {
		t.Errorf("argv = %q, want %q", recorded(t, record), want)
	}
	if ok, err := m.Cancel(t.Context()); !ok || err != nil {
		t.Fatalf("Cancel = %v, %v", ok, err)
	}
	if want := []string{"-c"}; !reflect.DeepEqual(recorded(t, record), want) {
		t.Errorf("argv = %q, want %q", recorded(t, record), want)
	}
}

func TestShutdownFailsOrMissing(t *testing.T) {
	m, _ := fakeShutdown(t, 1)
	_, err := m.Reboot(t.Context(), 1, "")
	modtest.WantCode(t, err, gofunc.CodeModule)
	_, err = (&Module{Shutdown: "/nonexistent/shutdown"}).Cancel(t.Context())
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

func TestHostileArguments(t *testing.T) {
	m, record := fakeShutdown(t, 0)
	for _, tc := range []struct {
		delay int
		msg   string
	}{
		{-1, ""},
		{1441, ""},
		{1 << 40, ""},
		{1, "bye\nnow"},
		{1, "nginx; reboot\x00"},
		{1, "\x1b[2J clear screen"},
		{1, strings.Repeat("x", 201)},
		{1, "\xff invalid"},
	} {
		_, err := m.Reboot(t.Context(), tc.delay, tc.msg)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
	}
	if record.Runs() != nil {
		t.Error("shutdown ran for refused arguments")
	}
	if err := CheckMessage(strings.Repeat("é", 200)); err != nil {
		t.Errorf("200 accented characters refused: %v", err)
	}
}

func TestArgvBuilder(t *testing.T) {
	m := &Module{Shutdown: "/sbin/shutdown"}
	argv, err := m.rebootArgv(1440, "see you")
	if err != nil || !reflect.DeepEqual(argv, []string{"/sbin/shutdown", "-r", "+1440", "--", "see you"}) {
		t.Fatalf("rebootArgv = %q, %v", argv, err)
	}
}

func FuzzCheckMessage(f *testing.F) {
	for _, s := range []string{"", "kernel update", "a\nb", "\x00", "\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		if CheckMessage(msg) != nil {
			return
		}
		if strings.ContainsAny(msg, "\x00\n\r\t\x1b") || len([]rune(msg)) > MaxMessageLen {
			t.Fatalf("CheckMessage accepted %q", msg)
		}
	})
}
