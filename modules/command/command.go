// Package command is the "command" module: it runs programs on the
// minion and returns their exit status and output.
//
// command.run takes an argv and runs it directly, never through a shell,
// so arguments need no quoting and cannot inject commands.
// command.shell runs a string with /bin/sh -c; it is a separate method,
// marked Dangerous, so an ACL can allow run and still forbid shell.
//
// # Timeouts
//
// options.timeout kills the command's whole process group when it passes;
// the call still succeeds and its result says timed_out: true (with
// signal "KILL" and whatever output was collected). When the call's own
// context ends first (the caller's deadline, a disconnect, a shutdown),
// the group is killed too and the call fails with CodeTimeout or
// CodeCanceled.
//
// # Output that is not text
//
// stdout and stderr are always valid XML text. When a stream is not valid
// UTF-8, or holds characters XML cannot carry (NUL, most control
// characters), stdout (or stderr) holds a lossy copy with U+FFFD in place
// of each offending byte, and stdout_raw (stderr_raw) holds the exact
// bytes, base64 on the wire. For plain text the _raw fields are empty.
//
// Processes run through internal/procrun, the runner every module uses:
// their own process group, a group kill on cancellation, bounded output.
package command

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// DefaultShell runs command.shell.
const DefaultShell = "/bin/sh"

// Output limits, per stream (stdout and stderr each).
const (
	DefaultMaxOutput = procrun.DefaultMaxOutput // 1 MiB
	MaxOutputCap     = procrun.MaxOutputCap     // 64 MiB
)

// Module is the command module. Its exported fields are its configuration;
// the zero Module is ready to use. It is safe for concurrent use.
type Module struct {
	// MaxOutput is the per-stream output cap for calls whose options set
	// none; zero means DefaultMaxOutput (1 MiB). A call may ask for up to
	// MaxOutputCap (64 MiB).
	MaxOutput int64
	// Timeout applies to calls whose options set none; zero means no
	// limit but the call's own deadline.
	Timeout time.Duration
	// ShellPath is the shell command.shell runs with "-c"; empty means
	// DefaultShell (/bin/sh).
	ShellPath string
}

// RunOptions are the optional knobs of run and shell.
type RunOptions struct {
	// Timeout kills the process group after this long; zero means the
	// module's Timeout.
	Timeout time.Duration `xmlrpc:"timeout"`
	// Dir is the working directory, an absolute path; empty means the
	// minion's.
	Dir string `xmlrpc:"dir"`
	// Env adds to (or overrides) the minion's environment: a struct of
	// NAME: value strings, or an array of "NAME=value" strings.
	Env any `xmlrpc:"env"`
	// Stdin is written to the command's standard input; empty means
	// /dev/null.
	Stdin string `xmlrpc:"stdin"`
	// MaxOutput caps each of stdout and stderr, in bytes; zero means the
	// module's MaxOutput. At most 64 MiB.
	MaxOutput int64 `xmlrpc:"max_output"`
}

// Result is what run and shell return.
type Result struct {
	// ExitCode is the exit status, or -1 when a signal ended the command.
	ExitCode int `xmlrpc:"exit_code"`
	// Stdout and Stderr are the output as XML-safe text (see the package doc).
	Stdout string `xmlrpc:"stdout"`
	Stderr string `xmlrpc:"stderr"` // like Stdout
	// StdoutRaw and StderrRaw hold the exact bytes when the text had to be
	// altered to be sent, and are empty otherwise.
	StdoutRaw []byte `xmlrpc:"stdout_raw"`
	StderrRaw []byte `xmlrpc:"stderr_raw"` // like StdoutRaw
	// DurationS is the wall-clock run time in seconds.
	DurationS float64 `xmlrpc:"duration_s"`
	// Truncated reports that stdout or stderr went over max_output.
	Truncated bool `xmlrpc:"truncated"`
	// TimedOut reports that options.timeout passed and the command was killed.
	TimedOut bool `xmlrpc:"timed_out"`
	// Signal names the signal that ended the command ("KILL"), if any.
	Signal string `xmlrpc:"signal"`
}

// Run runs argv directly (no shell). argv[0] without a slash is looked up
// in the minion's PATH.
func (m *Module) Run(ctx context.Context, argv []string, options RunOptions) (Result, error) {
	return m.run(ctx, argv, options)
}

// Shell runs command with the shell's -c option. Dangerous by design.
func (m *Module) Shell(ctx context.Context, command string, options RunOptions) (Result, error) {
	if strings.TrimSpace(command) == "" {
		return Result{}, gofunc.Errorf(gofunc.CodeBadArgs, "command is empty")
	}
	if strings.IndexByte(command, 0) >= 0 {
		return Result{}, gofunc.Errorf(gofunc.CodeBadArgs, "command contains a NUL byte")
	}
	shell := m.ShellPath
	if shell == "" {
		shell = DefaultShell
	}
	return m.run(ctx, []string{shell, "-c", command}, options)
}

// Exists reports whether name is an executable file: looked up in the
// minion's PATH when it has no slash (command.exists("ls") is true on any
// Unix), taken as a path otherwise.
func (m *Module) Exists(name string) (bool, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 || len(name) > 4096 {
		return false, gofunc.Errorf(gofunc.CodeBadArgs, "name must be 1 to 4096 bytes without NUL")
	}
	_, err := exec.LookPath(name)
	return err == nil, nil
}

