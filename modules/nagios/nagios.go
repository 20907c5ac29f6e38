// Package nagios is the "nagios" module: it runs Nagios plugins from a
// fixed directory and returns their status, text and performance data
// parsed as the Nagios plugin guidelines define them.
//
// The plugin is named by a bare file name ("check_disk"), looked up in
// PluginDir; a symbolic link that leads outside PluginDir is refused. The
// arguments are passed to the plugin as they are (no shell).
//
// # What run_check is
//
// run_check runs a program as the minion's user (root, under funcd) with
// arguments the caller chooses. Granting nagios.run_check grants whatever
// the allowed plugins can be made to do with those arguments, so the
// module narrows it:
//
//   - Only the plugins in Allow run; by default (DefaultAllow) the stock
//     monitoring-plugins whose options were read and found to run no
//     command and write no file (check_disk, check_load, check_procs,
//     check_http, ...). An operator adds their own plugins there.
//   - Plugins that run a command they are given (negate, urlize,
//     check_by_ssh) and check_log (it copies a file the caller names to a
//     path the caller names) are refused even when Allow names them: a
//     caller granted nagios.* ran "negate /bin/sh -c ..." as root.
//   - Options that make a plugin run a command or take its options from
//     a file are refused: --extra-opts on every plugin, check_apt's
//     --update, --upgrade and --dist-upgrade with options (they become
//     apt-get options, and apt's hooks run commands), check_dig's
//     --dig-arguments (dig -f reads any file).
//   - A plugin, or its directory, that a group or others may write, or
//     that someone other than root or the minion's user owns, is refused:
//     a local user could otherwise plant a program for the minion to run.
//   - Plugins run with a fixed environment (a system PATH and the C
//     locale), not the minion's.
//
// Perl and shell plugins that build shell commands from their arguments
// (check_flexlm, check_breeze, check_wave, ...) are not in DefaultAllow;
// whoever allows them vouches for them. The caller still chooses the
// arguments of an allowed plugin: check_http and check_tcp probe any
// address the minion can reach.
package nagios

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults for the zero fields of Module.
const (
	// DefaultPluginDir is where Debian and Ubuntu install the plugins.
	DefaultPluginDir = "/usr/lib/nagios/plugins"
	// DefaultPluginDir64 is where Fedora, RHEL and SUSE install them.
	DefaultPluginDir64 = "/usr/lib64/nagios/plugins"
	DefaultTimeout     = 60 * time.Second
)

// Limits on the arguments and the output.
const (
	maxArgs   = 64
	maxArgLen = 4096
	maxOutput = 64 << 10
)

// Module is the nagios module. Its exported fields are its configuration;
// it is safe for concurrent use.
type Module struct {
	// PluginDir holds the plugins; empty means DefaultPluginDir
	// (/usr/lib/nagios/plugins), or DefaultPluginDir64
	// (/usr/lib64/nagios/plugins) when only that one exists.
	PluginDir string
	// Allow names the plugins run_check may run: file names or globs
	// ("check_disk", "check_*", "*"), matched against the name the
	// caller gives. Empty means DefaultAllow(). negate, urlize,
	// check_by_ssh and check_log are refused whatever Allow says.
	Allow []string
	// Timeout bounds one plugin run; zero means DefaultTimeout (60s). A
	// plugin that runs over is killed and reported UNKNOWN.
	Timeout time.Duration
}

// CheckResult is what run_check returns.
type CheckResult struct {
	// ExitCode is the plugin's exit status (-1 when a signal ended it).
	ExitCode int `xmlrpc:"exit_code"`
	// Status is OK, WARNING, CRITICAL or UNKNOWN (any other exit status,
	// or a timeout).
	Status string `xmlrpc:"status"`
	// Output is the first line of text; LongOutput the following lines.
	Output     string `xmlrpc:"output"`
	LongOutput string `xmlrpc:"long_output"` // lines 2 and on, perfdata removed
	Perfdata   []Perf `xmlrpc:"perfdata"`    // parsed performance data
	// PerfdataError names the first malformed perfdata item, if any (the
	// others are still in Perfdata).
	PerfdataError string `xmlrpc:"perfdata_error"`
	// Stderr is what the plugin wrote to standard error (Nagios ignores it).
	Stderr    string  `xmlrpc:"stderr"`
	TimedOut  bool    `xmlrpc:"timed_out"`  // the plugin ran over Timeout and was killed
	DurationS float64 `xmlrpc:"duration_s"` // run time in seconds
}

var statusNames = []string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// pluginPattern is a bare file name.
var pluginPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)

// RunCheck runs a plugin with args and parses its output.
func (m *Module) RunCheck(ctx context.Context, plugin string, args []string) (CheckResult, error) {
	out, timeout, err := m.run(ctx, plugin, args)
	if err != nil {
		return CheckResult{}, err
	}
	res := CheckResult{ExitCode: out.ExitCode, Status: "UNKNOWN", DurationS: out.Duration.Seconds(), TimedOut: out.TimedOut}
	if out.ExitCode >= 0 && out.ExitCode < len(statusNames) {
		res.Status = statusNames[out.ExitCode]
	}
	res.Stderr, _ = procrun.SafeText(out.Stderr)
	text, _ := procrun.SafeText(out.Stdout)
	parsed := ParseOutput(text)
	res.Output, res.LongOutput = parsed.Text, parsed.LongText
	res.Perfdata, err = ParsePerfdata(parsed.Perfdata)
	if err != nil {
		res.PerfdataError = err.Error()
	}
	if res.Perfdata == nil {
		res.Perfdata = []Perf{}
	}
	if out.TimedOut {
		res.Status = "UNKNOWN"
		res.Output = fmt.Sprintf("plugin timed out after %v", timeout)
	}
	return res, nil
}

