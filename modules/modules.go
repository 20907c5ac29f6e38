// Package modules registers gofunc's built-in modules on a minion.
//
// Each module lives in its own package (modules/command,
// modules/service, ...) as a Go value whose exported methods are its
// remote methods; this package only wires them with one configuration.
// Modules are registered explicitly, never by init().
package modules

import (
	"fmt"

	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/modules/test"
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
	return map[string]any{
		"test":    &test.Module{},
		"command": &command.Module{},
	}
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
