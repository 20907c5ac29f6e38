// Package service is the "service" module: it lists and controls systemd
// services through systemctl.
//
// Every call first checks that systemd is running (the test sd_booted(3)
// makes: /run/systemd/system exists) and fails with CodeUnavailable,
// naming PID 1, when it is not. Unit names are validated against systemd's
// own character set and always passed after "--", so a name can never be
// taken for an option. A unit that does not exist gives CodeNotFound.
//
// The control verbs (start, stop, restart, reload, enable, disable) act on
// service units only: a name without a unit suffix gets ".service", as
// systemctl would add it, and any other unit type ("reboot.target",
// "poweroff.target", "home.mount") is refused with CodeBadArgs, so that
// being granted service.* is not a way to reboot, power off or isolate
// the host. For the same reason the services that exist to change the
// machine's power state (systemd-reboot.service, systemd-poweroff.service,
// systemd-suspend.service, ...) and the rescue and emergency shells are
// refused with CodeDenied: reboot.reboot, a dangerous method, is the way
// to restart a host.
package service

import (
	"context"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults for the zero fields of Module.
const (
	DefaultSystemdRunDir = "/run/systemd/system"
	DefaultTimeout       = 2 * time.Minute
)

// maxListOutput bounds systemctl's answer to the list calls.
const maxListOutput = 16 << 20

// Module is the service module. Its exported fields are its configuration;
// the zero Module uses the host's systemctl. It is safe for concurrent use.
type Module struct {
	// Systemctl is the systemctl program; empty means /usr/bin/systemctl,
	// or /bin/systemctl when only that exists.
	Systemctl string
	// SystemdRunDir is the directory whose existence shows that systemd is
	// PID 1; empty means DefaultSystemdRunDir (/run/systemd/system).
	SystemdRunDir string
	// Timeout bounds each systemctl run (a slow service start); zero
	// means DefaultTimeout (2 minutes).
	Timeout time.Duration
}

// Unit is one service as list-units shows it.
type Unit struct {
	Name        string `xmlrpc:"name"`        // "nginx.service"
	Load        string `xmlrpc:"load"`        // loaded, not-found, masked, ...
	Active      string `xmlrpc:"active"`      // active, inactive, failed, ...
	Sub         string `xmlrpc:"sub"`         // running, exited, dead, ...
	Description string `xmlrpc:"description"` // the unit's Description=
}

// Status is one service's state as systemctl show reports it.
type Status struct {
	Name          string `xmlrpc:"name"`            // the unit's Id: "nginx.service"
	Description   string `xmlrpc:"description"`     // the unit's Description=
	LoadState     string `xmlrpc:"load_state"`      // loaded, not-found, masked, ...
	ActiveState   string `xmlrpc:"active_state"`    // active, inactive, failed, ...
	SubState      string `xmlrpc:"sub_state"`       // running, exited, dead, ...
	UnitFileState string `xmlrpc:"unit_file_state"` // enabled, disabled, static, masked, ...
	// Running is ActiveState == "active".
	Running bool `xmlrpc:"running"`
	// MainPID is the service's main process, 0 when none.
	MainPID int `xmlrpc:"main_pid"`
	// ExecMainStatus is the exit status of the main process's last run.
	ExecMainStatus int `xmlrpc:"exec_main_status"`
	// ActiveSince is systemd's ActiveEnterTimestamp, as systemctl prints it.
	ActiveSince string `xmlrpc:"active_since"`
}

// InventoryEntry is one installed service in the inventory: its unit
// file and that file's state. What the service is doing right now
// (active, sub state) is left to List and GetRunning: it changes with
// every timer-started oneshot and would make each inventory differ.
type InventoryEntry struct {
	Name string `xmlrpc:"name"` // "nginx.service", "getty@.service"
	// Enabled is the unit file state: enabled, disabled, static, masked,
	// generated, indirect, alias, enabled-runtime, ...
	Enabled string `xmlrpc:"enabled"`
}

// unitPattern is the character set of systemd unit names (with templates
// "getty@tty1" and escapes "\x2d"); the first character is never '-' or '.'.
var unitPattern = regexp.MustCompile(`^[A-Za-z0-9:_\\@][A-Za-z0-9:_.\\@-]{0,254}$`)

// CheckUnitName validates a unit name ("nginx", "nginx.service",
// "getty@tty1.service"): CodeBadArgs for anything else.
func CheckUnitName(name string) error {
	if !unitPattern.MatchString(name) || strings.Contains(name, "..") {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%q is not a valid unit name", name)
	}
	return nil
}

// unitTypes are the suffixes systemd reads as a unit type; any other
// suffix is part of a service's name ("dbus-org.freedesktop.login1").
var unitTypes = map[string]bool{
	"service": true, "socket": true, "target": true, "device": true, "mount": true, "automount": true,
	"swap": true, "timer": true, "path": true, "slice": true, "scope": true,
}

// powerServices change the machine's state when started: they reboot,
// halt, power off, kexec or suspend it, or drop it to a rescue shell.
// Only reboot.reboot, a dangerous method, may do that.
var powerServices = map[string]bool{
	"systemd-reboot.service": true, "systemd-poweroff.service": true, "systemd-halt.service": true,
	"systemd-kexec.service": true, "systemd-soft-reboot.service": true, "systemd-exit.service": true,
	"systemd-suspend.service": true, "systemd-hibernate.service": true, "systemd-hybrid-sleep.service": true,
	"systemd-suspend-then-hibernate.service": true, "rescue.service": true, "emergency.service": true,
}

// ServiceUnit validates a name given to a control verb and returns the
// service unit it names: "nginx" becomes "nginx.service", "nginx.service"
// and "getty@tty1.service" stay as they are. Another unit type
// ("reboot.target") is CodeBadArgs; a service that changes the machine's
// power state ("systemd-poweroff.service") is CodeDenied.
func ServiceUnit(name string) (string, error) {
	if err := CheckUnitName(name); err != nil {
		return "", err
	}
	unit := name
	if i := strings.LastIndexByte(name, '.'); i < 0 || !unitTypes[name[i+1:]] {
		unit = name + ".service"
	} else if suffix := name[i+1:]; suffix != "service" {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "%q is a %s unit; the service module controls .service units only", name, suffix)
	}
	if len(unit) > 255 {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "%q is not a valid unit name", name)
	}
	if powerServices[unit] {
		return "", gofunc.Errorf(gofunc.CodeDenied, "%s changes the machine's power state; use reboot.reboot", unit)
	}
	return unit, nil
}

