package nagios

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

// needRealPlugins skips without Debian's monitoring-plugins, loudly, and
// fails under CI, whose .ci/run installs them.
func needRealPlugins(t *testing.T) {
	t.Helper()
	_, err := os.Stat(filepath.Join(DefaultPluginDir, "negate"))
	modtest.Need(t, "Debian's monitoring-plugins (apt-get install monitoring-plugins-basic)", err)
}

// The review's attack on the real plugins Debian installs: negate and
// check_apt's --update options ran commands as the minion's user. Both
// are refused now, even with every plugin allowed, and the stock checks
// still run and parse.
func TestRealMonitoringPlugins(t *testing.T) {
	needRealPlugins(t)
	out := filepath.Join(t.TempDir(), "pwned")
	ctx := t.Context()
	all := &Module{Allow: []string{"*"}}
	attacks := []struct {
		plugin string
		args   []string
	}{
		{"negate", []string{"/bin/sh", "-c", "id > " + out}},
		{"urlize", []string{"http://x", "/bin/sh", "-c", "id > " + out}},
		{"check_by_ssh", []string{"-H", "127.0.0.1", "-o", "ProxyCommand=/bin/sh -c 'id > " + out + "'", "-C", "true"}},
		{"check_log", []string{"-F", "/etc/passwd", "-O", out, "-q", "root"}},
		{"check_apt", []string{"-t", "10", "--update=-o APT::Update::Pre-Invoke::=/usr/bin/touch${IFS}" + out +
			" -o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=/nonexistent"}},
		{"check_disk", []string{"--extra-opts=disk@/nonexistent.ini"}},
	}
	for _, a := range attacks {
		_, err := all.RunCheck(ctx, a.plugin, a.args)
		modtest.WantCode(t, err, gofunc.CodeDenied)
	}
	wantNotRun(t, out)

	for _, m := range []*Module{all, {}} {
		res, err := m.RunCheck(ctx, "check_dummy", []string{"1", "hello"})
		if err != nil || res.Status != "WARNING" || res.Output != "WARNING: hello" {
			t.Errorf("check_dummy 1 hello = %+v, %v", res, err)
		}
		res, err = m.RunCheck(ctx, "check_disk", []string{"-w", "0%", "-c", "0%", "-p", "/"})
		if err != nil || res.Status != "OK" || !strings.HasPrefix(res.Output, "DISK OK") ||
			len(res.Perfdata) != 1 || res.Perfdata[0].Label != "/" || res.PerfdataError != "" {
			t.Errorf("check_disk -p / = %+v, %v", res, err)
		}
	}
	names, err := (&Module{}).List(ctx)
	if err != nil || !slices.Contains(names, "check_disk") || !slices.Contains(names, "check_ftp") ||
		slices.Contains(names, "negate") || slices.Contains(names, "check_flexlm") || slices.Contains(names, "check_log") {
		t.Errorf("List = %q, %v; want the default allow-list's plugins only", names, err)
	}
}
