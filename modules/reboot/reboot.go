// Package reboot is the "reboot" module: it schedules a reboot with
// shutdown(8), or cancels one. Both methods are Dangerous: an ACL must
// name them; a catch-all grant does not cover them.
//
// reboot.reboot(5, "kernel update") runs
//
//	shutdown -r +5 -- "kernel update"
//
// The delay is 0 to 1440 minutes (default 1, which leaves the call time
// to return); the message is at most 200 printable characters and goes
// after "--", so it is never read as an option.
package reboot

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Limits of the arguments.
const (
	DefaultDelayMinutes = 1
	MaxDelayMinutes     = 1440
	MaxMessageLen       = 200
)

// shutdownTimeout bounds one run of shutdown (it only schedules).
const shutdownTimeout = 30 * time.Second

// Module is the reboot module. Its exported fields are its configuration;
// it is safe for concurrent use.
type Module struct {
	// Shutdown is the shutdown program; empty means /usr/sbin/shutdown,
	// or /sbin/shutdown when only that exists.
	Shutdown string
}

// Result is what reboot returns.
type Result struct {
	// At is when the reboot is due (UTC).
	At time.Time `xmlrpc:"at"`
	// Output is what shutdown printed.
	Output string `xmlrpc:"output"`
}

// Reboot schedules a reboot in delayMinutes minutes, with message for
// logged-in users.
func (m *Module) Reboot(ctx context.Context, delayMinutes int, message string) (Result, error) {
	argv, err := m.rebootArgv(delayMinutes, message)
	if err != nil {
		return Result{}, err
	}
	at := time.Now().Add(time.Duration(delayMinutes) * time.Minute).UTC().Truncate(time.Second)
	out, err := m.run(ctx, argv)
	if err != nil {
		return Result{}, err
	}
	return Result{At: at, Output: out}, nil
}

// Cancel cancels a scheduled reboot.
func (m *Module) Cancel(ctx context.Context) (bool, error) {
	if _, err := m.run(ctx, []string{m.shutdownPath(), "-c"}); err != nil {
		return false, err
	}
	return true, nil
}

// rebootArgv validates the arguments and builds shutdown's argv.
func (m *Module) rebootArgv(delayMinutes int, message string) ([]string, error) {
	if delayMinutes < 0 || delayMinutes > MaxDelayMinutes {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "delay_minutes %d is out of range (0 to %d)", delayMinutes, MaxDelayMinutes)
	}
	if err := CheckMessage(message); err != nil {
		return nil, err
	}
	argv := []string{m.shutdownPath(), "-r", "+" + strconv.Itoa(delayMinutes)}
	if message != "" {
		argv = append(argv, "--", message)
	}
	return argv, nil
}

// CheckMessage validates a wall message: at most MaxMessageLen characters
// of valid UTF-8, printable (spaces allowed, no control characters).
func CheckMessage(msg string) error {
	if !utf8.ValidString(msg) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "message is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(msg); n > MaxMessageLen {
		return gofunc.Errorf(gofunc.CodeBadArgs, "message has %d characters, at most %d", n, MaxMessageLen)
	}
	for _, r := range msg {
		if !unicode.IsPrint(r) && r != ' ' {
			return gofunc.Errorf(gofunc.CodeBadArgs, "message contains the non-printable character %U", r)
		}
	}
	return nil
}

// run runs shutdown (CodeUnavailable when there is none) and returns
// what it printed.
func (m *Module) run(ctx context.Context, argv []string) (string, error) {
	out, err := procrun.Run(ctx, procrun.Spec{Argv: argv, Timeout: shutdownTimeout, MaxOutput: 64 << 10, Tool: true})
	if err != nil {
		return "", err
	}
	if out.ExitCode != 0 || out.TimedOut {
		return "", out.Fault(gofunc.CodeModule, strings.Join(argv[:2], " "))
	}
	text, _ := procrun.SafeText(append(out.Stdout, out.Stderr...))
	return strings.TrimSpace(text), nil
}

func (m *Module) shutdownPath() string {
	if m.Shutdown != "" {
		return m.Shutdown
	}
	return procrun.FindProgram("/usr/sbin/shutdown", "/sbin/shutdown")
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Schedule or cancel a reboot with shutdown(8).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Reboot": {
				Description: "Schedule a reboot (shutdown -r +N -- message): {at, output}",
				Args: []gofunc.ArgDoc{
					{Name: "delay_minutes", Type: "int", Description: "minutes from now, 0 to 1440", Optional: true, Default: DefaultDelayMinutes},
					{Name: "message", Type: "string", Description: "message for logged-in users, at most 200 printable characters", Optional: true, Default: ""},
				},
				Dangerous: true,
			},
			"Cancel": {
				Description: "Cancel a scheduled reboot (shutdown -c); returns true",
				Dangerous:   true,
			},
		},
	}
}
