package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/internal/version"
)

// cli is func's command line: the one definition that parsing, --help,
// the shell completions and the man page are made from. Global flags
// also come from DIR/gofunc.toml or GOFUNC_<FLAG>; the flag wins.
type cli struct {
	Dir        string        `group:"identity" help:"Overlord identity directory: ca.pem, cert.pem, key.pem, minions.json, groups, jobs.db, audit.log (default: $GOFUNC_DIR, else ~/.gofunc)." type:"path" placeholder:"DIR"`
	Certmaster string        `group:"identity" help:"Certmaster HOST:PORT to learn minions and the CRL from, and renew this overlord's certificate at; remembered in DIR/certmaster.json for later runs." placeholder:"HOST:PORT"`
	Broker     []string      `group:"identity" help:"Send calls through this gofunc broker (nats://HOST:4222) instead of to each minion's port (comma-separated or repeated: the brokers of one cluster); for minions behind NAT (funcd --broker). Remembered in DIR/broker.json for later runs once reached; none: call the minions' ports and forget it." placeholder:"URL"`
	CRLRefresh time.Duration `group:"identity" name:"crl-refresh" help:"Fetch the CRL from the certmaster when the one held (DIR/crl.pem) was fetched longer ago than this, or is past its next update; at most once per run." default:"1m"`

	Exclude     []string      `group:"targets" help:"Spec of minions to leave out (repeatable)." sep:"none" placeholder:"SPEC"`
	Where       string        `group:"targets" help:"Keep only minions whose facts match: os=debian,arch=x86_64,cpu_count>=4." placeholder:"FACTS"`
	Forks       int           `group:"calls" help:"Hosts called at once." default:"256"`
	Timeout     time.Duration `group:"calls" help:"How long each host may take to answer." default:"30s"`
	Batch       string        `group:"calls" help:"Call N hosts, or N% of them, at a time (rolling changes)." placeholder:"N|N%"`
	MaxFailures int           `group:"calls" name:"max-failures" help:"With --batch: failed hosts tolerated before the remaining batches are skipped (-1: never stop)." default:"0"`
	Async       bool          `group:"calls" help:"Start the call as a background job; print its id (see func jobs). With --broker, the broker keeps the job until each minion takes it (minions offline get it when they connect, for up to 7 days)."`
	StartBy     time.Duration `group:"calls" name:"start-by" help:"With --async and --broker: how long the job waits for minions that are offline (at most 168h)." default:"24h"`
	AsyncRunner string        `group:"calls" name:"async-runner" hidden:"" enum:"exec,none" default:"exec" help:"exec: run the job in a detached func process; none: leave it queued for 'func jobs run'."`

	JSON     bool   `group:"output" name:"json" help:"Print JSON on stdout, whatever happens: one object keyed by host." xor:"format"`
	YAML     bool   `group:"output" name:"yaml" help:"Print YAML, shaped like --json." xor:"format"`
	JSONL    bool   `group:"output" name:"jsonl" help:"Print one JSON line per host as it answers (for pipelines)." xor:"format"`
	Stream   bool   `group:"output" help:"Print each host's lines as it answers, prefixed with its name (the default for ping and call on a terminal)." xor:"format,layout"`
	Grouped  bool   `group:"output" short:"b" help:"Gather the answers and print identical ones once under their hosts (the default for run, and in a pipe)." xor:"layout"`
	Quiet    bool   `group:"output" short:"q" help:"No status line and no summary line on stderr."`
	LogLevel string `group:"output" name:"log-level" help:"trace, debug, info, warn, error." default:"warn" enum:"trace,debug,info,warn,error"`

	Version    version.Flag          `help:"Print the version and exit."`
	Completion clidoc.CompletionFlag `help:"Print the shell completion script for SHELL (bash, zsh, fish) and exit: source <(func --completion bash)." placeholder:"SHELL"`
	Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit: func --man | man -l -."`

	Spec        targetCmd      `arg:"" help:"Target spec: globs separated by ';', @group, @group:glob."`
	ListMinions listMinionsCmd `cmd:"" name:"list_minions" help:"List the minions this overlord knows."`
	Discover    discoverCmd    `cmd:"" help:"With --broker: ping every minion connected to the broker at once and list those that answer (\"discovered N\" on stderr); silence is not a failure."`
	Group       groupCmd       `cmd:"" help:"List or edit the groups file (DIR/groups)."`
	Jobs        jobsCmd        `cmd:"" help:"List, inspect and wait for async jobs."`
	Transmit    transmitCmd    `cmd:"" help:"Read one JSON request on stdin, print JSON results (for other languages)."`
	Audit       auditCmd       `cmd:"" help:"Verify or query audit logs."`
}

