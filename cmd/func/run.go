package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/version"
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
	Dir         string        `help:"Overlord identity directory (ca.pem, cert.pem, key.pem, minions.json, groups, jobs.db)." type:"path"`
	Certmaster  string        `help:"Certmaster HOST:PORT to learn minions from."`
	JSON        bool          `name:"json" help:"Print JSON: one object keyed by host." xor:"format"`
	YAML        bool          `name:"yaml" help:"Print YAML, shaped like --json." xor:"format"`
	Forks       int           `help:"Hosts called at once." default:"256"`
	Timeout     time.Duration `help:"Per-host timeout." default:"30s"`
	Exclude     []string      `help:"Spec of minions to leave out (repeatable)." sep:"none"`
	Where       string        `help:"Facts filter: os=debian,arch=x86_64,cpu_count>=4."`
	Batch       string        `help:"Call N hosts, or N% of them, at a time (rolling changes)."`
	MaxFailures int           `name:"max-failures" help:"With --batch: failed hosts tolerated before the remaining batches are skipped (-1: never stop)." default:"0"`
	Async       bool          `help:"Start the call as a background job; print its id."`
	AsyncRunner string        `name:"async-runner" hidden:"" enum:"exec,none" default:"exec" help:"exec: run the job in a detached func process; none: leave it queued for 'func jobs run'."`
	LogLevel    string        `name:"log-level" help:"trace, debug, info, warn, error." default:"warn"`
	Version     version.Flag  `help:"Print the version and exit."`

	ListMinions listMinionsCmd `cmd:"" name:"list_minions" help:"List the minions this overlord knows."`
	Group       groupCmd       `cmd:"" help:"List or edit the groups file (DIR/groups)."`
	Jobs        jobsCmd        `cmd:"" help:"List, inspect and wait for async jobs."`
	Transmit    transmitCmd    `cmd:"" help:"Read one JSON request on stdin, print JSON results (for other languages)."`
	Audit       auditCmd       `cmd:"" help:"Verify or query audit logs."`
	Spec        targetCmd      `arg:"" help:"Target spec: globs separated by ';', @group, @group:glob."`
}

type targetCmd struct {
	Spec      string       `arg:"" help:"Target spec."`
	Ping      pingCmd      `cmd:"" help:"Call test.ping on every target."`
	Call      callCmd      `cmd:"" help:"Call MODULE METHOD [ARG...] on every target."`
	Copyfile  copyfileCmd  `cmd:"" help:"Copy a local file to every target (atomic, checksummed)."`
	Getfile   getfileCmd   `cmd:"" help:"Fetch a file from every target into LOCALDIR/HOST/."`
	Show      showCmd      `cmd:"" help:"Show facts about the targets."`
	Inventory inventoryCmd `cmd:"" help:"Snapshot every module's inventory into a git repository (DIR/inventory) and show what changed."`
}

type pingCmd struct{}

type callCmd struct {
	Module  string   `arg:"" help:"Module name."`
	Method  string   `arg:"" help:"Method name."`
	Args    []string `arg:"" optional:"" help:"Arguments: JSON literals (numbers, true/false, [lists], {maps}) or strings."`
	Strings bool     `help:"Send every argument as a string, even if it looks like JSON."`
}

type copyfileCmd struct {
	Local  string `arg:"" help:"Local file to send." type:"existingfile"`
	Remote string `arg:"" help:"Path to write on each minion."`
	Mode   string `help:"Octal permission bits, such as 0644 (default: keep, or 0644)."`
	Owner  string `help:"Owner name or uid (default: keep)."`
	Group  string `help:"Group name or gid (default: keep)."`
	Backup bool   `help:"Keep the replaced file as REMOTE.<time>.bak."`
}

type getfileCmd struct {
	Remote   string `arg:"" help:"Path of the file on each minion."`
	LocalDir string `arg:"" optional:"" help:"Directory to store LOCALDIR/HOST/BASENAME in (default: current directory)." type:"path"`
}

type showCmd struct {
	Hardware struct{} `cmd:"" help:"hardware.info: OS, CPU, memory, disks, network."`
}

