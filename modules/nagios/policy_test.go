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

// marker returns a plugin body that leaves a file behind when it runs,
// and the path of that file.
func marker(t *testing.T) (body, path string) {
	path = filepath.Join(t.TempDir(), "ran")
	return "touch '" + path + "'\necho OK\n", path
}

func wantNotRun(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("the plugin ran: %s exists", path)
	}
}

// The review's case: negate and urlize run the command they are given,
// so a caller granted nagios.* ran "negate /bin/sh -c 'id > f'" as root.
// Wrapper plugins are refused even when the allow-list names them, under
// their own name or through a symbolic link, and list leaves them out.
func TestWrapperPluginsRefused(t *testing.T) {
	body, ran := marker(t)
	dir := pluginDir(t, map[string]string{
		"negate": body, "urlize": body, "check_by_ssh": body, "check_log": body, "check_ok": "echo OK",
	})
	if err := os.Symlink("negate", filepath.Join(dir, "check_innocent")); err != nil {
		t.Fatal(err)
	}
	m := &Module{PluginDir: dir, Allow: []string{"*"}}
	for _, plugin := range []string{"negate", "urlize", "check_by_ssh", "check_log", "check_innocent"} {
		_, err := m.RunCheck(t.Context(), plugin, []string{"/bin/sh", "-c", "id"})
		modtest.WantCode(t, err, gofunc.CodeDenied)
		if plugin == "check_innocent" && !strings.Contains(err.Error(), "is negate") {
			t.Errorf("RunCheck(check_innocent) = %v; want it to say it is negate", err)
		}
	}
	wantNotRun(t, ran)
	names, err := m.List(t.Context())
	if err != nil || !slices.Equal(names, []string{"check_ok"}) {
		t.Errorf("List = %q, %v; want only check_ok", names, err)
	}
}

// Without an allow-list only the stock plugins of DefaultAllow run; an
// operator's list replaces it, globs included.
func TestAllowList(t *testing.T) {
	dir := pluginDir(t, map[string]string{"check_disk": "echo DISK OK", "check_custom": "echo CUSTOM OK", "check_flexlm": "echo OK"})
	ctx := t.Context()

	m := &Module{PluginDir: dir}
	if res, err := m.RunCheck(ctx, "check_disk", nil); err != nil || res.Output != "DISK OK" {
		t.Errorf("default allow-list: RunCheck(check_disk) = %+v, %v", res, err)
	}
	for _, p := range []string{"check_custom", "check_flexlm"} {
		_, err := m.RunCheck(ctx, p, nil)
		modtest.WantCode(t, err, gofunc.CodeDenied)
		if err != nil && !strings.Contains(err.Error(), "nagios-allow") {
			t.Errorf("RunCheck(%s) = %v; want it to name the setting", p, err)
		}
	}
	if names, _ := m.List(ctx); !slices.Equal(names, []string{"check_disk"}) {
		t.Errorf("default allow-list: List = %q", names)
	}

	m = &Module{PluginDir: dir, Allow: []string{"check_c*"}}
	if _, err := m.RunCheck(ctx, "check_custom", nil); err != nil {
		t.Errorf("Allow check_c*: RunCheck(check_custom) = %v", err)
	}
	_, err := m.RunCheck(ctx, "check_disk", nil)
	modtest.WantCode(t, err, gofunc.CodeDenied)

	m = &Module{PluginDir: dir, Allow: []string{"check disk"}}
	_, err = m.RunCheck(ctx, "check_disk", nil)
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
	if ValidateAllow([]string{"check disk"}) == nil || ValidateAllow([]string{""}) == nil || ValidateAllow([]string{"../x"}) == nil {
		t.Error("ValidateAllow accepted a bad entry")
	}
	if err := ValidateAllow(append(DefaultAllow(), "check_[a-z]*", "*")); err != nil {
		t.Errorf("ValidateAllow(good) = %v", err)
	}
}

