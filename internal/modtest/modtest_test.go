package modtest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
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