func (m *Module) run(ctx context.Context, argv []string, o RunOptions) (Result, error) {
	spec, err := m.spec(argv, o)
	if err != nil {
		return Result{}, err
	}
	out, err := procrun.Run(ctx, spec)
	if err != nil {
		return Result{}, err
	}
	r := Result{
		ExitCode:  out.ExitCode,
		DurationS: out.Duration.Seconds(),
		Truncated: out.Truncated,
		TimedOut:  out.TimedOut,
		Signal:    out.Signal,
	}
	r.Stdout, r.StdoutRaw = procrun.SafeText(out.Stdout)
	r.Stderr, r.StderrRaw = procrun.SafeText(out.Stderr)
	return r, nil
}

// spec validates the options and builds the Spec to run.
func (m *Module) spec(argv []string, o RunOptions) (procrun.Spec, error) {
	if err := procrun.CheckArgv(argv); err != nil {
		return procrun.Spec{}, err
	}
	if o.Timeout < 0 {
		return procrun.Spec{}, gofunc.Errorf(gofunc.CodeBadArgs, "timeout %v is negative", o.Timeout)
	}
	def := m.MaxOutput
	if def <= 0 || def > MaxOutputCap {
		def = DefaultMaxOutput
	}
	limit, err := procrun.OutputLimit(o.MaxOutput, def)
	if err != nil {
		return procrun.Spec{}, err
	}
	if o.Dir != "" {
		if err := checkDir(o.Dir); err != nil {
			return procrun.Spec{}, err
		}
	}
	if strings.IndexByte(o.Stdin, 0) >= 0 {
		// A NUL is legal on a pipe, but XML-RPC strings cannot carry one:
		// refusing it catches a caller that mangled binary input.
		return procrun.Spec{}, gofunc.Errorf(gofunc.CodeBadArgs, "stdin contains a NUL byte")
	}
	extra, err := ParseEnv(o.Env)
	if err != nil {
		return procrun.Spec{}, err
	}
	s := procrun.Spec{Argv: argv, Dir: o.Dir, MaxOutput: limit, Timeout: o.Timeout}
	if s.Timeout == 0 {
		s.Timeout = m.Timeout
	}
	if o.Stdin != "" {
		s.Stdin = []byte(o.Stdin)
	}
	if len(extra) > 0 {
		// exec keeps the last value of a duplicated name, so appending
		// overrides the minion's own.
		s.Env = append(os.Environ(), extra...)
	}
	return s, nil
}

func checkDir(dir string) error {
	if strings.IndexByte(dir, 0) >= 0 || !filepath.IsAbs(dir) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "dir %q must be an absolute path", dir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return gofunc.Errorf(gofunc.CodeNotFound, "dir %q: %v", dir, err)
	}
	if !fi.IsDir() {
		return gofunc.Errorf(gofunc.CodeBadArgs, "dir %q is not a directory", dir)
	}
	return nil
}

// ParseEnv turns the env option into "NAME=value" strings: v may be nil, a
// map of strings (sorted by name) or a list of "NAME=value" strings. Names
// must be non-empty without '='; nothing may hold a NUL byte.
func ParseEnv(v any) ([]string, error) {
	var env []string
	switch e := v.(type) {
	case nil:
		return nil, nil
	case map[string]string:
		for _, k := range slices.Sorted(maps.Keys(e)) {
			env = append(env, k+"="+e[k])
		}
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(e)) {
			s, ok := e[k].(string)
			if !ok {
				return nil, gofunc.Errorf(gofunc.CodeBadArgs, "env %q: value is a %T, want a string", k, e[k])
			}
			env = append(env, k+"="+s)
		}
	case []string:
		env = slices.Clone(e)
	case []any:
		for i, x := range e {
			s, ok := x.(string)
			if !ok {
				return nil, gofunc.Errorf(gofunc.CodeBadArgs, "env[%d] is a %T, want a \"NAME=value\" string", i, x)
			}
			env = append(env, s)
		}
	default:
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "env is a %T, want a struct or an array of strings", v)
	}
	for _, kv := range env {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "env entry %q is not NAME=value", kv)
		}
		if strings.IndexByte(kv, 0) >= 0 {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "env entry %q contains a NUL byte", name)
		}
	}
	return env, nil
}

// runOptionsDoc redacts env and stdin: their values (tokens, passwords)
// must not reach the audit log. Timeout, dir and max_output stay
// readable there, as do argv and the shell command line.
var runOptionsDoc = gofunc.ArgDoc{
	Name: "options", Type: "struct", Optional: true, SecretFields: []string{"env", "stdin"},
	Description: "timeout (duration: int nanoseconds or \"30s\"; kills the process group, result has timed_out), " +
		"dir (absolute working directory), env (struct NAME: value, or array of \"NAME=value\"; added to the minion's), " +
		"stdin (string), max_output (bytes per stream; default 1 MiB, at most 64 MiB)",
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	result := "; returns {exit_code (-1 if killed by a signal), stdout, stderr, stdout_raw, stderr_raw " +
		"(exact bytes, only when the text was not valid UTF-8/XML), duration_s, truncated, timed_out, signal}"
	return gofunc.ModuleDoc{
		Description: "Run programs: argv without a shell (run), or a shell string (shell, dangerous).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Run": {
				Description: "Run argv directly, without a shell" + result,
				Args: []gofunc.ArgDoc{
					{Name: "argv", Type: "array", Description: "program and arguments; the program is looked up in PATH"},
					runOptionsDoc,
				},
			},
			"Shell": {
				Description: fmt.Sprintf("Run a command line with %s -c", DefaultShell) + result,
				Args: []gofunc.ArgDoc{
					{Name: "command", Type: "string", Description: "shell command line"},
					runOptionsDoc,
				},
				Dangerous: true,
			},
			"Exists": {
				Description: "Whether an executable by that name is on PATH (or at that path); returns boolean",
				Args: []gofunc.ArgDoc{
					{Name: "name", Type: "string", Description: "command name (\"ls\") or path"},
				},
			},
		},
	}
}