func (cli) Help() string {
	return "A spec names minions: globs separated by ';' (web*;db1.example.org), @group, @group:glob. " +
		"Exit status: 0 when every targeted host succeeded, 1 when any failed (or, for run, any command exited non-zero), " +
		"2 on a usage error, 3 when the spec matched nothing, 130 when interrupted (Ctrl-C cancels the calls on the minions too).\n\n" +
		examples("func --certmaster cm.example.org:51235 list_minions", "func '*' ping", "func 'web*' run -- uname -r",
			"func '@db' call service restart postgresql", "func 'web1*' doc service")
}

// flagGroups title the global flags in --help, apart from each
// command's own (which kong lists first, under "Flags:").
var flagGroups = kong.ExplicitGroups([]kong.Group{
	{Key: "identity", Title: "Identity (global):"},
	{Key: "targets", Title: "Targets (global):"},
	{Key: "calls", Title: "Calls (global):"},
	{Key: "output", Title: "Output (global):"},
})

// examples formats a command's examples for its --help.
func examples(lines ...string) string {
	return "Examples:\n\n    " + strings.Join(lines, "\n    ")
}

type targetCmd struct {
	Spec      string       `arg:"" help:"Target spec." complete:"hosts"`
	Ping      pingCmd      `cmd:"" help:"Call test.ping on every target."`
	Call      callCmd      `cmd:"" help:"Call MODULE METHOD [ARG...] on every target."`
	Run       runCmd       `cmd:"" help:"Run a command (command.run, no shell): identical output printed once, non-zero exits and a summary."`
	Doc       docCmd       `cmd:"" help:"Show a module's methods and their arguments, as the minions describe them."`
	Copyfile  copyfileCmd  `cmd:"" help:"Copy a local file to every target (atomic, checksummed)."`
	Getfile   getfileCmd   `cmd:"" help:"Fetch a file from every target into LOCALDIR/HOST/."`
	Show      showCmd      `cmd:"" help:"Show facts about the targets."`
	Inventory inventoryCmd `cmd:"" help:"Snapshot every module's inventory into a git repository (DIR/inventory) and show what changed."`
	Events    eventsCmd    `cmd:"" help:"Show the minions' events (watchers, lifecycle), oldest first, from a cursor or a time; --follow for new ones."`
	Stats     statsCmd     `cmd:"" help:"One row per host: load, cpu %, memory %, fullest disk, uptime (stats.all)."`
}

type pingCmd struct{}

func (pingCmd) Help() string {
	return examples("func '*' ping", "func 'web*;@db' ping --timeout 5s", "func --json '*' ping | jq -r 'to_entries[] | select(.value.ok | not) | .key'")
}

type callCmd struct {
	Module  string   `arg:"" help:"Module name."`
	Method  string   `arg:"" help:"Method name."`
	Args    []string `arg:"" optional:"" help:"Arguments: JSON literals (numbers, true/false, [lists], {maps}) or strings."`
	Strings bool     `help:"Send every argument as a string, even if it looks like JSON."`
}

func (callCmd) Help() string {
	return examples("func '*' call test add 40 2", "func 'web*' call service restart nginx",
		`func '*' call command run '["uname","-r"]'`, "func '*' call test echo --strings 42")
}

type runCmd struct {
	Passthrough bool     `help:"Exit with the highest exit status of the remote commands (1 when a host could not run it), instead of 0 or 1."`
	Argv        []string `arg:"" name:"argv" passthrough:"" help:"The command and its arguments, run without a shell; put -- before it when it has options."`
}

func (runCmd) Help() string {
	return examples("func '*' run uname -r", "func 'web*' run -- df -h /var", "func '*' run --passthrough -- systemctl is-active nginx",
		"func --stream '*' run -- journalctl -n 5 -u nginx", "func --json '@db' run -- pg_lsclusters")
}

type docCmd struct {
	Name string `arg:"" name:"module[.method]" help:"A module (every method) or one method: command, command.run."`
}

