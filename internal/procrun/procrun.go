// Package procrun runs the programs behind gofunc's modules, the one way
// every module does it:
//
//   - argv only: the program and its arguments go to execve as they are,
//     never through a shell (command.shell asks for /bin/sh by name);
//   - a process group of its own, killed as a whole (SIGKILL to -pgid)
//     when the call's context ends or Spec.Timeout passes, so children
//     die with their parent;
//   - a WaitDelay, so a leftover child holding stdout open cannot hold
//     the call once the process itself has exited;
//   - bounded output: each of stdout and stderr keeps its first MaxOutput
//     bytes, the rest is read and dropped (the child never blocks on a
//     full pipe) and Output.Truncated says so;
//   - a typed account of the end: exit status, or the signal's name, and
//     whether Spec.Timeout killed it. A non-zero exit is a result, not an
//     error: the module decides what it means.
//
// Errors are *gofunc.Fault values ready for the wire: CodeBadArgs for an
// invalid Spec, CodeNotFound for a missing program (CodeUnavailable when
// Spec.Tool says the module depends on it), CodeTimeout or CodeCanceled
// when the context ended the run, CodeModule when it could not start.
//
// The package also holds what modules need around a run: SafeText (bytes
// to XML-safe text, with the exact bytes kept when they differ),
// Output.Message and Output.Fault (a tool's complaint as a fault), and
// ContextFault (the fault for a context that ended, also used by modules
// whose slow work is not a process).
package procrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
)

// Output limits, per stream (stdout and stderr each).
const (
	DefaultMaxOutput = 1 << 20  // 1 MiB
	MaxOutputCap     = 64 << 20 // 64 MiB
)

// DefaultWaitDelay is how long Run waits, once the process has exited (or
// been killed), for leftover children holding its stdout or stderr open
// before it closes the pipes and returns.
const DefaultWaitDelay = time.Second

// MaxMessage bounds the tool output Output.Message quotes in a fault.
const MaxMessage = 4096

// toolPath is the PATH of ToolEnv.
const toolPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Spec describes one process for Run.
type Spec struct {
	// Argv is the program and its arguments; Argv[0] without a slash is
	// looked up in the minion's PATH. No shell is involved.
	Argv []string
	// Dir is the working directory; empty means the minion's.
	Dir string
	// Env is the complete environment; nil means the minion's.
	Env []string
	// Stdin is fed to the process; nil means /dev/null.
	Stdin []byte
	// MaxOutput caps the bytes kept from each of stdout and stderr (the
	// rest is read and dropped, and Output.Truncated set); zero means
	// DefaultMaxOutput (1 MiB). Above MaxOutputCap (64 MiB) is refused.
	MaxOutput int64
	// Timeout kills the process group when it passes and sets
	// Output.TimedOut; zero means none (ctx still bounds the run).
	Timeout time.Duration
	// WaitDelay: zero means DefaultWaitDelay (1s).
	WaitDelay time.Duration
	// ExtraFiles are open files the process inherits as fds 3, 4, ...
	// (os/exec's Cmd.ExtraFiles): a module hands a tool a file it has
	// pinned and checked as /proc/self/fd/3 rather than a path the
	// tool would resolve again. Run does not close them.
	ExtraFiles []*os.File
	// Tool marks Argv[0] as a program the module depends on (mount,
	// systemctl, dpkg-query) rather than one the caller named: when it
	// does not exist the host lacks a facility, and Run fails with
	// CodeUnavailable instead of CodeNotFound. False by default.
	Tool bool
}

// Output is what a process did.
type Output struct {
	// ExitCode is the exit status, or -1 when a signal ended the process.
	ExitCode int
	// Signal names the signal that ended the process ("KILL"), or is empty.
	Signal    string
	Stdout    []byte        // at most Spec.MaxOutput bytes
	Stderr    []byte        // at most Spec.MaxOutput bytes
	Truncated bool          // stdout or stderr went over MaxOutput
	TimedOut  bool          // Spec.Timeout passed and the process group was killed
	Duration  time.Duration // wall-clock time from start to exit
}