// List returns every service unit systemd has loaded.
func (m *Module) List(ctx context.Context) ([]Unit, error) {
	out, err := m.systemctl(ctx, maxListOutput, "list-units", "--type=service", "--all", "--output=json")
	if err != nil {
		return nil, err
	}
	return ParseListUnits(out)
}

// Status returns one service's state.
func (m *Module) Status(ctx context.Context, name string) (Status, error) {
	if err := CheckUnitName(name); err != nil {
		return Status{}, err
	}
	out, err := m.systemctl(ctx, procrun.DefaultMaxOutput, "show",
		"--property=Id,Description,LoadState,ActiveState,SubState,UnitFileState,MainPID,ExecMainStatus,ActiveEnterTimestamp",
		"--", name)
	if err != nil {
		return Status{}, err
	}
	props, err := ParseShow(out)
	if err != nil {
		return Status{}, err
	}
	st := statusFrom(props)
	if st.LoadState == "not-found" {
		return st, gofunc.Errorf(gofunc.CodeNotFound, "unit %s not found", name)
	}
	if st.Name == "" {
		st.Name = name
	}
	return st, nil
}

// Start starts a service and waits until it is started.
func (m *Module) Start(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "start", name)
}

// Stop stops a service.
func (m *Module) Stop(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "stop", name)
}

// Restart restarts a service (starting it if it was stopped).
func (m *Module) Restart(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "restart", name)
}

// Reload asks a service to reload its configuration.
func (m *Module) Reload(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "reload", name)
}

// Enable makes a service start at boot.
func (m *Module) Enable(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "enable", name)
}

// Disable stops a service from starting at boot.
func (m *Module) Disable(ctx context.Context, name string) (bool, error) {
	return m.act(ctx, "disable", name)
}

// GetRunning returns the names of the services whose process is running.
func (m *Module) GetRunning(ctx context.Context) ([]string, error) {
	units, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, u := range units {
		if u.Sub == "running" {
			names = append(names, u.Name)
		}
	}
	return names, nil
}

// GetEnabled returns the names of the services enabled at boot.
func (m *Module) GetEnabled(ctx context.Context) ([]string, error) {
	files, err := m.unitFiles(ctx)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, f := range files {
		if f.State == "enabled" {
			names = append(names, f.Name)
		}
	}
	return names, nil
}

// Inventory returns every installed service (one with a unit file)
// with its unit file state, sorted by name. Transient services (made at
// run time by systemd-run) and the runtime state of services are left
// out, so two inventories are equal unless a service was installed,
// removed, enabled, disabled or masked.
func (m *Module) Inventory(ctx context.Context) ([]InventoryEntry, error) {
	files, err := m.unitFiles(ctx)
	if err != nil {
		return nil, err
	}
	return inventoryOf(files), nil
}

