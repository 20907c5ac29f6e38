package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/alecthomas/kong"
	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/overlord"
)

// Exit codes: the contract scripts rely on.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitNoMatch = 3
)

// cli is func's command line. Global flags also come from
// DIR/gofunc.toml or GOFUNC_<FLAG>; the flag wins.
type cli struct {
	Dir        string        `help:"Overlord identity directory (ca.pem, cert.pem, key.pem, minions.json)." type:"path" env:"GOFUNC_DIR"`
	Certmaster string        `help:"Certmaster HOST:PORT to learn minions from."`
	JSON       bool          `name:"json" help:"Print one JSON object keyed by host."`
	Forks      int           `help:"Hosts called at once." default:"256"`
	Timeout    time.Duration `help:"Per-host timeout." default:"30s"`
	Exclude    []string      `help:"Spec of minions to leave out (repeatable)."`
	LogLevel   string        `name:"log-level" help:"trace, debug, info, warn, error." default:"warn"`

	ListMinions listMinionsCmd `cmd:"" name:"list_minions" help:"List the minions this overlord knows."`
	Audit       auditCmd       `cmd:"" help:"Verify or query audit logs."`
	Target      targetCmd      `arg:"" help:"Target spec: globs separated by ';', @group, @group:glob."`
}

type targetCmd struct {
	Spec string  `arg:"" name:"spec" help:"Target spec."`
	Ping pingCmd `cmd:"" help:"Call test.ping on every target."`
	Call callCmd `cmd:"" help:"Call MODULE METHOD [ARG...] on every target."`
}

type pingCmd struct{}

type callCmd struct {
	Module  string   `arg:"" help:"Module name."`
	Method  string   `arg:"" help:"Method name."`
	Args    []string `arg:"" optional:"" help:"Arguments: JSON literals (numbers, true/false, [lists], {maps}) or strings."`
	Strings bool     `help:"Send every argument as a string, even if it looks like JSON."`
}

type listMinionsCmd struct {
	Refresh bool `help:"Ask the certmaster again and update the cached list."`
}

type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Verify the hash chain of audit log files (in chain order)."`
}

type auditVerifyCmd struct {
	Files []string `arg:"" help:"Audit log files; a live log's rotated files are found with it." type:"path"`
}

// env is what commands run with.
type env struct {
	ctx    context.Context
	cli    *cli
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    hclog.Logger
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c, kong.Name("func"), kong.Description("Call module methods on many gofunc minions at once."),
		kong.Writers(stdout, stderr), kong.Exit(func(int) {}))
	if err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	kctx, err := cliconf.Parse(parser, args)
	if err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	if kctx == nil { // --help
		return exitOK
	}
	e := &env{ctx: ctx, cli: &c, stdin: stdin, stdout: stdout, stderr: stderr,
		log: hclog.New(&hclog.LoggerOptions{Name: "func", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})}
	switch kctx.Command() {
	case "target <spec> ping":
		return e.call("test", "ping", nil)
	case "target <spec> call <module> <method>", "target <spec> call <module> <method> <args>":
		args, err := parseArgs(c.Target.Call.Args, c.Target.Call.Strings)
		if err != nil {
			fmt.Fprintln(stderr, "func:", err)
			return exitUsage
		}
		return e.call(c.Target.Call.Module, c.Target.Call.Method, args)
	case "list_minions":
		return e.listMinions()
	case "audit verify <files>":
		return e.auditVerify()
	}
	fmt.Fprintf(stderr, "func: unknown command %q\n", kctx.Command())
	return exitUsage
}

func (e *env) dir() string {
	if e.cli.Dir != "" {
		return e.cli.Dir
	}
	return overlord.DefaultDir()
}

// client builds the overlord client from the flags.
func (e *env) client() *overlord.Client {
	opts := []overlord.Option{overlord.WithIdentity(e.dir()), overlord.WithForks(e.cli.Forks),
		overlord.WithHostTimeout(e.cli.Timeout), overlord.WithLogger(e.log)}
	if e.cli.Certmaster != "" {
		if id, err := ca.LoadIdentity(e.dir()); err == nil {
			opts = append(opts, overlord.WithMinions(overlord.Certmaster{Addr: e.cli.Certmaster, Identity: id,
				Cache: filepath.Join(e.dir(), overlord.CacheFile)}))
		}
	}
	if trail, err := audit.Open(filepath.Join(e.dir(), "audit.log"), audit.Config{}); err == nil {
		opts = append(opts, overlord.WithAudit(trail))
	} else {
		e.log.Warn("overlord audit log unavailable", "error", err)
	}
	return overlord.New(opts...)
}

func (e *env) call(module, method string, args []any) int {
	c := e.client()
	defer c.Close()
	sel := c.Targets(e.cli.Target.Spec)
	for _, ex := range e.cli.Exclude {
		sel = sel.Exclude(ex)
	}
	res, err := sel.Call(e.ctx, module, method, args...)
	if res == nil && err != nil {
		fmt.Fprintln(e.stderr, "func:", err)
		if errors.Is(err, overlord.ErrNoMatch) {
			return exitNoMatch
		}
		if errors.Is(err, overlord.ErrBadSpec) || errors.Is(err, overlord.ErrUnknownGroup) {
			return exitUsage
		}
		return exitFailed
	}
	if e.cli.JSON {
		writeJSON(e.stdout, res)
	} else {
		writeHuman(e.stdout, res)
	}
	if err != nil {
		return exitFailed
	}
	return exitOK
}

func (e *env) listMinions() int {
	c := e.client()
	defer c.Close()
	ms, err := c.Minions(e.ctx)
	if err != nil {
		fmt.Fprintln(e.stderr, "func:", err)
		return exitFailed
	}
	if e.cli.JSON {
		writeJSONValue(e.stdout, ms)
		return exitOK
	}
	for _, m := range ms {
		fmt.Fprintf(e.stdout, "%s\t%s\n", m.Name, m.Addr)
	}
	return exitOK
}

func (e *env) auditVerify() int {
	code := exitOK
	for _, f := range e.cli.Audit.Verify.Files {
		files, err := audit.Files(f)
		if err != nil {
			fmt.Fprintf(e.stderr, "func: %s: %v\n", f, err)
			code = exitFailed
			continue
		}
		sum, err := audit.Verify(files...)
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", f, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(e.stdout, "%s: ok: %s\n", f, sum)
	}
	return code
}