type inventoryCmd struct{}

type listMinionsCmd struct {
	Refresh bool `help:"Ask the certmaster again and update the cached list."`
}

type groupCmd struct {
	List   struct{}       `cmd:"" default:"1" help:"List groups and their members' specs."`
	Add    groupEditCmd   `cmd:"" help:"Add target specs to a group (creating it)."`
	Remove groupRemoveCmd `cmd:"" help:"Remove specs from a group, or the whole group."`
	Show   struct {
		Name string `arg:""`
	} `cmd:"" help:"Show the minions a group matches."`
}

type groupEditCmd struct {
	Name  string   `arg:"" help:"Group name."`
	Specs []string `arg:"" help:"Target specs to add."`
}

type groupRemoveCmd struct {
	Name  string   `arg:"" help:"Group name."`
	Specs []string `arg:"" optional:"" help:"Specs to remove; none removes the group."`
}

type jobsCmd struct {
	List   struct{} `cmd:"" default:"1" help:"List jobs, newest first."`
	Status struct {
		ID string `arg:""`
	} `cmd:"" help:"Show a job's state and the results so far."`
	Wait struct {
		ID string `arg:""`
	} `cmd:"" help:"Wait for a job to finish; print and exit like the call itself."`
	Run struct {
		ID string `arg:""`
	} `cmd:"" hidden:"" help:"Run a queued job (what --async starts in the background)."`
	Delete struct {
		ID string `arg:""`
	} `cmd:"" help:"Delete a finished job."`
}

type transmitCmd struct{}

type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Verify the hash chain of audit log files (in chain order)."`
	Query  auditQueryCmd  `cmd:"" help:"Print the records of audit logs that match filters, as JSON lines."`
}

type auditVerifyCmd struct {
	Files []string `arg:"" help:"Audit log files; a live log's rotated files are found with it." type:"path"`
}

type auditQueryCmd struct {
	Files   []string  `arg:"" help:"Audit log files (live logs; their rotated files are read too)." type:"path"`
	Kind    string    `help:"Pattern on the record kind: call.*, overlord.call."`
	Caller  string    `help:"Pattern on the caller's certificate name."`
	Method  string    `help:"Pattern on the method: command.*."`
	Outcome string    `help:"Outcome: ok, fault, denied, error."`
	CallID  string    `name:"call-id" help:"One call's records."`
	Since   time.Time `help:"Records at or after this time (RFC 3339)."`
	Until   time.Time `help:"Records before this time (RFC 3339)."`
}

// env is what commands run with.
type env struct {
	ctx    context.Context
	cli    *cli
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    hclog.Logger
	// closers run when the command's client is closed (the audit log).
	closers []func() error
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c cli
	parser, err := kong.New(&c, kong.Name("func"), kong.Description("Call module methods on many gofunc minions at once."),
		kong.Writers(stdout, stderr), kong.Exit(func(int) {}))
	if err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	kctx, err := cliconf.ParseOr(parser, positionalCallArgs(parser, args), overlord.DefaultDir())
	if err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	if kctx == nil { // --help
		return exitOK
	}
	if err := c.validate(); err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	e := &env{ctx: ctx, cli: &c, stdin: stdin, stdout: stdout, stderr: stderr,
		log: hclog.New(&hclog.LoggerOptions{Name: "func", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})}
	return e.dispatch(kctx.Command())
}

