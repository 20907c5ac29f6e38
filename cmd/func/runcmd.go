package main

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/overlord"
)

// runCommand is `func SPEC run [--passthrough] [--] ARGV...`:
// command.run for people. Identical output is printed once under the
// hosts that produced it; stderr and the exit status only where they
// are non-empty or non-zero; a summary closes. It exits 0 when every
// host ran the command and it exited 0, 1 otherwise, or with
// --passthrough the highest remote exit status (1 at least when a host
// could not run it at all).
func (e *env) runCommand() int {
	argv := e.cli.Spec.Run.Argv
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return e.usage(fmt.Errorf("run: no command given, e.g. func '*' run -- uname -r"))
	}
	outcomes, code := e.fanout("command", "run", []any{argv}, runPresenter, true)
	if code >= 0 {
		return code
	}
	return runExit(outcomes, e.cli.Spec.Run.Passthrough)
}

// runExit is the exit status of a run: see runCommand.
func runExit(outcomes []hostOutcome, passthrough bool) int {
	code := exitOK
	for _, o := range outcomes {
		switch {
		case o.ok:
		case !passthrough:
			return exitFailed
		default:
			code = max(code, o.exit)
		}
	}
	return code
}

// runPresenter shows a command's result: its stdout as the body, its
// stderr apart, and its exit status when it is not 0.
func runPresenter(x explainer) presenter {
	return func(r overlord.Result) hostOutcome {
		if r.Err != nil {
			return problemOutcome(r, x)
		}
		var res command.Result
		if err := r.Decode(&res); err != nil {
			o := problemOutcome(overlord.Result{Host: r.Host, Err: fmt.Errorf("command.run answered something else: %w", err)}, x)
			o.class = "protocol error"
			return o
		}
		o := hostOutcome{host: r.Host, ok: true, class: "ok", json: hostJSON{OK: true, Value: r.Value},
			body: text(res.Stdout, res.StdoutRaw), stderr: text(res.Stderr, res.StderrRaw)}
		switch {
		case res.Signal != "" || res.ExitCode < 0:
			o.ok, o.class, o.exit = false, "killed", signalExit(res.Signal)
			o.note = "SIG" + res.Signal
			if res.TimedOut {
				o.note += ", timed out"
			}
			o.status = "killed by " + o.note
			o.json = hostJSON{Value: r.Value, Error: &errorJSON{Kind: "signal", Code: o.exit, Message: o.status}}
		case res.ExitCode != 0:
			o.ok, o.class, o.exit = false, "exited non-zero", int(min(res.ExitCode, 255))
			o.note = fmt.Sprintf("exit %d", res.ExitCode)
			o.status = o.note
			o.json = hostJSON{Value: r.Value, Error: &errorJSON{Kind: "exit", Code: res.ExitCode, Message: "exited with status " + fmt.Sprint(res.ExitCode)}}
		}
		if res.Truncated {
			o.status = strings.TrimPrefix(o.status+", output truncated (options.max_output)", ", ")
		}
		return o
	}
}

// text is a stream's exact bytes when the minion had to alter the text
// to send it, and the text otherwise.
func text(s string, raw []byte) string {
	if len(raw) > 0 {
		return string(raw)
	}
	return s
}

// signalExit is a shell's exit status for a command a signal ended:
// 128 + the signal's number (137 for KILL), or 1 when unknown.
func signalExit(name string) int {
	if n := unix.SignalNum("SIG" + strings.TrimPrefix(name, "SIG")); n != 0 {
		return 128 + int(n)
	}
	return exitFailed
}