func (docCmd) Help() string {
	return examples("func 'web1*' doc command", "func 'web1*' doc command.run", "func --json 'web1*' doc service.restart")
}

type copyfileCmd struct {
	Local  string `arg:"" help:"Local file to send." type:"existingfile"`
	Remote string `arg:"" help:"Path to write on each minion."`
	Mode   string `help:"Octal permission bits, such as 0644 (default: keep, or 0644)."`
	Owner  string `help:"Owner name or uid (default: keep)."`
	Group  string `help:"Group name or gid (default: keep)."`
	Backup bool   `help:"Keep the replaced file as REMOTE.<time>.bak."`
}

func (copyfileCmd) Help() string {
	return examples("func 'web*' copyfile ./motd /etc/motd --mode 0644 --backup")
}

type getfileCmd struct {
	Remote   string       `arg:"" help:"Path of the file on each minion."`
	LocalDir string       `arg:"" optional:"" help:"Directory to store LOCALDIR/HOST/BASENAME in (default: current directory)." type:"path"`
	MaxSize  cliconf.Size `name:"max-size" help:"Refuse a host's file larger than this (bytes, or with a unit: 512MiB, 4GiB); 0: only the free space bounds it." default:"0"`
}

func (getfileCmd) Help() string {
	return examples("func 'web*' getfile /etc/nginx/nginx.conf ./configs   # ./configs/web1/nginx.conf, ...")
}

type showCmd struct {
	Hardware hardwareCmd `cmd:"" help:"hardware.info: OS, CPU, memory, disks, network."`
}

type hardwareCmd struct{}

func (hardwareCmd) Help() string {
	return examples("func 'db*' show hardware", "func --json '*' show hardware")
}

type inventoryCmd struct{}

func (inventoryCmd) Help() string {
	return examples("func '*' inventory", "git -C ~/.gofunc/inventory log --stat   # the history")
}

type listMinionsCmd struct {
	Refresh bool `help:"Ask the certmaster again and update the cached list."`
}

func (listMinionsCmd) Help() string {
	return examples("func --certmaster cm.example.org:51235 list_minions   # first time: learns and remembers the certmaster",
		"func list_minions --refresh", "func list_minions")
}

type discoverCmd struct {
	Window time.Duration `help:"Stop when no new minion has answered for this long (at most --timeout in all)." default:"2s"`
}

func (discoverCmd) Help() string {
	return examples("func --broker nats://broker1.example.org:4222 discover", "func --broker nats://broker1:4222 --json discover --window 5s")
}

type groupCmd struct {
	List   groupListCmd   `cmd:"" default:"1" help:"List groups and their members' specs."`
	Add    groupEditCmd   `cmd:"" help:"Add target specs to a group (creating it)."`
	Remove groupRemoveCmd `cmd:"" help:"Remove specs from a group, or the whole group."`
	Show   groupShowCmd   `cmd:"" help:"Show the minions a group matches."`
}

type groupListCmd struct{}

func (groupListCmd) Help() string { return examples("func group list") }

type groupEditCmd struct {
	Name  string   `arg:"" help:"Group name."`
	Specs []string `arg:"" help:"Target specs to add."`
}

func (groupEditCmd) Help() string {
	return examples("func group add web 'web*' 'lb1.example.org'", "func @web ping")
}

type groupRemoveCmd struct {
	Name  string   `arg:"" help:"Group name."`
	Specs []string `arg:"" optional:"" help:"Specs to remove; none removes the group."`
}

func (groupRemoveCmd) Help() string {
	return examples("func group remove web lb1.example.org", "func group remove web   # the whole group")
}

type groupShowCmd struct {
	Name string `arg:"" help:"Group name."`
}

func (groupShowCmd) Help() string { return examples("func group show web") }

type jobsCmd struct {
	List   jobsListCmd `cmd:"" default:"1" help:"List jobs, newest first (with --broker, then the jobs the broker keeps)."`
	Status jobIDCmd    `cmd:"" help:"Show a job's state and the results so far."`
	Wait   jobIDCmd    `cmd:"" help:"Wait for a job to finish; print and exit like the call itself."`
	Run    jobIDCmd    `cmd:"" hidden:"" help:"Run a queued job (what --async starts in the background)."`
	Delete jobIDCmd    `cmd:"" help:"Delete a finished job."`
}

type jobsListCmd struct{}