// run checks a plugin and its arguments against the policy and runs it.
func (m *Module) run(ctx context.Context, plugin string, args []string) (procrun.Output, time.Duration, error) {
	path, target, err := m.resolve(plugin)
	if err != nil {
		return procrun.Output{}, 0, err
	}
	if err := checkArgs(plugin, target, args); err != nil {
		return procrun.Output{}, 0, err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	out, err := procrun.Run(ctx, procrun.Spec{
		Argv:      append([]string{path}, args...),
		Env:       procrun.ToolEnv(),
		MaxOutput: maxOutput,
		Timeout:   timeout,
	})
	return out, timeout, err
}

// List returns the names of the plugins run_check would run: executable
// files in PluginDir that Allow names and that are not refused.
func (m *Module) List(ctx context.Context) ([]string, error) {
	dir, err := m.pluginDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", dir, err)
	}
	names := []string{}
	for _, e := range entries {
		if _, _, err := m.resolve(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// resolve checks a plugin name and returns the path to run and the name
// of the file it leads to: allowed, not refused, inside the plugin
// directory, executable, not writable by others, and not a symbolic
// link to elsewhere. The path keeps the plugin's own name (some plugins,
// check_host for one, act on the name they were called by).
func (m *Module) resolve(plugin string) (path, target string, err error) {
	if !pluginPattern.MatchString(plugin) || strings.Contains(plugin, "..") || plugin == "." {
		return "", "", gofunc.Errorf(gofunc.CodeBadArgs, "plugin %q is not a bare file name", plugin)
	}
	if why, refused := refusedPlugins[plugin]; refused {
		return "", "", gofunc.Errorf(gofunc.CodeDenied, "plugin %s %s; it is never run (command.run is the method for that)", plugin, why)
	}
	if ok, err := m.allowed(plugin); err != nil {
		return "", "", err
	} else if !ok {
		return "", "", gofunc.Errorf(gofunc.CodeDenied, "plugin %s is not allowed on this minion (funcd: nagios-allow)", plugin)
	}
	dir, err := m.pluginDir()
	if err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, plugin)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", gofunc.Errorf(gofunc.CodeNotFound, "no plugin %s in %s", plugin, dir)
		}
		return "", "", gofunc.Errorf(gofunc.CodeModule, "plugin %s: %v", plugin, err)
	}
	if !strings.HasPrefix(real, dir+"/") {
		return "", "", gofunc.Errorf(gofunc.CodeDenied, "plugin %s leads outside %s (to %s)", plugin, dir, real)
	}
	target = filepath.Base(real)
	if why, refused := refusedPlugins[target]; refused {
		return "", "", gofunc.Errorf(gofunc.CodeDenied, "plugin %s is %s, which %s; it is never run", plugin, target, why)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", "", gofunc.Errorf(gofunc.CodeNotFound, "plugin %s: %v", plugin, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", "", gofunc.Errorf(gofunc.CodeNotFound, "plugin %s is not an executable file", plugin)
	}
	if err := checkOwner(plugin, real, fi); err != nil {
		return "", "", err
	}
	if err := checkDirOwner(plugin, filepath.Dir(real)); err != nil {
		return "", "", err
	}
	return path, target, nil
}

// pluginDir returns the plugin directory, resolved, after checking that
// only root or the minion's user may write it.
func (m *Module) pluginDir() (string, error) {
	dir := m.PluginDir
	if dir == "" {
		dir = FindPluginDir()
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "plugin directory %s is missing (are Nagios plugins installed?)", dir)
	}
	if err := checkDirOwner("directory", real); err != nil {
		return "", err
	}
	return real, nil
}

// FindPluginDir returns the plugin directory a Module with no PluginDir
// uses: DefaultPluginDir, or DefaultPluginDir64 when only that exists.
func FindPluginDir() string {
	for _, d := range []string{DefaultPluginDir, DefaultPluginDir64} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			return d
		}
	}
	return DefaultPluginDir
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Run Nagios plugins and parse their status, output and performance data. A plugin runs as the " +
			"minion's user with the caller's arguments: only the plugins the minion allows run (nagios-allow), and " +
			"plugins or options that run commands (negate, urlize, check_by_ssh, --extra-opts, ...) are refused.",
		Version: "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"RunCheck": {
				Description: "Run an allowed plugin as the minion's user: {exit_code, status (OK, WARNING, CRITICAL, UNKNOWN), " +
					"output, long_output, perfdata [{label, value, unknown, uom, warn, crit, min, max}], perfdata_error, " +
					"stderr, timed_out, duration_s}",
				Args: []gofunc.ArgDoc{
					{Name: "plugin", Type: "string", Description: "plugin file name in the plugin directory, e.g. check_disk; it must be allowed"},
					{Name: "args", Type: "array", Description: "arguments, passed as they are (no shell); options that run commands are refused (secret: plugins take credentials, e.g. check_http -a)", Optional: true, Secret: true},
				},
			},
			"List": {Description: "Names of the plugins run_check would run: allowed, executable, in the plugin directory"},
		},
	}
}
