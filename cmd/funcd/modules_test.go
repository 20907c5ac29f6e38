package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/modules/copyfile"
	"github.com/gofunc/gofunc/modules/nagios"
)

// The built-in modules' settings come from flags and gofunc.toml, and
// --info shows them with their defaults filled in.
func TestModuleSettings(t *testing.T) {
	f := newFixture(t)
	code, stdout, stderr := runInProcess(t, "--dir", f.dir, "--info")
	if code != 0 {
		t.Fatalf("funcd --info = %d; stderr:\n%s", code, stderr)
	}
	var got info
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if mc := got.ModuleConfig; mc.CopyfileMaxSize != copyfile.DefaultMaxFileSize || !slices.Equal(mc.NagiosAllow, nagios.DefaultAllow()) ||
		mc.NagiosPluginDir != nagios.FindPluginDir() || mc.AllowDirs == nil {
		t.Errorf("--info module_config = %+v, want the defaults", mc)
	}

	toml := "copyfile-max-size = \"4GiB\"\nnagios-plugin-dir = \"/usr/lib64/nagios/plugins\"\nnagios-allow = [\"check_disk\", \"check_my*\"]\n"
	if err := os.WriteFile(filepath.Join(f.dir, "gofunc.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runInProcess(t, "--dir", f.dir, "--info")
	if code != 0 {
		t.Fatalf("funcd --info = %d; stderr:\n%s", code, stderr)
	}
	got = info{}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if mc := got.ModuleConfig; mc.CopyfileMaxSize != 4<<30 || mc.NagiosPluginDir != "/usr/lib64/nagios/plugins" ||
		!slices.Equal(mc.NagiosAllow, []string{"check_disk", "check_my*"}) {
		t.Errorf("--info module_config = %+v, want the file's settings", mc)
	}
	// The flag wins over the file; a plain number is bytes.
	code, stdout, _ = runInProcess(t, "--dir", f.dir, "--info", "--copyfile-max-size", "1048576", "--nagios-allow", "check_load")
	got = info{}
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil {
		t.Fatalf("funcd --info = %d, %v", code, err)
	}
	if mc := got.ModuleConfig; mc.CopyfileMaxSize != 1<<20 || !slices.Equal(mc.NagiosAllow, []string{"check_load"}) {
		t.Errorf("--info module_config = %+v, want the flags' settings", mc)
	}

	for _, c := range []struct {
		args    []string
		code    int
		mention string
	}{
		{[]string{"--copyfile-max-size", "lots"}, exitUsage, "is not a size"},
		{[]string{"--copyfile-max-size", "-1"}, exitUsage, "copyfile-max-size"},
		{[]string{"--nagios-allow", "check disk"}, exitError, "check disk"},
		{[]string{"--allow-dir", "relative/dir"}, exitError, "not absolute"},
	} {
		code, _, stderr := runInProcess(t, append([]string{"--dir", f.dir, "--info"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.mention) {
			t.Errorf("funcd %q: exit %d, want %d; stderr %q should mention %q", c.args, code, c.code, stderr, c.mention)
		}
	}
}

// A real funcd runs the plugins its --nagios-plugin-dir holds and its
// --nagios-allow names, and no others; its copyfile refuses a file
// above --copyfile-max-size.
func TestModuleFlagsServe(t *testing.T) {
	f := newFixture(t)
	plugins := t.TempDir()
	for name, body := range map[string]string{"check_mine": "echo 'MINE OK | x=1'", "check_other": "echo OTHER OK", "negate": "\"$@\""} {
		if err := os.WriteFile(filepath.Join(plugins, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := t.TempDir()
	p := startFuncd(t, "--dir", f.dir, "--listen", f.addr, "--nagios-plugin-dir", plugins,
		"--nagios-allow", "check_mine", "--nagios-allow", "negate", "--copyfile-max-size", "1KiB", "--allow-dir", files)
	c := newClient(t, f.admin, "m1.test", f.addr)
	c.waitUp(p)

	got, err := c.call("nagios.run_check", "check_mine", []any{})
	if res, ok := got.(map[string]any); err != nil || !ok || res["status"] != "OK" || res["output"] != "MINE OK" {
		t.Errorf("nagios.run_check(check_mine) = %v, %v", got, err)
	}
	if _, err := c.call("nagios.run_check", "check_other", []any{}); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("nagios.run_check(check_other) = %v, want denied: not in --nagios-allow", err)
	}
	if _, err := c.call("nagios.run_check", "negate", []any{"/bin/sh", "-c", "id"}); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("nagios.run_check(negate) = %v, want denied even when allowed", err)
	}
	if _, err := c.call("copyfile.open", filepath.Join(files, "big"), map[string]any{"size": 2048}); !errors.Is(err, gofunc.ErrTooLarge) {
		t.Errorf("copyfile.open(2 KiB) = %v, want too large with --copyfile-max-size 1KiB", err)
	}
	if _, err := c.call("copyfile.copyfile", filepath.Join(files, "small"), []byte("fits"), map[string]any{}); err != nil {
		t.Errorf("copyfile.copyfile(4 bytes) = %v", err)
	}
}
