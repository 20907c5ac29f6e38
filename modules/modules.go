// Package modules registers gofunc's built-in modules on a minion.
//
// Each module lives in its own package (modules/command,
// modules/service, ...) as a Go value whose exported methods are its
// remote methods; this package only wires them with one configuration.
// Modules are registered explicitly, never by init().
package modules

import (
	"fmt"
	"path/filepath"

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
	// means /usr/lib/nagios/plugins.
	NagiosPluginDir string
}

// Builtin returns the built-in modules by wire name, configured by cfg.
func Builtin(cfg Config) map[string]any {
	m := map[string]any{
		"test":        &test.Module{},
		"command":     &command.Module{},
		"copyfile":    &copyfile.Module{AllowDirs: cfg.AllowDirs},
		"getfile":     &getfile.Module{AllowDirs: cfg.AllowDirs},
		"service":     &service.Module{},
		"process":     &process.Module{},
		"networktest": &networktest.Module{},
		"nagios":      &nagios.Module{PluginDir: cfg.NagiosPluginDir},
		"hardware":    &hardware.Module{},
		"facts":       &hardware.Facts{},
		"sysctl":      &sysctl.Module{},
		"mount":       &mount.Module{AllowDirs: cfg.AllowDirs},
		"disk":        &disk.Module{},
		"users":       &users.Module{},
		"packages":    &packages.Module{},
		// Dangerous: denied unless an ACL rule names reboot.reboot exactly.
		"reboot": &reboot.Module{},
	}
	if cfg.StateDir != "" {
		m["filetracker"] = &filetracker.Module{StateDir: filepath.Join(cfg.StateDir, "filetracker"), AllowDirs: cfg.AllowDirs}
	}
	return m
}

// Register registers every built-in module on r.
func Register(r Registrar, cfg Config) error {
	for name, m := range Builtin(cfg) {
		if err := r.Register(name, m); err != nil {
			return fmt.Errorf("modules: %s: %w", name, err)
		}
	}
	return nil
}
