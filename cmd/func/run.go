package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
)

// Exit codes: the contract scripts rely on.
const (
	exitOK      = 0
	exitFailed  = 1
	exitUsage   = 2
	exitNoMatch = 3
)

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
	// cm is the certmaster side of the run, set by client.
	cm *certmaster
	// broker is the --broker transport, set by client.
	broker *caller.Transport
	// brokerGiven: --broker came from this run's flags, GOFUNC_BROKER
	// or gofunc.toml (not from DIR/broker.json).
	brokerGiven bool
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c cli
	parser, err := newParser(&c, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "func:", err)
		return exitUsage
	}
	if clidoc.Handle(parser.Model, args, stdout, completionConfig) {
		return exitOK
	}
	if len(args) == 0 {
		// Bare `func`: what it can do, on stderr, as a usage error.
		clidoc.PrintUsage(parser, stderr)
		return exitUsage
	}
	kctx, err := cliconf.ParseOr(parser, positionalCallArgs(parser, args), overlord.DefaultDir())
	if err != nil {
		if hint := missingSpec(parser, args); hint != "" {
			err = errors.New(hint)
		}
		fmt.Fprintln(stderr, "func:", err)
		if wantsJSON(args) {
			writeJSONValue(stdout, errorReport("usage", err, exitUsage))
		}
		return exitUsage
	}
	if kctx == nil { // --help, --version
		return exitOK
	}
	e := &env{ctx: ctx, cli: &c, stdin: stdin, stdout: stdout, stderr: stderr,
		log: hclog.New(&hclog.LoggerOptions{Name: "func", Level: hclog.LevelFromString(c.LogLevel), Output: stderr})}
	if err := c.validate(); err != nil {
		return e.usage(err)
	}
	e.resolveBroker()
	code := e.dispatch(kctx.Command())
	if ctx.Err() != nil {
		return e.interrupted(ctx)
	}
	return code
}

// newParser builds func's kong parser: the one definition parsing,
// --help, completion and the man page share.
func newParser(c *cli, stdout, stderr io.Writer) (*kong.Kong, error) {
	return kong.New(c, kong.Name("func"),
		kong.Description("Call module methods on many gofunc minions at once, over mutual TLS, each call authorized and audited."),
		kong.Writers(stdout, stderr), kong.Exit(func(int) {}), flagGroups,
		kong.Vars{"outcomes": strings.Join(audit.Outcomes, ", "),
			clidoc.VarSeeAlso: "funcd(8), certmaster(8)"},
	)
}

// Exit codes of an interrupted run, like a shell's: 128 + the signal.
const (
	exitInterrupted = 130 // SIGINT
	exitTerminated  = 143 // SIGTERM
)

// interrupted reports a run that a signal (Ctrl-C) cut short: the calls
// in flight were abandoned, which closed their connections, so the
// minions cancelled the work.
func (e *env) interrupted(ctx context.Context) int {
	code := exitInterrupted
	var sig signalCause
	if errors.As(context.Cause(ctx), &sig) && sig.Signal == syscall.SIGTERM {
		code = exitTerminated
	}
	fmt.Fprintln(e.stderr, "func: interrupted: the calls still running were cancelled, here and on the minions")
	return code
}

// signalCause is the cause main gives the context a signal cancelled.
// It is a context.Canceled (errors.Is), since net/http hands the cause
// to the calls it cuts short and they must read as cancelled.
type signalCause struct{ os.Signal }

func (s signalCause) Error() string { return "interrupted by " + s.Signal.String() }
func (s signalCause) Unwrap() error { return context.Canceled }

// missingSpec recognises `func ping` (a target command where the spec
// belongs) and says what is missing.
func missingSpec(parser *kong.Kong, args []string) string {
	takesValue, commands := cliShape(parser.Model.Node)
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") {
			name, _, inline := strings.Cut(a, "=")
			if takesValue[name] && !inline {
				i++ // the flag's value
			}
			continue
		}
		if commands[a] {
			return ""
		}
		for _, n := range parser.Model.Node.Children {
			if n.Type != kong.ArgumentNode {
				continue
			}
			for _, sub := range n.Children {
				if sub.Name == a {
					return fmt.Sprintf("missing target spec: say which minions, e.g. func '*' %s ... (globs separated by ';', @group)", a)
				}
			}
		}
		return ""
	}
	return ""
}

