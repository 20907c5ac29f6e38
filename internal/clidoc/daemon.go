package clidoc

import (
	"fmt"
	"io"

	"github.com/alecthomas/kong"

	"github.com/gofunc/gofunc/internal/cliconf"
)

// Daemon describes a daemon's command line for ParseDaemon.
type Daemon struct {
	Name        string // "funcd"
	Description string // kong's one-line description
	SeeAlso     string // the man page's SEE ALSO line
}

// ParseDaemon parses args into cli (a pointer to the daemon's kong
// struct) the way every gofunc daemon does: --completion and --man
// answered, no arguments at all a usage error, values from flags, the
// environment and config files (cliconf), --help printed. exit reports
// whether the program ends here, with code (0, or 2 for a usage error).
func ParseDaemon(cli any, d Daemon, args []string, stdout, stderr io.Writer) (exit bool, code int) {
	_, exit, code = ParseCommand(cli, d, args, stdout, stderr)
	return exit, code
}

// ParseCommand is ParseDaemon for a program with subcommands (the
// certmaster): it also returns the parsed kong context, whose Command
// names the one chosen; nil when exit is true.
func ParseCommand(cli any, d Daemon, args []string, stdout, stderr io.Writer) (kctx *kong.Context, exit bool, code int) {
	const ok, usage = 0, 2
	parser, err := kong.New(cli, kong.Name(d.Name), kong.Description(d.Description),
		kong.Writers(stdout, stderr), kong.Exit(func(int) {}),
		kong.Vars{VarManSection: "8", VarSeeAlso: d.SeeAlso})
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
		return nil, true, usage
	}
	if Handle(parser.Model, args, stdout, Config{}) {
		return nil, true, ok
	}
	if len(args) == 0 {
		PrintUsage(parser, stderr)
		return nil, true, usage
	}
	kctx, err = cliconf.Parse(parser, args)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
		return nil, true, usage
	}
	if kctx == nil {
		return nil, true, ok // --help was printed
	}
	return kctx, false, ok
}