func (jobsListCmd) Help() string {
	return examples("func --async '*' call packages check_updates   # prints the job id", "func jobs list",
		"func --broker nats://broker:4222 jobs list   # also the broker's jobs, from any overlord")
}

type jobIDCmd struct {
	ID string `arg:"" help:"Job id, as --async and jobs list print it (32 hex digits: a job kept by the broker, read with --broker by any overlord)."`
}

func (jobIDCmd) Help() string {
	return examples("func jobs status 0190f3c2a1b4c5d6e7f8", "func jobs wait 0190f3c2a1b4c5d6e7f8 && echo done everywhere",
		"func --broker nats://broker:4222 jobs wait 5f0c9a7e2b1d4c3a8e6f0b9d2c7a1e4f")
}

type transmitCmd struct{}

func (transmitCmd) Help() string {
	return "Reads one JSON object on stdin:\n\n" + transmitSchema + "\n\n" +
		examples(`echo '{"spec":"web*","module":"test","method":"add","args":[1,2]}' | func transmit`)
}

type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Verify the hash chain of audit log files (in chain order)."`
	Query  auditQueryCmd  `cmd:"" help:"Print the records of audit logs that match filters, as JSON lines."`
}

type auditVerifyCmd struct {
	Files   []string `arg:"" help:"Audit log files; a live log's rotated files are found with it." type:"path"`
	Witness []string `sep:"none" help:"An overlord's audit log holding the heads HOST's minion sent with its answers: the files must agree with them, which shows records dropped, changed or cut off even when the chain was rebuilt." type:"path" placeholder:"OVERLORD-LOG"`
	Host    string   `placeholder:"NAME" help:"The minion the files are the audit log of, as the overlord named it (with --witness)."`
}

func (auditVerifyCmd) Help() string {
	return examples("func audit verify /var/lib/gofunc/audit.log", "func --json audit verify ~/.gofunc/audit.log",
		"func audit verify --witness ~/.gofunc/audit.log --host web1.example.org web1-audit.log")
}

type auditQueryCmd struct {
	Files   []string  `arg:"" help:"Audit log files (live logs; their rotated files are read too)." type:"path"`
	Kind    string    `help:"Pattern on the record kind: call.*, overlord.call."`
	Caller  string    `help:"Pattern on the caller's certificate name."`
	Method  string    `help:"Pattern on the method: command.*."`
	Outcome string    `help:"Outcome, one of: ${outcomes}."`
	CallID  string    `name:"call-id" help:"One call's records."`
	Since   sinceTime `help:"Records at or after this time: RFC 3339 (2026-12-01T10:00:00Z), a date (2026-12-01), or a duration ago (90s, 30m, 1h, 2d)."`
	Until   sinceTime `help:"Records before this time, in the same forms as --since."`
}

func (auditQueryCmd) Help() string {
	return examples("func audit query --since 1h --outcome denied /var/lib/gofunc/audit.log",
		"func audit query --method 'command.*' --caller alice ~/.gofunc/audit.log")
}

// sinceTime is a point in time given as RFC 3339, a date, or a duration
// before now.
type sinceTime struct{ time.Time }

// Decode implements kong.MapperValue.
func (t *sinceTime) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("time", &s); err != nil {
		return err
	}
	v, err := parseWhen(s, time.Now())
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// parseWhen reads RFC 3339, a date (2006-01-02, local time), a date
// and time (2006-01-02 15:04[:05], local), or a duration before now
// (Go's units, plus d for days and w for weeks).
func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := parseAgo(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339 (2026-12-01T10:00:00Z), a date (2026-12-01) or a duration ago (30m, 1h, 2d)", s)
}

// parseAgo is time.ParseDuration with d (24h) and w (7d), and no sign.
func parseAgo(s string) (time.Duration, error) {
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, fmt.Errorf("bad duration %q", s)
	}
	for _, unit := range []struct {
		suffix string
		d      time.Duration
	}{{"d", 24 * time.Hour}, {"w", 7 * 24 * time.Hour}} {
		if num, ok := strings.CutSuffix(s, unit.suffix); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil || n < 0 || n > 36500 || num[0] == '+' || strings.ContainsAny(num, "eEnNiIxXpP_") {
				return 0, fmt.Errorf("bad duration %q", s)
			}
			return time.Duration(n * float64(unit.d)), nil
		}
	}
	return time.ParseDuration(s)
}