// wantsJSON reports --json among args that failed to parse, so a usage
// error still prints JSON for the program that asked for it.
func wantsJSON(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--json" || a == "--json=true" {
			return true
		}
	}
	return false
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
	case "<spec> run <argv>":
		return e.runCommand()
	case "<spec> doc <module[.method]>":
		return e.doc()
	case "<spec> copyfile <local> <remote>":
		return e.copyfile()
	case "<spec> getfile <remote>", "<spec> getfile <remote> <local-dir>":
		return e.getfile()
	case "<spec> show hardware":
		return e.call("hardware", "info", nil)
	case "<spec> inventory":
		return e.inventory()
	case "<spec> events":
		return e.events()
	case "<spec> stats":
		return e.stats()
	case "list_minions":
		return e.listMinions()
	case "discover":
		return e.discover()
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
	return e.report("usage", err, exitUsage)
}

// report prints an error that ended a command before any host answered:
// "func: ..." on stderr and, with --json or --jsonl, a JSON object on
// stdout too, so a program always gets JSON:
//
//	{"error": {"kind": "no_match", "message": "...", "exit": 3}}
func (e *env) report(kind string, err error, code int) int {
	// The SDK's package prefix means nothing to an operator.
	err = &hinted{strings.TrimPrefix(err.Error(), "overlord: "), err}
	fmt.Fprintln(e.stderr, "func:", err)
	switch {
	case e.cli.JSON:
		writeJSONValue(e.stdout, errorReport(kind, err, code))
	case e.cli.JSONL:
		writeJSONLine(e.stdout, errorReport(kind, err, code))
	case e.cli.YAML:
		writeYAMLValue(e.stdout, errorReport(kind, err, code))
	}
	return code
}

