// Package modules registers gofunc's built-in modules on a minion.
//
// Each module lives in its own package (modules/command,
// modules/service, ...) as a Go value whose exported methods are its
// remote methods; this package only wires them with one configuration.
// Modules are registered explicitly, never by init().
package modules

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/gofunc/gofunc/internal/pathguard"
	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/modules/copyfile"
	"github.com/gofunc/gofunc/modules/disk"
	"github.com/gofunc/gofunc/modules/filetracker"
	"github.com/gofunc/gofunc/modules/getfile"
	"github.com/gofunc/gofunc/modules/hardware"
	"github.com/gofunc/gofunc/modules/mount"
	"github.com/gofunc/gofunc/modules/nagios"
	"github.com/gofunc/gofunc/modules/networktest"
	"github.com/gofunc/gofunc/modules/packages"
	"github.com/gofunc/gofunc/modules/process"
	"github.com/gofunc/gofunc/modules/reboot"
	"github.com/gofunc/gofunc/modules/service"
	"github.com/gofunc/gofunc/modules/stats"
	"github.com/gofunc/gofunc/modules/sysctl"
	"github.com/gofunc/gofunc/modules/test"
	"github.com/gofunc/gofunc/modules/users"
)

// Registrar is what modules are registered on; *minion.Server is one.
type Registrar interface {
	Register(name string, module any) error
}

// Config configures the built-in modules. Zero fields mean each
// module's documented defaults.
type Config struct {
	// AllowDirs limits copyfile and getfile to these directories; empty
	// means any path.
	AllowDirs []string
	// StateDir is where modules keep state (filetracker snapshots);
	// empty disables the modules that need it.
	StateDir string
	// NagiosPluginDir is where nagios.run_check finds plugins; empty
	// means /usr/lib/nagios/plugins, or /usr/lib64/nagios/plugins (Fedora,
	// RHEL) when only that one exists.
	NagiosPluginDir string
	// NagiosAllow names the plugins nagios.run_check may run: file names
	// or globs ("check_disk", "check_*"). Empty means
	// nagios.DefaultAllow(), the stock plugins that run no command.
	// negate, urlize, check_by_ssh and check_log are never run.
	NagiosAllow []string
	// CopyfileMaxSize bounds the size of a file copyfile writes, in
	// bytes; zero means copyfile.DefaultMaxFileSize (1 GiB).
	CopyfileMaxSize int64
}

// Validate reports what in cfg the modules would refuse at their first
// call: an allowed directory that is not an absolute path, a bad
// nagios allow-list entry, a negative size.
func (cfg Config) Validate() error {
	var errs []error
	if _, err := pathguard.New(cfg.AllowDirs); err != nil {
		errs = append(errs, err)
	}
	if err := nagios.ValidateAllow(cfg.NagiosAllow); err != nil {
		errs = append(errs, err)
	}
	if cfg.CopyfileMaxSize < 0 {
		errs = append(errs, fmt.Errorf("copyfile: maximum size %d is negative", cfg.CopyfileMaxSize))
	}
	return errors.Join(errs...)
}

// Effective returns cfg with its zero fields replaced by the values the
// modules use in their place, for display (funcd --info).
func (cfg Config) Effective() Config {
	if cfg.NagiosPluginDir == "" {
		cfg.NagiosPluginDir = nagios.FindPluginDir()
	}
	if len(cfg.NagiosAllow) == 0 {
		cfg.NagiosAllow = nagios.DefaultAllow()
	}
	if cfg.CopyfileMaxSize == 0 {
		cfg.CopyfileMaxSize = copyfile.DefaultMaxFileSize
	}
	cfg.AllowDirs = slices.Clone(cfg.AllowDirs)
	return cfg
}

// Builtin returns the built-in modules by wire name, configured by cfg.
func Builtin(cfg Config) map[string]any {
	checks := &nagios.Module{PluginDir: cfg.NagiosPluginDir, Allow: cfg.NagiosAllow}
	m := map[string]any{
		"test":        &test.Module{},
		"command":     &command.Module{},
		"copyfile":    &copyfile.Module{AllowDirs: cfg.AllowDirs, MaxFileSize: cfg.CopyfileMaxSize},
		"getfile":     &getfile.Module{AllowDirs: cfg.AllowDirs},
		"service":     &service.Module{},
		"process":     &process.Module{},
		"networktest": &networktest.Module{},
		"nagios":      checks,
		// Func's name for nagios.run_check, judged by the ACL as that.
		"nagios_check": &nagios.FuncCheck{Module: checks},
		"hardware":     &hardware.Module{},
		"facts":        &hardware.Facts{},
		"sysctl":       &sysctl.Module{},
		"mount":        &mount.Module{AllowDirs: cfg.AllowDirs},
		"disk":         &disk.Module{},
		"stats":        &stats.Module{},
		"users":        &users.Module{},
		"packages":     &packages.Module{},
		// Dangerous: denied unless an ACL rule names reboot.reboot exactly.
		"reboot": &reboot.Module{},
	}
	if cfg.StateDir != "" {
		m["filetracker"] = &filetracker.Module{StateDir: filepath.Join(cfg.StateDir, "filetracker"), AllowDirs: cfg.AllowDirs}
	}
	return m
}

// Register registers every built-in module on r, after checking cfg
// (see Validate).
func Register(r Registrar, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("modules: %w", err)
	}
	for name, m := range Builtin(cfg) {
		if err := r.Register(name, m); err != nil {
			return fmt.Errorf("modules: %s: %w", name, err)
		}
	}
	return nil
}