func (e *env) dispatch(command string) int {
	c := e.cli
	switch command {
	case "<spec> ping":
		return e.call("test", "ping", nil)
	case "<spec> call <module> <method>", "<spec> call <module> <method> <args>":
		args, err := parseArgs(c.Spec.Call.Args, c.Spec.Call.Strings)
		if err != nil {
			return e.usage(err)
		}
		return e.call(c.Spec.Call.Module, c.Spec.Call.Method, args)
	case "<spec> copyfile <local> <remote>":
		return e.copyfile()
	case "<spec> getfile <remote>", "<spec> getfile <remote> <local-dir>":
		return e.getfile()
	case "<spec> show hardware":
		return e.call("hardware", "info", nil)
	case "<spec> inventory":
		return e.inventory()
	case "list_minions":
		return e.listMinions()
	case "group list":
		return e.groupList()
	case "group add <name> <specs>":
		return e.groupEdit(c.Group.Add.Name, c.Group.Add.Specs, false)
	case "group remove <name>", "group remove <name> <specs>":
		return e.groupEdit(c.Group.Remove.Name, c.Group.Remove.Specs, true)
	case "group show <name>":
		return e.groupShow(c.Group.Show.Name)
	case "jobs list":
		return e.jobsList()
	case "jobs status <id>":
		return e.jobStatus(c.Jobs.Status.ID)
	case "jobs wait <id>":
		return e.jobWait(c.Jobs.Wait.ID)
	case "jobs run <id>":
		return e.jobRun(c.Jobs.Run.ID)
	case "jobs delete <id>":
		return e.jobDelete(c.Jobs.Delete.ID)
	case "transmit":
		return e.transmit()
	case "audit verify <files>":
		return e.auditVerify()
	case "audit query <files>":
		return e.auditQuery()
	}
	return e.usage(fmt.Errorf("unknown command %q", command))
}

func (e *env) usage(err error) int {
	fmt.Fprintln(e.stderr, "func:", err)
	return exitUsage
}

func (e *env) dir() string {
	if e.cli.Dir != "" {
		return e.cli.Dir
	}
	return overlord.DefaultDir()
}

// validate checks the flags kong cannot: a bad value is a usage error
// (exit 2), not a failed call.
func (c *cli) validate() error {
	switch {
	case c.Forks < 1:
		return fmt.Errorf("--forks must be at least 1, got %d", c.Forks)
	case c.Timeout <= 0:
		return fmt.Errorf("--timeout must be positive, got %v", c.Timeout)
	case c.MaxFailures < -1:
		return fmt.Errorf("--max-failures must be -1 (never stop) or more, got %d", c.MaxFailures)
	}
	if c.Batch != "" {
		if _, err := parseBatch(c.Batch, c.MaxFailures); err != nil {
			return err
		}
	}
	return nil
}

// auditWait bounds how long a call waits for another func process
// (a detached `func jobs run`, a second terminal) to finish its audit
// record.
const auditWait = 10 * time.Second

// client builds the overlord client from the flags. Every call it
// makes is recorded in DIR/audit.log first, or not made: the log is
// opened per record (audit.Shared), so several func processes record
// into it at once, each waiting its turn for the file's lock.
func (e *env) client() *overlord.Client {
	opts := []overlord.Option{overlord.WithIdentity(e.dir()), overlord.WithForks(e.cli.Forks),
		overlord.WithHostTimeout(e.cli.Timeout), overlord.WithLogger(e.log),
		overlord.WithAudit(&audit.Shared{Path: filepath.Join(e.dir(), "audit.log"),
			Config: audit.Config{Logger: e.log.Named("audit")}, Wait: auditWait})}
	if e.cli.Certmaster != "" {
		// Minions and the CRL from the certmaster, the list cached in
		// DIR/minions.json (used when the certmaster is away), the CRL
		// saved as DIR/crl.pem.
		opts = append(opts, overlord.WithCertmaster(e.cli.Certmaster))
	}
	return overlord.New(opts...)
}

// selection applies the targeting flags to spec.
func (e *env) selection(c *overlord.Client, spec string) (*overlord.Selection, error) {
	sel := c.Targets(spec)
	for _, ex := range e.cli.Exclude {
		sel = sel.Exclude(ex)
	}
	if e.cli.Where != "" {
		sel = sel.WhereFacts(e.cli.Where)
	}
	if e.cli.Batch != "" {
		b, err := parseBatch(e.cli.Batch, e.cli.MaxFailures)
		if err != nil {
			return nil, err
		}
		sel = sel.Batch(b)
	}
	return sel, nil
}

// parseBatch reads --batch: "10" hosts or "25%".
func parseBatch(s string, maxFailures int) (overlord.Batch, error) {
	b := overlord.Batch{MaxFailures: maxFailures}
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || (pct && n > 100) {
		return b, fmt.Errorf("--batch %q: want a host count (10) or a percentage (25%%)", s)
	}
	if pct {
		b.Percent = n
	} else {
		b.Size = n
	}
	return b, nil
}