// errorReport is the JSON shape of an error that ended a command.
func errorReport(kind string, err error, code int) map[string]any {
	return map[string]any{"error": map[string]any{"kind": kind, "message": err.Error(), "exit": code}}
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
//
// Async jobs live in DIR/jobs.db, opened only when a command uses them.
func (e *env) client() *overlord.Client {
	store := sqlitejobs.New(filepath.Join(e.dir(), sqlitejobs.FileName))
	e.closers = append(e.closers, store.Close) // after the client: close runs them once it is closed
	trail := &audit.Shared{Path: filepath.Join(e.dir(), "audit.log"), Config: audit.Config{Logger: e.log.Named("audit")}, Wait: auditWait}
	opts := []overlord.Option{overlord.WithIdentityDir(e.dir()), overlord.WithJobStore(store), overlord.WithForks(e.cli.Forks),
		overlord.WithHostTimeout(e.cli.Timeout), overlord.WithLogger(e.log), overlord.WithAudit(trail)}
	id, err := identity.Load(e.dir())
	if err != nil {
		return overlord.New(opts...) // it reports the same error, which hint explains
	}
	// The certmaster, the CRL, renewal and the minion list are the
	// command line's business (see certmaster.go): the client gets the
	// identity and the list.
	cm, err := e.prepare(id)
	e.cm = cm
	opts = append(opts, overlord.WithIdentity(id), overlord.WithMinions(cm))
	if err != nil {
		opts = append(opts, func(*overlord.Config) error { return err })
	}
	if len(e.cli.Broker) > 0 {
		opts = append(opts, e.brokerTransport(id, trail))
	}
	return overlord.New(opts...)
}

// brokerTransport is --broker: calls go through the broker, signed
// with the overlord's key. A broker that cannot be reached fails every
// call with the reason.
func (e *env) brokerTransport(id *identity.Identity, trail audit.Appender) overlord.Option {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := caller.Dial(ctx, e.cli.Broker, id, caller.Options{Logger: e.log.Named("broker"), Audit: trail})
	if err != nil {
		return func(*overlord.Config) error { return err }
	}
	e.closers = append(e.closers, tr.Close)
	e.broker = tr
	e.rememberBroker(id)
	return overlord.WithTransport(tr)
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

// failure reports an error that ended a command before any host
// answered, and returns the exit code it deserves.
func (e *env) failure(err error) int {
	code := exitCode(err)
	kind := "error"
	switch {
	case errors.Is(err, gofunc.ErrAuditFailed):
		err = fmt.Errorf("nothing was called: the call could not be recorded in the audit log: %w", err)
		kind = "audit"
	case errors.Is(err, caller.ErrRefused):
		kind = "broker_refused"
	case code == exitNoMatch:
		kind = "no_match"
	case code == exitUsage:
		kind = "usage"
	case errors.Is(err, context.Canceled) && e.ctx.Err() != nil:
		return exitInterrupted // run() reports it
	}
	return e.report(kind, e.hint(err), code)
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

// call calls module.method on the targets and shows each host's value.
func (e *env) call(module, method string, args []any) int {
	text := humanValue
	if module == "test" && method == "ping" {
		text = func(any) string { return "ok" }
	}
	outcomes, code := e.fanout(module, method, args, func(x explainer) presenter { return callPresenter(x, text) }, false)
	if code >= 0 {
		return code
	}
	return callExit(outcomes)
}

// callExit is 0 when every host succeeded, 1 otherwise.
func callExit(outcomes []hostOutcome) int {
	for _, o := range outcomes {
		if !o.ok {
			return exitFailed
		}
	}
	return exitOK
}

// fanout calls module.method on the selected hosts and shows each
// result as it arrives. It returns the outcomes and -1, or the exit
// code when the call could not start (printed already).
func (e *env) fanout(module, method string, args []any, present func(explainer) presenter, commandOutput bool) ([]hostOutcome, int) {
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return nil, e.usage(err)
	}
	if e.cli.Async && len(e.cli.Broker) > 0 {
		return nil, e.submitBroker(c, sel, module, method, args)
	}
	if e.cli.Async {
		return nil, e.submit(c, sel, module, method, args)
	}
	hosts, err := sel.Hosts(e.ctx)
	e.cm.reportDropped(e.cli.Spec.Spec)
	if err != nil {
		return nil, e.failure(err)
	}
	v := e.newView(hosts, present(e.explainer(c)), commandOutput)
	for r, err := range sel.Stream(e.ctx, module, method, args...) {
		if r.Host == "" && err != nil {
			v.status.close()
			return nil, e.failure(err)
		}
		v.add(r)
	}
	return v.finish(), -1
}

// showResults shows results gathered by the SDK (copyfile, getfile,
// inventory) like a fan-out's, and returns the exit code.
func (e *env) showResults(c *overlord.Client, res overlord.Results) int {
	e.cm.reportDropped(e.cli.Spec.Spec)
	v := e.newView(nil, callPresenter(e.explainer(c), humanValue), false)
	for _, h := range res.Hosts() {
		v.add(res[h])
	}
	return callExit(v.finish())
}

// explainer describes host errors for this run; c gives the overlord's
// identity, to tell a revoked overlord so.
func (e *env) explainer(c *overlord.Client) explainer {
	x := explainer{timeout: e.cli.Timeout}
	if c != nil {
		x.self = c.Identity()
	}
	return x
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
	if e.cli.ListMinions.Refresh && (e.cm == nil || e.cm.addr == "") {
		return e.usage(errors.New("--refresh needs a certmaster: give --certmaster HOST:PORT once, and func remembers it"))
	}
	ms, err := c.Minions(e.ctx)
	e.cm.reportDropped("*")
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

// verifyJSON is one file's line in `func --json audit verify`.
type verifyJSON struct {
	File     string `json:"file"`
	OK       bool   `json:"ok"`
	Files    int    `json:"files"`   // files of the chain read (the live one and its rotations)
	Records  int    `json:"records"` // records verified
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	Head     string `json:"head"`              // hash of the last record
	Warning  string `json:"warning,omitempty"` // a torn final line (a crash), not tampering
	Error    string `json:"error,omitempty"`   // where the chain breaks
	// With --witness: heads the overlord logs hold that were found in
	// the chain, and those older than its first record (not checkable).
	Witnessed   *int `json:"witnessed,omitempty"`
	BeforeStart int  `json:"witnesses_before_start,omitempty"`
}

func (e *env) auditVerify() int {
	cmd := e.cli.Audit.Verify
	var witnesses []audit.Checkpoint
	switch {
	case len(cmd.Witness) > 0 && cmd.Host == "":
		return e.usage(errors.New("--witness needs --host: the minion whose log the files are"))
	case cmd.Host != "" && len(cmd.Witness) == 0:
		return e.usage(errors.New("--host goes with --witness"))
	case len(cmd.Witness) > 0:
		for _, w := range cmd.Witness {
			files, err := audit.Files(w)
			var found []audit.Witness
			if err == nil {
				found, err = audit.Witnesses(cmd.Host, files...)
			}
			if err != nil {
				return e.report("error", fmt.Errorf("reading the witnesses in %s: %w", w, err), exitFailed)
			}
			for _, f := range found {
				witnesses = append(witnesses, f.Checkpoint)
			}
		}
	}
	code := exitOK
	var report []verifyJSON
	for _, f := range cmd.Files {
		v := verifyJSON{File: f}
		files, err := audit.Files(f)
		var sum audit.Summary
		if err == nil && len(cmd.Witness) > 0 {
			var ws audit.WitnessSummary
			ws, err = audit.VerifyWitnessed(witnesses, files...)
			sum, v.Witnessed, v.BeforeStart = ws.Summary, &ws.Checked, ws.BeforeStart
		} else if err == nil {
			sum, err = audit.Verify(files...)
		}
		v.Files, v.Records, v.FirstSeq, v.LastSeq, v.Head = sum.Files, sum.Records, sum.FirstSeq, sum.LastSeq, sum.LastHash
		switch {
		case errors.Is(err, audit.ErrTorn):
			// A crash tore the last write: every complete record
			// verified; funcd's next start moves the torn line aside.
			v.OK, v.Warning = true, err.Error()
		case err != nil:
			v.Error = err.Error()
			code = exitFailed
		default:
			v.OK = true
		}
		report = append(report, v)
	}
	e.print(report, func() {
		for _, v := range report {
			switch {
			case v.Warning != "":
				fmt.Fprintf(e.stdout, "%s: ok: %s; WARNING: %s\n", v.File, summaryOf(v), v.Warning)
			case v.OK:
				fmt.Fprintf(e.stdout, "%s: ok: %s\n", v.File, summaryOf(v))
			default:
				fmt.Fprintf(e.stdout, "%s: FAILED: %s\n", v.File, v.Error)
			}
		}
	})
	return code
}

func summaryOf(v verifyJSON) string {
	s := audit.Summary{Files: v.Files, Records: v.Records, FirstSeq: v.FirstSeq, LastSeq: v.LastSeq, LastHash: v.Head}.String()
	if v.Witnessed != nil {
		s += fmt.Sprintf("; %d witnessed heads agree", *v.Witnessed)
		if *v.Witnessed == 0 {
			s += " (none to check: the overlord log holds no head for this host)"
		}
		if v.BeforeStart > 0 {
			s += fmt.Sprintf(", %d older than the files", v.BeforeStart)
		}
	}
	return s
}

func (e *env) auditQuery() int {
	q := e.cli.Audit.Query
	filter := audit.Filter{Kind: q.Kind, Caller: q.Caller, Method: q.Method, Outcome: q.Outcome, CallID: q.CallID,
		Since: q.Since.Time, Until: q.Until.Time}
	if err := filter.Validate(); err != nil {
		return e.usage(err)
	}
	if q.Outcome != "" && !slices.Contains(audit.Outcomes, q.Outcome) {
		return e.usage(fmt.Errorf("--outcome %q: not an outcome gofunc records; one of: %s", q.Outcome, strings.Join(audit.Outcomes, ", ")))
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
			// The output is JSON lines: an unreadable file is one too.
			err = fmt.Errorf("%s: %w", f, err)
			fmt.Fprintln(e.stderr, "func:", err)
			writeJSONLine(e.stdout, errorReport("error", err, exitFailed))
			code = exitFailed
		}
	}
	return code
}

// isTerminal reports whether w is a terminal: a person watches it.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