// Run runs s.Argv in its own process group and waits for it. When ctx is
// done or s.Timeout passes, the whole group gets SIGKILL, so children die
// too. A non-zero exit is not an error: it is in Output.ExitCode.
//
// When ctx ends the run, Run fails with ContextFault's CodeTimeout or
// CodeCanceled; when s.Timeout does, Run succeeds with Output.TimedOut set
// (the caller chose that limit and may want the partial output).
func Run(ctx context.Context, s Spec) (Output, error) {
	if err := CheckArgv(s.Argv); err != nil {
		return Output{}, err
	}
	limit, err := OutputLimit(s.MaxOutput, DefaultMaxOutput)
	if err != nil {
		return Output{}, err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()

	cmd := exec.CommandContext(runCtx, s.Argv[0], s.Argv[1:]...)
	if cmd.Err != nil { // the PATH lookup failed
		if errors.Is(cmd.Err, exec.ErrNotFound) {
			return Output{}, s.missing("executable not found in PATH")
		}
		return Output{}, gofunc.Errorf(gofunc.CodeModule, "%v", cmd.Err)
	}
	cmd.Dir = s.Dir
	cmd.Env = s.Env
	cmd.ExtraFiles = s.ExtraFiles
	if s.Stdin != nil {
		cmd.Stdin = bytes.NewReader(s.Stdin)
	}
	stdout, stderr := &capWriter{max: limit}, &capWriter{max: limit}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// The child is its group's leader: -pid signals the whole group.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = s.WaitDelay
	if cmd.WaitDelay <= 0 {
		cmd.WaitDelay = DefaultWaitDelay
	}

	start := time.Now()
	// An error from Run once the process has started (an exit status, or
	// exec.ErrWaitDelay for a leftover child) is told by ProcessState.
	runErr := cmd.Run()
	if cmd.ProcessState == nil { // never started
		if ctx.Err() != nil {
			return Output{}, ContextFault(ctx, "command "+s.Argv[0])
		}
		if errors.Is(runErr, fs.ErrNotExist) {
			return Output{}, s.missing("no such file")
		}
		return Output{}, gofunc.Errorf(gofunc.CodeModule, "cannot start %s: %v", s.Argv[0], runErr)
	}
	out := Output{
		Stdout:    stdout.buf.Bytes(),
		Stderr:    stderr.buf.Bytes(),
		Truncated: stdout.truncated || stderr.truncated,
		Duration:  time.Since(start),
	}
	status, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() {
		out.ExitCode = -1
		out.Signal = SignalName(status.Signal())
	} else {
		out.ExitCode = status.ExitStatus()
	}
	if ctx.Err() != nil && status.Signaled() {
		return out, ContextFault(ctx, "command "+s.Argv[0])
	}
	out.TimedOut = runCtx.Err() != nil && status.Signaled() && status.Signal() == syscall.SIGKILL
	return out, nil
}

// missing is the fault for a program that does not exist.
func (s Spec) missing(why string) *gofunc.Fault {
	if s.Tool {
		return gofunc.Errorf(gofunc.CodeUnavailable, "%s is not installed on this host (%s)", s.Argv[0], why)
	}
	return gofunc.Errorf(gofunc.CodeNotFound, "%s: %s", s.Argv[0], why)
}

// Message turns the output of a tool that failed into one piece of text
// for a fault: stderr then stdout, trimmed, XML-safe (see SafeText) and
// cut to at most MaxMessage bytes with "..." after the cut.
func (o Output) Message() string {
	b := bytes.TrimSpace(o.Stderr)
	if rest := bytes.TrimSpace(o.Stdout); len(rest) > 0 {
		if len(b) > 0 {
			b = append(append(bytes.Clone(b), '\n'), rest...)
		} else {
			b = rest
		}
	}
	text, _ := SafeText(b)
	if len(text) <= MaxMessage {
		return text
	}
	cut := MaxMessage
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut] + "..."
}

