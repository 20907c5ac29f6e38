package modtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/gofunc/gofunc"
)

// recorder is a testing.TB that keeps the failures instead of failing.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

// failures runs check on a recorder in a goroutine of its own (Fatalf
// ends it) and returns what check reported.
func failures(check func(t testing.TB)) []string {
	r := &recorder{}
	var wg sync.WaitGroup
	wg.Go(func() { check(r) })
	wg.Wait()
	return r.errs
}

// good is documented exactly.
type good struct{}

func (good) Ping() bool                                              { return true }
func (good) Run(ctx context.Context, argv []string, opts any) error  { return nil }
func (good) Close() error                                            { return nil }
func (good) Doc() gofunc.ModuleDoc                                   { return goodDoc() }
func (good) unexported(ctx context.Context, a, b, c, d string) error { return nil }

var _ = good.unexported

func goodDoc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "good", Version: "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Ping": {Description: "ping"},
			"Run": {Description: "run", Args: []gofunc.ArgDoc{
				{Name: "argv", Type: "array", Description: "argv"},
				{Name: "options", Type: "struct", Description: "options", Optional: true},
			}},
		},
	}
}

// bad has one mistake of each kind CheckDoc must catch.
type bad struct{}

func (bad) Ping() bool                       { return true }
func (bad) Undocumented()                    {}
func (bad) Run(argv []string, opts any) bool { return true }
func (bad) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Version: "0.1",
		Methods: map[string]gofunc.MethodDoc{
			"Ping": {Description: "", Args: []gofunc.ArgDoc{{Name: "x", Type: "int", Description: "x"}}},
			"Run": {Description: "run", Args: []gofunc.ArgDoc{
				{Name: "argv", Type: "array", Description: "argv", Optional: true},
				{Name: "options", Type: "struct"},
			}},
			"Gone": {Description: "no such method"},
		},
	}
}

func TestCheckDoc(t *testing.T) {
	var r recorder
	CheckDoc(&r, good{})
	if len(r.errs) != 0 {
		t.Errorf("CheckDoc(good) reported %q", r.errs)
	}
	r = recorder{}
	CheckDoc(&r, bad{})
	all := strings.Join(r.errs, "\n")
	for _, want := range []string{
		"Version \"0.1\"",                   // module description and version
		"bad.Undocumented has no MethodDoc", // a method without a doc
		"bad.Ping: empty Description",
		"bad.Ping takes 0 arguments, its doc lists 1",
		"bad.Run: incomplete ArgDoc",
		"bad.Run: required argument \"options\" after an optional one",
		"doc for Gone, which is not an exported method",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("CheckDoc(bad) did not report %q; it reported:\n%s", want, all)
		}
	}
}

func TestWantCode(t *testing.T) {
	WantCode(t, gofunc.Errorf(gofunc.CodeDenied, "no"), gofunc.CodeDenied)
	WantCode(t, fmt.Errorf("wrapped: %w", gofunc.ErrNotFound), gofunc.CodeNotFound)
}

func TestFakeBinaryRecordsEveryRun(t *testing.T) {
	path, log := FakeBinary(t, "tool's name", `echo "ran from $dir"; exit 3`)
	if log.Runs() != nil || log.Last() != nil {
		t.Fatal("a log before any run is not empty")
	}
	args := [][]string{
		{"-rf", "; rm -rf /", "", "two\nlines", "it's \"quoted\" $HOME"},
		{},
	}
	for _, a := range args {
		out, err := exec.Command(path, a...).Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 3 {
			t.Fatalf("run = %v, want exit status 3", err)
		}
		if want := "ran from " + strings.TrimSuffix(path, "/tool's name") + "\n"; string(out) != want {
			t.Errorf("stdout = %q, want %q", out, want)
		}
	}
	want := [][]string{append([]string{path}, args[0]...), {path}}
	if got := log.Runs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Runs() = %q, want %q", got, want)
	}
	if got := log.Last(); !reflect.DeepEqual(got, want[1]) {
		t.Errorf("Last() = %q, want %q", got, want[1])
	}
	log.Reset()
	if got := log.Runs(); got != nil {
		t.Errorf("Runs() after Reset = %q", got)
	}
}

func TestFakeTool(t *testing.T) {
	stdout := "no newline at the end\x00 and a NUL"
	path, log := FakeTool(t, "dpkg-query", stdout, 0)
	out, err := exec.Command(path, "-W").Output()
	if err != nil || string(out) != stdout {
		t.Fatalf("FakeTool printed %q, %v; want %q", out, err, stdout)
	}
	if got := log.Last(); !reflect.DeepEqual(got, []string{path, "-W"}) {
		t.Errorf("Last() = %q", got)
	}
	path, _ = FakeTool(t, "false", "", 100)
	var exit *exec.ExitError
	if err := exec.Command(path).Run(); !errors.As(err, &exit) || exit.ExitCode() != 100 {
		t.Errorf("FakeTool exit = %v, want 100", err)
	}
}

func TestWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	WaitGone(t, cmd.Process.Pid) // a zombie until Wait below
	cmd.Wait()
	WaitGone(t, cmd.Process.Pid) // gone
}

// lineError is a parser's own error type.
type lineError struct{ line int }

func (e *lineError) Error() string { return fmt.Sprintf("line %d", e.line) }

// parseLines is a line parser: one entry per line; a line "!" is an error.
func parseLines(r io.Reader) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var lines []string
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "!" {
			return nil, &lineError{i + 1}
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

func TestWantErrorAs(t *testing.T) {
	WantErrorAs[*lineError](t, nil)
	WantErrorAs[*lineError](t, fmt.Errorf("reading: %w", &lineError{3}))
	got := failures(func(t testing.TB) { WantErrorAs[*lineError](t, errors.New("bufio: token too long")) })
	if len(got) != 1 || !strings.Contains(got[0], "is not a *modtest.lineError") {
		t.Errorf("WantErrorAs(another error) reported %q", got)
	}
}

func TestRoundTrip(t *testing.T) {
	same := func(s string) (string, bool) { return s, true }
	RoundTrip(t, []string{"a", "b c"}, parseLines, same)
	RoundTrip(t, nil, parseLines, same)
	for name, tc := range map[string]struct {
		format func(string) (string, bool)
		want   string
	}{
		"lossy":    {func(s string) (string, bool) { return strings.ToUpper(s), true }, "round trip differs"},
		"unparsed": {func(string) (string, bool) { return "!", true }, "re-parsing"},
		"skipped":  {func(string) (string, bool) { return "!", false }, ""},
	} {
		got := failures(func(t testing.TB) { RoundTrip(t, []string{"a"}, parseLines, tc.format) })
		if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
			t.Errorf("%s: RoundTrip reported %q, want %q", name, got, tc.want)
		}
	}
}