// Options that make a plugin run a command, or read its options from a
// file, are refused before the plugin runs; the harmless spellings of
// the same options are not.
func TestRefusedOptions(t *testing.T) {
	body, ran := marker(t)
	dir := pluginDir(t, map[string]string{"check_apt": body, "check_dig": body, "check_disk": body})
	if err := os.Symlink("check_apt", filepath.Join(dir, "check_updates")); err != nil {
		t.Fatal(err)
	}
	m := &Module{PluginDir: dir, Allow: []string{"*"}}
	refused := map[string][]string{
		"check_apt": {"--update=-o APT::Update::Pre-Invoke::=id", "-u-o APT::Update::Pre-Invoke::=id", "--upgrade=-o x",
			"-U-o x", "--dist-upgrade=-o x", "-d-o x", "--upd=-o x", "--dist=x", "-lu-o x", "--extra-opts=apt@/tmp/evil.ini",
			"--extra-opts"},
		"check_updates": {"--update=-o x"},
		"check_dig":     {"-A", "-A-f /etc/shadow", "--dig-arguments=-f /etc/shadow", "--dig=-f x", "-lA"},
		"check_disk":    {"--extra-opts=@/tmp/evil.ini", "--extra=x"},
	}
	for plugin, cases := range refused {
		for _, arg := range cases {
			_, err := m.RunCheck(t.Context(), plugin, []string{"-t", "5", arg})
			modtest.WantCode(t, err, gofunc.CodeDenied)
		}
	}
	wantNotRun(t, ran)
	allowed := map[string][]string{
		"check_apt":  {"-u", "--update", "-U", "--upgrade", "-d", "-l", "--list", "-t", "10", "--", "--update=-o x"},
		"check_dig":  {"-H", "127.0.0.1", "-l", "example.org"},
		"check_disk": {"-w", "10%", "-c", "5%", "-p", "/", "-u", "GB", "--exclude-type=tmpfs"},
	}
	for plugin, args := range allowed {
		if _, err := m.RunCheck(t.Context(), plugin, args); err != nil {
			t.Errorf("RunCheck(%s, %q) = %v", plugin, args, err)
		}
	}
}

// A plugin or plugin directory that someone else could write is one
// whose program the minion must not run.
func TestWritablePluginRefused(t *testing.T) {
	dir := pluginDir(t, map[string]string{"check_loose": "echo OK", "check_ok": "echo OK"})
	if err := os.Chmod(filepath.Join(dir, "check_loose"), 0o757); err != nil {
		t.Fatal(err)
	}
	m := &Module{PluginDir: dir, Allow: []string{"*"}}
	_, err := m.RunCheck(t.Context(), "check_loose", nil)
	modtest.WantCode(t, err, gofunc.CodeDenied)
	if _, err := m.RunCheck(t.Context(), "check_ok", nil); err != nil {
		t.Fatalf("RunCheck(check_ok) = %v", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(filepath.Join(dir, "check_ok"), 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err = m.RunCheck(t.Context(), "check_ok", nil)
		modtest.WantCode(t, err, gofunc.CodeDenied)
		if err := os.Chown(filepath.Join(dir, "check_ok"), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err = m.RunCheck(t.Context(), "check_ok", nil)
	modtest.WantCode(t, err, gofunc.CodeDenied)
}

// Plugins get a fixed environment, not the minion's (which may hold an
// enrollment token).
func TestPluginEnvironment(t *testing.T) {
	t.Setenv("GOFUNC_TOKEN", "s3cret")
	dir := pluginDir(t, map[string]string{"check_env": `echo "token=$GOFUNC_TOKEN lc=$LC_ALL"`})
	m := &Module{PluginDir: dir, Allow: []string{"check_env"}}
	res, err := m.RunCheck(t.Context(), "check_env", nil)
	if err != nil || res.Output != "token= lc=C" {
		t.Errorf("RunCheck(check_env) = %+v, %v; want no token and the C locale", res, err)
	}
}

func FuzzCheckArgs(f *testing.F) {
	for _, s := range []string{"--update=x", "-u", "-lu-o", "--", "--extra-opts", "-A", "--dig", "-", "---", "--="} {
		f.Add("check_apt", s)
	}
	f.Fuzz(func(t *testing.T, plugin, arg string) {
		err := checkArgs(plugin, plugin, []string{arg})
		// A refused option is refused after "--" no more.
		if err2 := checkArgs(plugin, plugin, []string{"--", arg}); err2 != nil && len(arg) <= maxArgLen && !strings.Contains(arg, "\x00") {
			t.Fatalf("checkArgs(%q, [-- %q]) = %v", plugin, arg, err2)
		}
		if err == nil {
			return
		}
		if f, ok := err.(*gofunc.Fault); !ok || (f.Code != gofunc.CodeDenied && f.Code != gofunc.CodeBadArgs) {
			t.Fatalf("checkArgs error %v is not a denial or bad args", err)
		}
	})
}
