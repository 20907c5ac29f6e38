// Package nagios is the "nagios" module: it runs Nagios plugins from a
// fixed directory and returns their status, text and performance data
// parsed as the Nagios plugin guidelines define them.
//
// The plugin is named by a bare file name ("check_disk"), looked up in
// PluginDir; a symbolic link that leads outside PluginDir is refused. The
// arguments are passed to the plugin as they are (no shell).
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
	DefaultPluginDir = "/usr/lib/nagios/plugins"
	DefaultTimeout   = 60 * time.Second
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
	// (/usr/lib/nagios/plugins).
	PluginDir string
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
	path, err := m.resolve(plugin)
	if err != nil {
		return CheckResult{}, err
	}
	if len(args) > maxArgs {
		return CheckResult{}, gofunc.Errorf(gofunc.CodeBadArgs, "%d arguments, at most %d", len(args), maxArgs)
	}
	for i, a := range args {
		if len(a) > maxArgLen || strings.IndexByte(a, 0) >= 0 {
			return CheckResult{}, gofunc.Errorf(gofunc.CodeBadArgs, "args[%d] is over %d bytes or holds a NUL byte", i, maxArgLen)
		}
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	out, err := procrun.Run(ctx, procrun.Spec{
		Argv:      append([]string{path}, args...),
		Env:       append(os.Environ(), "LC_ALL=C"),
		MaxOutput: maxOutput,
		Timeout:   timeout,
	})
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

// List returns the names of the executable plugins in PluginDir.
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
		if _, err := m.resolve(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// resolve checks a plugin name and returns the path to run: inside the
// plugin directory, executable, and not a symbolic link to elsewhere. The
// path keeps the plugin's own name (some plugins, check_host for one, act
// on the name they were called by).
func (m *Module) resolve(plugin string) (string, error) {
	if !pluginPattern.MatchString(plugin) || strings.Contains(plugin, "..") || plugin == "." {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "plugin %q is not a bare file name", plugin)
	}
	dir, err := m.pluginDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, plugin)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", gofunc.Errorf(gofunc.CodeNotFound, "no plugin %s in %s", plugin, dir)
		}
		return "", gofunc.Errorf(gofunc.CodeModule, "plugin %s: %v", plugin, err)
	}
	if !strings.HasPrefix(real, dir+"/") {
		return "", gofunc.Errorf(gofunc.CodeDenied, "plugin %s leads outside %s (to %s)", plugin, dir, real)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", gofunc.Errorf(gofunc.CodeNotFound, "plugin %s: %v", plugin, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return "", gofunc.Errorf(gofunc.CodeNotFound, "plugin %s is not an executable file", plugin)
	}
	return path, nil
}

// pluginDir returns the plugin directory, resolved.
func (m *Module) pluginDir() (string, error) {
	dir := m.PluginDir
	if dir == "" {
		dir = DefaultPluginDir
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "plugin directory %s is missing (are Nagios plugins installed?)", dir)
	}
	return real, nil
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Run Nagios plugins and parse their status, output and performance data.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"RunCheck": {
				Description: "Run a plugin: {exit_code, status (OK, WARNING, CRITICAL, UNKNOWN), output, long_output, " +
					"perfdata [{label, value, unknown, uom, warn, crit, min, max}], perfdata_error, stderr, timed_out, duration_s}",
				Args: []gofunc.ArgDoc{
					{Name: "plugin", Type: "string", Description: "plugin file name in the plugin directory, e.g. check_disk"},
					{Name: "args", Type: "array", Description: "arguments, passed as they are (no shell)", Optional: true},
				},
			},
			"List": {Description: "Names of the executable plugins in the plugin directory"},
		},
	}
}
