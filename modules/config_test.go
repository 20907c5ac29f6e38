package modules_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
	"github.com/gofunc/gofunc/modules/copyfile"
	"github.com/gofunc/gofunc/modules/nagios"
)

// A configuration the modules would refuse at their first call is
// refused when they are registered, so a daemon fails at start.
func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg     modules.Config
		mention string
	}{
		{modules.Config{AllowDirs: []string{"srv"}}, "not absolute"},
		{modules.Config{NagiosAllow: []string{"check disk"}}, "check disk"},
		{modules.Config{CopyfileMaxSize: -1}, "negative"},
	} {
		var srv minion.Server
		err := modules.Register(&srv, c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.mention) {
			t.Errorf("Register(%+v) = %v, want an error mentioning %q", c.cfg, err, c.mention)
		}
	}
	good := modules.Config{AllowDirs: []string{"/srv"}, NagiosAllow: []string{"check_*"}, CopyfileMaxSize: 1 << 20}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", good, err)
	}
}

func TestConfigEffective(t *testing.T) {
	eff := modules.Config{}.Effective()
	if eff.CopyfileMaxSize != copyfile.DefaultMaxFileSize || !slices.Equal(eff.NagiosAllow, nagios.DefaultAllow()) ||
		eff.NagiosPluginDir != nagios.FindPluginDir() {
		t.Errorf("Effective() = %+v, want the modules' defaults", eff)
	}
	set := modules.Config{NagiosPluginDir: "/opt/plugins", NagiosAllow: []string{"check_x"}, CopyfileMaxSize: 7}
	if eff := set.Effective(); eff.NagiosPluginDir != "/opt/plugins" || !slices.Equal(eff.NagiosAllow, []string{"check_x"}) || eff.CopyfileMaxSize != 7 {
		t.Errorf("Effective() = %+v, want the settings kept", eff)
	}
}
