package nagios

import (
	"context"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// FuncCheck is Func's "nagios_check" module, for Func's clients: its one
// method, run, takes Func's single string ("check_disk -w 10% -c 5%"),
// split on white space as Func split it, and answers Func's [exit_code,
// stdout, stderr]. It runs through Module, so it runs only what
// run_check would (the same allow-list, refusals and limits), and the
// ACL judges a call to nagios_check.run as a call to nagios.run_check.
// Register it as "nagios_check" beside the Module it wraps.
type FuncCheck struct {
	// Module runs the plugins; nil means a zero Module.
	Module *Module
}

// Run runs check_command, a plugin name and its arguments separated by
// white space (no quoting, as in Func).
func (c *FuncCheck) Run(ctx context.Context, checkCommand string) ([]any, error) {
	fields := strings.Fields(checkCommand)
	if len(fields) == 0 {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "check_command is empty")
	}
	m := c.Module
	if m == nil {
		m = &Module{}
	}
	out, _, err := m.run(ctx, fields[0], fields[1:])
	if err != nil {
		return nil, err
	}
	stdout, _ := procrun.SafeText(out.Stdout)
	stderr, _ := procrun.SafeText(out.Stderr)
	return []any{out.ExitCode, stdout, stderr}, nil
}

// Doc describes the module for introspection.
func (c *FuncCheck) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Func's nagios_check module: nagios.run_check under Func's name and answer.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Run": {
				Description: "Func's nagios_check.run: run an allowed plugin as the minion's user; returns [exit_code, stdout, stderr] " +
					"(new code: nagios.run_check, which parses the status and perfdata)",
				Args: []gofunc.ArgDoc{{Name: "check_command", Type: "string",
					Description: "plugin name and arguments separated by white space, e.g. \"check_disk -w 10% -c 5% -p /\" (secret: arguments may hold credentials)", Secret: true}},
				AliasOf: "nagios.run_check",
			},
		},
	}
}
