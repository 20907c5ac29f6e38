package command

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
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

// DefaultWaitDelay is how long Exec waits, once the process has exited (or
// been killed), for leftover children holding its stdout or stderr open
// before it closes the pipes and returns.
const DefaultWaitDelay = time.Second

// Spec describes one process for Exec. Other modules (nagios, service,
// reboot, networktest) run their tools through it too.
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
	// DefaultMaxOutput. Above MaxOutputCap is refused.
	MaxOutput int64
	// Timeout kills the process group when it passes and sets
	// Output.TimedOut; zero means none (ctx still bounds the run).
	Timeout time.Duration
	// WaitDelay: zero means DefaultWaitDelay.
	WaitDelay time.Duration
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

// Exec runs s.Argv in its own process group and waits for it. When ctx is
// done or s.Timeout passes, the whole group gets SIGKILL, so children die
// too. A non-zero exit is not an error: it is in Output.ExitCode.
//
// Errors are *gofunc.Fault: CodeBadArgs for an invalid Spec, CodeNotFound
// when the program does not exist, CodeTimeout or CodeCanceled when ctx
// ended the run, CodeModule when the process could not be started.
func Exec(ctx context.Context, s Spec) (Output, error) {
	if err := CheckArgv(s.Argv); err != nil {
		return Output{}, err
	}
	limit, err := outputLimit(s.MaxOutput, DefaultMaxOutput)
	if err != nil {
		return Output{}, err
	}
	runCtx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		runCtx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()

	cmd := exec.CommandContext(runCtx, s.Argv[0], s.Argv[1:]...)
	if cmd.Err != nil {
		if errors.Is(cmd.Err, exec.ErrNotFound) {
			return Output{}, gofunc.Errorf(gofunc.CodeNotFound, "%s: executable not found in PATH", s.Argv[0])
		}
		return Output{}, gofunc.Errorf(gofunc.CodeModule, "%v", cmd.Err)
	}
	cmd.Dir = s.Dir
	cmd.Env = s.Env
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
	runErr := cmd.Run()
	out := Output{
		Stdout:    stdout.buf.Bytes(),
		Stderr:    stderr.buf.Bytes(),
		Truncated: stdout.truncated || stderr.truncated,
		Duration:  time.Since(start),
	}
	if cmd.ProcessState == nil { // never started
		if ctx.Err() != nil {
			return Output{}, ContextFault(ctx, "command "+s.Argv[0])
		}
		if errors.Is(runErr, fs.ErrNotExist) {
			return Output{}, gofunc.Errorf(gofunc.CodeNotFound, "%s: no such file", s.Argv[0])
		}
		return Output{}, gofunc.Errorf(gofunc.CodeModule, "cannot start %s: %v", s.Argv[0], runErr)
	}
	status, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if status.Signaled() {
		out.ExitCode = -1
		out.Signal = SignalName(status.Signal())
	} else {
		out.ExitCode = status.ExitStatus()
	}
	if err := ctx.Err(); err != nil && status.Signaled() {
		return out, ContextFault(ctx, "command "+s.Argv[0])
	}
	out.TimedOut = runCtx.Err() != nil && status.Signaled() && status.Signal() == syscall.SIGKILL
	return out, nil
}

// ContextFault turns a done ctx into the fault the caller should see:
// CodeTimeout after a deadline, CodeCanceled otherwise.
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

// outputLimit applies the default and the cap to a requested limit.
func outputLimit(asked, def int64) (int64, error) {
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
