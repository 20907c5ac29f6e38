// Package modtest holds the test helpers every built-in module's tests
// share: the check that a module's Doc covers exactly its remote methods,
// fake system tools (shell scripts that record how they were run), a
// fault-code assertion, a check that a killed process is gone, and the
// pieces of a line parser's fuzz target (seeds, error type, round trip).
//
// Of gofunc it imports only the root package, so a module's in-package tests
// can use it without an import cycle; it must never import fleettest,
// minion or a module.
package modtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
)

// CheckDoc fails t unless module's Doc documents exactly its remote
// methods (its exported methods but Doc and Close) with a Description
// and Version "1.0.0", each method with a Description and as many
// complete ArgDocs (Name, Type, Description) as the Go method takes after
// its context, optional arguments only at the end.
func CheckDoc(t testing.TB, module gofunc.Documented) {
	t.Helper()
	doc := module.Doc()
	if doc.Description == "" || doc.Version != "1.0.0" {
		t.Errorf("%T: Description %q, Version %q; want a description and version 1.0.0", module, doc.Description, doc.Version)
	}
	ctxType := reflect.TypeFor[context.Context]()
	seen := map[string]bool{}
	for method := range reflect.TypeOf(module).Methods() {
		if method.Name == "Doc" || method.Name == "Close" {
			continue
		}
		seen[method.Name] = true
		md, ok := doc.Methods[method.Name]
		if !ok {
			t.Errorf("%T.%s has no MethodDoc", module, method.Name)
			continue
		}
		if md.Description == "" {
			t.Errorf("%T.%s: empty Description", module, method.Name)
		}
		args := method.Type.NumIn() - 1 // the receiver
		if args > 0 && method.Type.In(1) == ctxType {
			args--
		}
		if len(md.Args) != args {
			t.Errorf("%T.%s takes %d arguments, its doc lists %d", module, method.Name, args, len(md.Args))
		}
		optional := false
		for _, a := range md.Args {
			if a.Name == "" || a.Type == "" || a.Description == "" {
				t.Errorf("%T.%s: incomplete ArgDoc %+v", module, method.Name, a)
			}
			if optional && !a.Optional {
				t.Errorf("%T.%s: required argument %q after an optional one", module, method.Name, a.Name)
			}
			optional = optional || a.Optional
		}
	}
	for name := range doc.Methods {
		if !seen[name] {
			t.Errorf("%T: doc for %s, which is not an exported method", module, name)
		}
	}
}

// WantCode fails t now unless err is a *gofunc.Fault (or wraps one) with
// the given code.
func WantCode(t testing.TB, err error, code gofunc.Code) {
	t.Helper()
	var f *gofunc.Fault
	if !errors.As(err, &f) || f.Code != code {
		t.Fatalf("err = %v, want a fault with code %v", err, code)
	}
}

// AddSeeds adds each file that can be read to f's seed corpus, whole and
// line by line. A file that cannot be read (a host file such as
// /proc/self/mountinfo on another system) adds nothing.
func AddSeeds(f *testing.F, files ...string) {
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		f.Add(string(b))
		for line := range strings.Lines(string(b)) {
			f.Add(line)
		}
	}
}

// WantErrorAs fails t now unless err is nil or is (or wraps) an E: a
// parser's own error type, such as *mount.ParseError.
func WantErrorAs[E error](t testing.TB, err error) {
	t.Helper()
	var target E
	if err != nil && !errors.As(err, &target) {
		t.Fatalf("error %v is not a %T", err, target)
	}
}

// RoundTrip fails t now unless entries, written back one line each with
// format, parse to the same entries. format's ok false means an entry
// cannot be written back (escaping made its line too long, say) and
// skips the check.
func RoundTrip[T any](t testing.TB, entries []T, parse func(io.Reader) ([]T, error), format func(T) (line string, ok bool)) {
	t.Helper()
	var b strings.Builder
	for _, e := range entries {
		line, ok := format(e)
		if !ok {
			return
		}
		b.WriteString(line + "\n")
	}
	again, err := parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatalf("re-parsing %q: %v", b.String(), err)
	}
	if diff := cmp.Diff(entries, again); diff != "" {
		t.Fatalf("round trip differs (-first +second):\n%s", diff)
	}
}

// WaitGone fails t unless process pid is gone, or a zombie, within five
// seconds: after a process group was killed, an orphan is reaped by PID 1
// when it gets to it. A survivor is killed before t fails.
func WaitGone(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("process %d survived the group kill", pid)
}

// FakeBinary writes an executable /bin/sh script called name into a new
// directory under t.TempDir() and returns its path, and the log of its
// runs. Each run first appends its argv (argv[0] included) to the log,
// then runs body. body may use $dir, the script's directory, where a test
// can leave files for it to read.
func FakeBinary(t testing.TB, name, body string) (path string, log *ArgvLog) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, name)
	log = &ArgvLog{t: t, path: filepath.Join(dir, ".argv")}
	// Each run: its argument count, then argv, each field ended by a NUL
	// (the one byte an argument cannot hold).
	script := fmt.Sprintf("#!/bin/sh\ndir=%s\nprintf '%%s\\0' \"$#\" \"$0\" \"$@\" >> \"$dir/.argv\"\n%s\n", shellQuote(dir), body)
	if err := os.WriteFile(path, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return path, log
}

// FakeTool is FakeBinary for the common stand-in: a tool that prints
// stdout (exactly, on its standard output) and exits with exitCode.
func FakeTool(t testing.TB, name, stdout string, exitCode int) (path string, log *ArgvLog) {
	t.Helper()
	path, log = FakeBinary(t, name, fmt.Sprintf("cat \"$dir/.stdout\"\nexit %d", exitCode))
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), ".stdout"), []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, log
}

// ArgvLog is what a FakeBinary recorded. Its methods fail the test that
// made it if the log is corrupt.
type ArgvLog struct {
	t    testing.TB
	path string
}

// Runs returns the argv of every run so far, argv[0] included, in order;
// nil when the binary never ran.
func (l *ArgvLog) Runs() [][]string {
	l.t.Helper()
	b, err := os.ReadFile(l.path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && len(b) == 0) {
		return nil
	}
	if err != nil {
		l.t.Fatal(err)
	}
	fields := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	var runs [][]string
	for len(fields) > 0 {
		n, err := strconv.Atoi(string(fields[0]))
		if err != nil || n < 0 || n+2 > len(fields) {
			l.t.Fatalf("corrupt argv log %s at %q", l.path, fields[0])
		}
		run := make([]string, 0, n+1)
		for _, f := range fields[1 : n+2] {
			run = append(run, string(f))
		}
		runs = append(runs, run)
		fields = fields[n+2:]
	}
	return runs
}

// Last returns the argv of the last run, argv[0] included; nil when the
// binary never ran.
func (l *ArgvLog) Last() []string {
	l.t.Helper()
	runs := l.Runs()
	if len(runs) == 0 {
		return nil
	}
	return runs[len(runs)-1]
}

// Reset forgets the runs so far.
func (l *ArgvLog) Reset() {
	l.t.Helper()
	if err := os.Remove(l.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.t.Fatal(err)
	}
}

// shellQuote quotes s for /bin/sh: inside single quotes nothing is special
// but the single quote itself.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