// failure prints an error that ended a command before any host answered
// and returns the exit code it deserves.
func (e *env) failure(err error) int {
	if errors.Is(err, gofunc.ErrAuditFailed) {
		fmt.Fprintln(e.stderr, "func: nothing was called: the call could not be recorded in the audit log:", err)
		return exitFailed
	}
	fmt.Fprintln(e.stderr, "func:", err)
	return exitCode(err)
}

func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, overlord.ErrNoMatch):
		return exitNoMatch
	case errors.Is(err, overlord.ErrBadSpec), errors.Is(err, overlord.ErrUnknownGroup),
		errors.Is(err, overlord.ErrBadFilter), errors.Is(err, overlord.ErrBadBatch),
		errors.Is(err, overlord.ErrBadCall), errors.Is(err, overlord.ErrBadGroups):
		return exitUsage
	}
	return exitFailed
}

func (e *env) call(module, method string, args []any) int {
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	if e.cli.Async {
		return e.submit(c, sel, module, method, args)
	}
	hosts, err := sel.Hosts(e.ctx)
	if err != nil {
		return e.failure(err)
	}
	bar := e.progress(len(hosts))
	res := overlord.Results{}
	for r, err := range sel.Stream(e.ctx, module, method, args...) {
		if r.Host == "" && err != nil {
			bar.done()
			return e.failure(err)
		}
		res[r.Host] = r
		bar.add()
	}
	bar.done()
	return e.printResults(res)
}

// printResults prints res in the chosen format and returns the exit
// code: 0 when every host succeeded, 1 otherwise.
func (e *env) printResults(res overlord.Results) int {
	e.print(resultsJSON(res), func() {
		writeHuman(e.stdout, res)
	})
	if len(res.Failed()) > 0 {
		return exitFailed
	}
	return exitOK
}

func (e *env) close(c *overlord.Client) {
	c.Close()
	for _, f := range e.closers {
		_ = f()
	}
	e.closers = nil
}

func (e *env) listMinions() int {
	c := e.client()
	defer e.close(c)
	if e.cli.ListMinions.Refresh && e.cli.Certmaster == "" {
		return e.usage(errors.New("--refresh needs --certmaster HOST:PORT"))
	}
	ms, err := c.Minions(e.ctx)
	if err != nil {
		return e.failure(err)
	}
	e.print(ms, func() {
		for _, m := range ms {
			fmt.Fprintf(e.stdout, "%s\t%s\n", m.Name, m.Addr)
		}
	})
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
		if errors.Is(err, audit.ErrTorn) {
			// A crash tore the last write: every complete record
			// verified; funcd's next start moves the torn line aside.
			fmt.Fprintf(e.stdout, "%s: ok: %s; WARNING: %v\n", f, sum, err)
			continue
		}
		if err != nil {
			fmt.Fprintf(e.stdout, "%s: FAILED: %v\n", f, err)
			code = exitFailed
			continue
		}
		fmt.Fprintf(e.stdout, "%s: ok: %s\n", f, sum)
	}
	return code
}

func (e *env) auditQuery() int {
	q := e.cli.Audit.Query
	filter := audit.Filter{Kind: q.Kind, Caller: q.Caller, Method: q.Method, Outcome: q.Outcome, CallID: q.CallID,
		Since: q.Since, Until: q.Until}
	if err := filter.Validate(); err != nil {
		return e.usage(err)
	}
	code := exitOK
	for _, f := range q.Files {
		files, err := audit.Files(f)
		if err == nil {
			err = audit.Query(files, filter, func(r audit.Record) error {
				writeJSONLine(e.stdout, r)
				return nil
			})
		}
		if err != nil {
			fmt.Fprintf(e.stderr, "func: %s: %v\n", f, err)
			code = exitFailed
		}
	}
	return code
}

// isTerminal reports whether w is a terminal, for the progress bar.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && termIsTerminal(int(f.Fd()))
}