func (m *Module) unitFiles(ctx context.Context) ([]UnitFile, error) {
	out, err := m.systemctl(ctx, maxListOutput, "list-unit-files", "--type=service", "--output=json")
	if err != nil {
		return nil, err
	}
	return ParseUnitFiles(out)
}

func (m *Module) act(ctx context.Context, verb, name string) (bool, error) {
	unit, err := ServiceUnit(name)
	if err != nil {
		return false, err
	}
	if _, err := m.systemctl(ctx, procrun.DefaultMaxOutput, verb, "--", unit); err != nil {
		return false, err
	}
	return true, nil
}

// argv returns the argv the module runs for a systemctl subcommand: the
// program, the subcommand, then the fixed options (no pager, no password
// prompt) and the rest.
func (m *Module) argv(verb string, args ...string) []string {
	return append([]string{m.systemctlPath(), verb, "--no-pager", "--no-ask-password"}, args...)
}

// systemctl runs systemctl and returns its stdout; a failure becomes a
// fault carrying its stderr.
func (m *Module) systemctl(ctx context.Context, maxOutput int64, verb string, args ...string) ([]byte, error) {
	if err := m.booted(); err != nil {
		return nil, err
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	out, err := procrun.Run(ctx, procrun.Spec{
		Argv:      m.argv(verb, args...),
		Env:       append(os.Environ(), "LC_ALL=C", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"),
		MaxOutput: maxOutput,
		Timeout:   timeout,
		Tool:      true, // no systemctl: CodeUnavailable
	})
	if err != nil {
		return nil, err
	}
	if out.TimedOut {
		return nil, gofunc.Errorf(gofunc.CodeTimeout, "systemctl %s timed out after %v", verb, timeout)
	}
	if out.ExitCode != 0 {
		return nil, failure(verb, args, out)
	}
	if out.Truncated {
		return nil, gofunc.Errorf(gofunc.CodeTooLarge, "systemctl %s printed more than %d bytes", verb, maxOutput)
	}
	return out.Stdout, nil
}

// failure turns a failed systemctl run into a fault: CodeNotFound when
// systemctl says the unit does not exist.
func failure(verb string, args []string, out procrun.Output) error {
	code := gofunc.CodeModule
	lower := strings.ToLower(out.Message())
	if strings.Contains(lower, "not found") || strings.Contains(lower, "not loaded") || strings.Contains(lower, "does not exist") {
		code = gofunc.CodeNotFound
	}
	return out.Fault(code, "systemctl "+verb+" "+strings.Join(args, " "))
}

// booted applies sd_booted(3)'s test.
func (m *Module) booted() error {
	dir := m.SystemdRunDir
	if dir == "" {
		dir = DefaultSystemdRunDir
	}
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	return gofunc.Errorf(gofunc.CodeUnavailable, "systemd is not running on this host (PID 1 is %s)", pid1())
}

func pid1() string {
	b, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		return "unknown"
	}
	name, _ := procrun.SafeText(b)
	return strings.TrimSpace(name)
}

func (m *Module) systemctlPath() string {
	if m.Systemctl != "" {
		return m.Systemctl
	}
	return procrun.FindProgram("/usr/bin/systemctl", "/bin/systemctl")
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	name := []gofunc.ArgDoc{{Name: "name", Type: "string", Description: "unit name, e.g. \"nginx\" or \"getty@tty1.service\""}}
	service := []gofunc.ArgDoc{{Name: "name", Type: "string",
		Description: "service name, e.g. \"nginx\" (\".service\" is added) or \"getty@tty1.service\"; other unit types are refused"}}
	action := func(what string) gofunc.MethodDoc {
		return gofunc.MethodDoc{Description: what + " (systemctl); returns true", Args: service}
	}
	return gofunc.ModuleDoc{
		Description: "List and control systemd services through systemctl.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List":       {Description: "Every loaded service: [{name, load, active, sub, description}]"},
			"Status":     {Description: "One service: {name, description, load_state, active_state, sub_state, unit_file_state, running, main_pid, exec_main_status, active_since}", Args: name},
			"Start":      action("Start a service"),
			"Stop":       action("Stop a service"),
			"Restart":    action("Restart a service"),
			"Reload":     action("Reload a service's configuration"),
			"Enable":     action("Enable a service at boot"),
			"Disable":    action("Disable a service at boot"),
			"GetRunning": {Description: "Names of the services whose process is running"},
			"GetEnabled": {Description: "Names of the services enabled at boot"},
			"Inventory":  {Description: "Every installed service and its unit file state, sorted by name: [{name, enabled}]"},
		},
	}
}
