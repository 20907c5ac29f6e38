package nagios

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

// pluginDir writes shell-script plugins into a fresh directory.
func pluginDir(t *testing.T, plugins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range plugins {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const diskOutput = `DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968
/ 15272 MB (77%);
/boot 68 MB (69%);
/home 69357 MB (27%);
/var/log 819 MB (84%); | /boot=68MB;88;93;0;98
/home=69357MB;253404;253409;0;253414
/var/log=818MB;970;975;0;980
`

func TestRunCheck(t *testing.T) {
	dir := pluginDir(t, map[string]string{
		"check_disk":  "cat <<'EOF'\n" + diskOutput + "EOF\n",
		"check_warn":  "echo \"LOAD WARNING - args: $*|load1=5.5;5;10;0; 'it''s busy'=U\"; exit 1",
		"check_crit":  "echo 'PROCS CRITICAL'; echo oops >&2; exit 2",
		"check_unkn":  "echo 'UNKNOWN - no data'; exit 3",
		"check_weird": "echo 'segfault-ish'; exit 139",
		"check_slow":  "sleep 30",
		"check_name":  "echo \"called as $(basename \"$0\")\"",
		"not_exec":    "exit 0",
	})
	os.Chmod(filepath.Join(dir, "not_exec"), 0o644)
	os.Symlink("check_name", filepath.Join(dir, "check_alias"))
	m := &Module{PluginDir: dir, Allow: []string{"*"}, Timeout: 300 * time.Millisecond}
	ctx := t.Context()

	res, err := m.RunCheck(ctx, "check_disk", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "OK" || res.ExitCode != 0 || res.Output != "DISK OK - free space: / 3326 MB (56%);" ||
		!strings.HasPrefix(res.LongOutput, "/ 15272 MB (77%);\n/boot") || !strings.HasSuffix(res.LongOutput, "/var/log 819 MB (84%);") {
		t.Errorf("RunCheck(check_disk) = %+v", res)
	}
	var labels []string
	for _, p := range res.Perfdata {
		labels = append(labels, p.Label)
	}
	if !reflect.DeepEqual(labels, []string{"/", "/boot", "/home", "/var/log"}) || res.PerfdataError != "" {
		t.Errorf("perfdata labels = %q (%s)", labels, res.PerfdataError)
	}
	if p := res.Perfdata[2]; p != (Perf{Label: "/home", Value: 69357, UOM: "MB", Warn: "253404", Crit: "253409", Min: "0", Max: "253414"}) {
		t.Errorf("perfdata[2] = %+v", p)
	}

	res, err = m.RunCheck(ctx, "check_warn", []string{"-w", "5", "; rm -rf /"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != "WARNING" || res.ExitCode != 1 || res.Output != "LOAD WARNING - args: -w 5 ; rm -rf /" ||
		len(res.Perfdata) != 2 || !res.Perfdata[1].Unknown || res.Perfdata[1].Label != "it's busy" {
		t.Errorf("RunCheck(check_warn) = %+v", res)
	}

	for plugin, status := range map[string]string{"check_crit": "CRITICAL", "check_unkn": "UNKNOWN", "check_weird": "UNKNOWN"} {
		res, err := m.RunCheck(ctx, plugin, nil)
		if err != nil || res.Status != status {
			t.Errorf("RunCheck(%s) = %+v, %v; want %s", plugin, res, err, status)
		}
	}
	if res, _ := m.RunCheck(ctx, "check_crit", nil); res.Stderr != "oops\n" {
		t.Errorf("stderr = %q", res.Stderr)
	}

	res, err = m.RunCheck(ctx, "check_slow", nil)
	if err != nil || res.Status != "UNKNOWN" || !res.TimedOut || !strings.Contains(res.Output, "timed out") {
		t.Errorf("RunCheck(check_slow) = %+v, %v", res, err)
	}

	res, err = m.RunCheck(ctx, "check_alias", nil)
	if err != nil || res.Output != "called as check_alias" {
		t.Errorf("RunCheck(check_alias) = %+v, %v; want the plugin to see its alias", res, err)
	}

	_, err = m.RunCheck(ctx, "not_exec", nil)
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	_, err = m.RunCheck(ctx, "check_missing", nil)
	modtest.WantCode(t, err, gofunc.CodeNotFound)

	names, err := m.List(ctx)
	if err != nil || !slices.Contains(names, "check_disk") || slices.Contains(names, "not_exec") {
		t.Errorf("List = %q, %v", names, err)
	}
}

func TestPluginOutsideDirRefused(t *testing.T) {
	dir := pluginDir(t, nil)
	os.Symlink("/bin/true", filepath.Join(dir, "check_escape"))
	os.Symlink("../../../../../../bin/sh", filepath.Join(dir, "check_relative"))
	m := &Module{PluginDir: dir, Allow: []string{"*"}}
	for _, p := range []string{"check_escape", "check_relative"} {
		_, err := m.RunCheck(t.Context(), p, nil)
		modtest.WantCode(t, err, gofunc.CodeDenied)
	}
}

func TestHostileArguments(t *testing.T) {
	dir := pluginDir(t, map[string]string{"check_ok": "echo OK"})
	m := &Module{PluginDir: dir, Allow: []string{"check_ok"}}
	for _, p := range []string{"", "../../bin/sh", "/bin/sh", "a/b", "..", ".", "check_ok; reboot", "check ok",
		"check_ok\x00", "check..ok", strings.Repeat("a", 256), "$(reboot)"} {
		_, err := m.RunCheck(t.Context(), p, nil)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
	}
	_, err := m.RunCheck(t.Context(), "check_ok", []string{"a\x00b"})
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = m.RunCheck(t.Context(), "check_ok", make([]string, 65))
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = m.RunCheck(t.Context(), "check_ok", []string{strings.Repeat("x", 5000)})
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
}

func TestNoPluginDir(t *testing.T) {
	m := &Module{PluginDir: "/nonexistent/plugins"}
	_, err := m.RunCheck(t.Context(), "check_disk", nil)
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

func TestParsePerfdata(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Perf
	}{
		{"time=0.002722s;;;0.000000 size=242B;;;0", []Perf{
			{Label: "time", Value: 0.002722, UOM: "s", Min: "0.000000"},
			{Label: "size", Value: 242, UOM: "B", Min: "0"}}},
		{"'/ used'=2643MB;5948;5958;0;5968", []Perf{
			{Label: "/ used", Value: 2643, UOM: "MB", Warn: "5948", Crit: "5958", Min: "0", Max: "5968"}}},
		{"load1=0.050;15.000;30.000;0; load5=0.040;10.000;25.000;0;", []Perf{
			{Label: "load1", Value: 0.05, Warn: "15.000", Crit: "30.000", Min: "0"},
			{Label: "load5", Value: 0.04, Warn: "10.000", Crit: "25.000", Min: "0"}}},
		{"rta=0.045000ms;3000.000000;5000.000000;0.000000 pl=0%;80;100;0", []Perf{
			{Label: "rta", Value: 0.045, UOM: "ms", Warn: "3000.000000", Crit: "5000.000000", Min: "0.000000"},
			{Label: "pl", Value: 0, UOM: "%", Warn: "80", Crit: "100", Min: "0"}}},
		{"'it''s'=1c", []Perf{{Label: "it's", Value: 1, UOM: "c"}}},
		{"'a=b'=2", []Perf{{Label: "a=b", Value: 2}}},
		{"users=U;5;10", []Perf{{Label: "users", Unknown: true, Warn: "5", Crit: "10"}}},
		{"temp=-5.5C;@-10:0;~:40", []Perf{{Label: "temp", Value: -5.5, UOM: "C", Warn: "@-10:0", Crit: "~:40"}}},
		{"big=1.5e3KB;10:;:20", []Perf{{Label: "big", Value: 1500, UOM: "KB", Warn: "10:", Crit: ":20"}}},
		{"  a=1\n\tb=2  ", []Perf{{Label: "a", Value: 1}, {Label: "b", Value: 2}}},
		{"", nil},
	} {
		got, err := ParsePerfdata(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParsePerfdata(%q) =\n%+v, %v\nwant %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePerfdataMalformed(t *testing.T) {
	for _, in := range []string{
		"noequals", "=1", "x=abc", "x=1;2;3;4;5;6", "x=1;a", "x=1;2;3;a", "x=NaN", "x=Inf", "x=1e999",
		"'unterminated=1", "'a'b=1", "it's=1", "x=", "x=1 2",
	} {
		got, err := ParsePerfdata("ok=1 " + in + " last=2")
		if !errors.Is(err, ErrPerfdata) {
			t.Errorf("ParsePerfdata(%q) error = %v, want ErrPerfdata", in, err)
		}
		if len(got) < 1 || got[0].Label != "ok" {
			t.Errorf("ParsePerfdata(%q) lost the good item before: %+v", in, got)
		}
	}
	// The good items after a bad one survive too.
	got, err := ParsePerfdata("x=abc y=1")
	if err == nil || len(got) != 1 || got[0].Label != "y" {
		t.Errorf("ParsePerfdata = %+v, %v", got, err)
	}
}

func TestParseOutput(t *testing.T) {
	o := ParseOutput(diskOutput)
	if o.Text != "DISK OK - free space: / 3326 MB (56%);" {
		t.Errorf("Text = %q", o.Text)
	}
	if want := "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/home 69357 MB (27%);\n/var/log 819 MB (84%);"; o.LongText != want {
		t.Errorf("LongText = %q, want %q", o.LongText, want)
	}
	if want := "/=2643MB;5948;5958;0;5968  /boot=68MB;88;93;0;98 /home=69357MB;253404;253409;0;253414 /var/log=818MB;970;975;0;980"; o.Perfdata != want {
		t.Errorf("Perfdata = %q, want %q", o.Perfdata, want)
	}
	for in, want := range map[string]Output{
		"":                    {},
		"OK":                  {Text: "OK"},
		"OK | a=1":            {Text: "OK", Perfdata: "a=1"},
		"OK\nmore\nlines":     {Text: "OK", LongText: "more\nlines"},
		"OK\nlong | a=1\nb=2": {Text: "OK", LongText: "long", Perfdata: "a=1 b=2"},
	} {
		if got := ParseOutput(in); got != want {
			t.Errorf("ParseOutput(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func FuzzParsePerfdata(f *testing.F) {
	for _, s := range []string{
		"time=0.002722s;;;0.000000 size=242B;;;0", "'/ used'=2643MB;5948;5958;0;5968", "'it''s'=1c",
		"users=U;5;10", "temp=-5.5C;@-10:0;~:40", "x=1e5e", "'a b'=1 'unterminated", "x=1;2;3;4;5;;;",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		items, _ := ParsePerfdata(s)
		if len(items) > maxPerfItems {
			t.Fatalf("%d items", len(items))
		}
		// Round trip: formatting the items and parsing again gives them back.
		var b strings.Builder
		for _, p := range items {
			b.WriteString(p.String() + " ")
		}
		again, err := ParsePerfdata(b.String())
		if err != nil || !reflect.DeepEqual(again, items) {
			t.Fatalf("round trip of %q via %q:\n%+v, %v\n%+v", s, b.String(), again, err, items)
		}
	})
}

func FuzzParseOutput(f *testing.F) {
	f.Add(diskOutput)
	f.Add("OK | a=1\nlong | b=2\n")
	f.Fuzz(func(t *testing.T, s string) {
		o := ParseOutput(s)
		if strings.Contains(o.Text, "\n") {
			t.Fatalf("Text %q spans lines", o.Text)
		}
		if !strings.Contains(s, "|") && o.Perfdata != "" {
			t.Fatalf("perfdata %q without a pipe", o.Perfdata)
		}
	})
}

func ExampleParsePerfdata() {
	items, err := ParsePerfdata("'/ used'=2643MB;5948;5958;0;5968 load1=0.05;5;10")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range items {
		fmt.Printf("%s = %v%s (warn %s, crit %s)\n", p.Label, p.Value, p.UOM, p.Warn, p.Crit)
	}
	// Output:
	// / used = 2643MB (warn 5948, crit 5958)
	// load1 = 0.05 (warn 5, crit 10)
}

func BenchmarkParsePerfdata(b *testing.B) {
	out := ParseOutput(diskOutput).Perfdata
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		if _, err := ParsePerfdata(out); err != nil {
			b.Fatal(err)
		}
	}
}

func TestFuncCheckDoc(t *testing.T) { modtest.CheckDoc(t, &FuncCheck{}) }

// Func's nagios_check.run: one string split on white space, Func's
// [exit_code, stdout, stderr], and the same policy as run_check.
func TestFuncCheck(t *testing.T) {
	dir := pluginDir(t, map[string]string{"check_args": "echo \"WARN $*\"; echo err >&2; exit 1", "negate": "\"$@\""})
	c := &FuncCheck{Module: &Module{PluginDir: dir, Allow: []string{"*"}}}
	got, err := c.Run(t.Context(), "  check_args -w 10%   -c 5% ")
	if err != nil || !reflect.DeepEqual(got, []any{1, "WARN -w 10% -c 5%\n", "err\n"}) {
		t.Errorf("Run = %#v, %v", got, err)
	}
	_, err = c.Run(t.Context(), "negate /bin/sh -c id")
	modtest.WantCode(t, err, gofunc.CodeDenied)
	_, err = c.Run(t.Context(), "check_args --extra-opts=@/tmp/x")
	modtest.WantCode(t, err, gofunc.CodeDenied)
	_, err = c.Run(t.Context(), " \t")
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = c.Run(t.Context(), "../../bin/sh -c id")
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
}