// Fault describes a run that did not succeed as a fault with code:
// "what exited with 32: <Message>", "what was killed by signal KILL:
// ...", or "what timed out and was killed: ...". what names the run,
// typically the program's base name.
func (o Output) Fault(code gofunc.Code, what string) *gofunc.Fault {
	var how string
	switch {
	case o.TimedOut:
		how = "timed out and was killed"
	case o.Signal != "":
		how = "was killed by signal " + o.Signal
	default:
		how = fmt.Sprintf("exited with %d", o.ExitCode)
	}
	if msg := o.Message(); msg != "" {
		return gofunc.Errorf(code, "%s %s: %s", what, how, msg)
	}
	return gofunc.Errorf(code, "%s %s", what, how)
}

// ContextFault turns a done ctx into the fault the caller should see:
// CodeTimeout after a deadline, CodeCanceled otherwise. what names the
// work that was cut short.
func ContextFault(ctx context.Context, what string) *gofunc.Fault {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return gofunc.Errorf(gofunc.CodeTimeout, "%s: deadline exceeded", what)
	}
	return gofunc.Errorf(gofunc.CodeCanceled, "%s: canceled", what)
}

// CheckArgv validates an argv: at least one element, a non-empty program
// name, no NUL bytes anywhere (the kernel would cut the string there).
func CheckArgv(argv []string) error {
	if len(argv) == 0 || argv[0] == "" {
		return gofunc.Errorf(gofunc.CodeBadArgs, "argv is empty")
	}
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return gofunc.Errorf(gofunc.CodeBadArgs, "argv[%d] contains a NUL byte", i)
		}
	}
	return nil
}

// OutputLimit applies a default and MaxOutputCap to a requested
// per-stream limit: zero means def; a negative limit or one above the cap
// is CodeBadArgs (the argument is named max_output, as in command.run).
func OutputLimit(asked, def int64) (int64, error) {
	switch {
	case asked < 0:
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "max_output %d is negative", asked)
	case asked > MaxOutputCap:
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "max_output %d is above the cap of %d bytes", asked, MaxOutputCap)
	case asked == 0:
		return def, nil
	}
	return asked, nil
}

// ToolEnv returns the whole environment for a system tool: a fixed PATH
// and the C locale (so its messages can be matched), then extra. Nothing
// the minion inherited leaks into the tool.
func ToolEnv(extra ...string) []string {
	return append([]string{toolPath, "LC_ALL=C", "LANG=C"}, extra...)
}

// FindProgram returns the first of paths that exists, or paths[0] when
// none does (so that running it reports the program missing). It finds a
// tool that distributions install in different places
// ("/usr/bin/systemctl", "/bin/systemctl").
func FindProgram(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// SignalName returns a signal's name without the SIG prefix ("TERM").
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return strings.TrimPrefix(name, "SIG")
	}
	return sig.String()
}

// capWriter keeps the first max bytes written to it and counts the rest
// as dropped; it never fails, so the process is never blocked or killed
// by a full pipe.
type capWriter struct {
	buf       bytes.Buffer
	max       int64
	truncated bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	room := w.max - int64(w.buf.Len())
	if room < int64(len(p)) {
		w.truncated = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	w.buf.Write(p)
	return len(p), nil
}

// SafeText returns b as a string an XML-RPC response can carry: when b is
// valid UTF-8 made only of characters XML 1.0 allows, text is b and raw is
// nil; otherwise text is a lossy copy (each offending byte or character
// replaced by U+FFFD) and raw is b itself, to be sent as base64.
func SafeText(b []byte) (text string, raw []byte) {
	if xmlSafe(b) {
		return string(b), nil
	}
	var sb strings.Builder
	for rest := b; len(rest) > 0; {
		r, size := utf8.DecodeRune(rest)
		if !xmlChar(r) {
			r = utf8.RuneError
		}
		sb.WriteRune(r)
		rest = rest[size:]
	}
	return sb.String(), bytes.Clone(b)
}

func xmlSafe(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if (r == utf8.RuneError && size == 1) || !xmlChar(r) {
			return false
		}
		b = b[size:]
	}
	return true
}

// xmlChar reports whether r may appear in an XML 1.0 document.
func xmlChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		(r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) ||
		(r >= 0x10000 && r <= 0x10FFFF)
}
