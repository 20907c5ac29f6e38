package mount

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
)

// maxOutput bounds what is kept of a child's stdout and of its stderr.
const maxOutput = 1 << 20

// waitDelay is how long a killed child's pipes may stay open before Wait gives up.
const waitDelay = 2 * time.Second

// childEnv is the whole environment of the tools this module runs: a fixed
// PATH and the C locale, so their messages are parseable and nothing the
// daemon inherited leaks into them.
var childEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "LANG=C"}

// result is what a finished child left behind.
type result struct {
	stdout, stderr []byte
	exitCode       int
}

// cappedBuffer keeps the first max bytes written to it and drops the rest,
// so a chatty tool cannot exhaust memory.
type cappedBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// run runs argv (never through a shell) with extraEnv added to childEnv. A
// non-zero exit is not an error: it is reported in result.exitCode. The
// child runs in its own process group, killed as a whole when ctx ends.
func run(ctx context.Context, extraEnv []string, argv ...string) (result, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append([]string(nil), childEnv...), extraEnv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	stdout, stderr := &cappedBuffer{max: maxOutput}, &cappedBuffer{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return result{}, contextFault(ctxErr, argv[0])
	}
	res := result{stdout: stdout.buf.Bytes(), stderr: stderr.buf.Bytes()}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.Exited():
		res.exitCode = exitErr.ExitCode()
	case errors.As(err, &exitErr):
		return res, gofunc.Errorf(gofunc.CodeModule, "%s: %v", argv[0], exitErr)
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, syscall.ENOENT):
		return res, gofunc.Errorf(gofunc.CodeUnavailable, "%s is not installed: %v", argv[0], err)
	default:
		return res, gofunc.Errorf(gofunc.CodeModule, "%s: %v", argv[0], err)
	}
	return res, nil
}

// contextFault turns a context's error into the fault the caller should see.
func contextFault(err error, what string) *gofunc.Fault {
	if errors.Is(err, context.DeadlineExceeded) {
		return gofunc.Errorf(gofunc.CodeTimeout, "%s: deadline exceeded", what)
	}
	return gofunc.Errorf(gofunc.CodeCanceled, "%s: %v", what, err)
}

// maxMessage bounds the tool output quoted in a fault message.
const maxMessage = 4096

// message turns a tool's output into a one-piece fault message.
func message(b []byte) string {
	s := strings.ToValidUTF8(strings.TrimSpace(string(b)), "?")
	if len(s) > maxMessage {
		s = s[:maxMessage] + "..."
	}
	return s
}
