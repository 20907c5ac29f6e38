package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

const listUnitsJSON = `[{"unit":"cron.service","load":"loaded","active":"active","sub":"running","description":"Regular background program processing daemon"},` +
	`{"unit":"getty@tty1.service","load":"loaded","active":"active","sub":"running","description":"Getty on tty1"},` +
	`{"unit":"networking.service","load":"loaded","active":"active","sub":"exited","description":"Raise network interfaces"},` +
	`{"unit":"nginx.service","load":"loaded","active":"failed","sub":"failed","description":"A high performance web server"}]`

const listUnitFilesJSON = `[{"unit_file":"cron.service","state":"enabled","preset":"enabled"},` +
	`{"unit_file":"nginx.service","state":"disabled","preset":"enabled"},` +
	`{"unit_file":"rsync.service","state":"disabled","preset":"enabled"},` +
	`{"unit_file":"getty@.service","state":"enabled","preset":"enabled"}]`

const showNginx = `Id=nginx.service
Description=A high performance web server and a reverse proxy server
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled
MainPID=4242
ExecMainStatus=0
ActiveEnterTimestamp=Wed 2025-11-26 11:29:01 UTC
`

// fakeSystemctl writes a systemctl stand-in that records each argv and
// answers from canned output, and returns a Module using it with a fake
// "systemd is running" directory.
func fakeSystemctl(t *testing.T) (*Module, *modtest.ArgvLog) {
	t.Helper()
	path, log := modtest.FakeBinary(t, "systemctl", `for last in "$@"; do :; done
case "$1" in
list-units) cat "$dir/list-units.json" ;;
list-unit-files) cat "$dir/list-unit-files.json" ;;
show)
	case "$last" in
	nginx|nginx.service) cat "$dir/show-nginx" ;;
	*) printf 'Id=%s.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\n' "$last" ;;
	esac ;;
*)
	case "$last" in
	missing|missing.service) echo "Failed to $1 missing.service: Unit missing.service not found." >&2; exit 5 ;;
	broken|broken.service) echo "Job for broken.service failed because the control process exited with error code." >&2; exit 1 ;;
	esac ;;
esac`)
	dir := filepath.Dir(path)
	for name, content := range map[string]string{
		"list-units.json": listUnitsJSON, "list-unit-files.json": listUnitFilesJSON, "show-nginx": showNginx,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := filepath.Join(dir, "run-systemd-system")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	return &Module{Systemctl: path, SystemdRunDir: run}, log
}

// calls returns the argv of every systemctl run so far, without argv[0].
func calls(log *modtest.ArgvLog) [][]string {
	var all [][]string
	for _, run := range log.Runs() {
		all = append(all, run[1:])
	}
	return all
}

func TestSystemdNotRunning(t *testing.T) {
	comm, err := os.ReadFile("/proc/1/comm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(DefaultSystemdRunDir); err == nil {
		t.Skip("systemd is running on this host; this test needs a host without it")
	}
	m := &Module{}
	_, err = m.Status(t.Context(), "ssh")
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
	want := fmt.Sprintf("systemd is not running on this host (PID 1 is %s)", strings.TrimSpace(string(comm)))
	if !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	for name, call := range map[string]func() error{
		"list":      func() error { _, err := m.List(t.Context()); return err },
		"restart":   func() error { _, err := m.Restart(t.Context(), "ssh"); return err },
		"inventory": func() error { _, err := m.Inventory(t.Context()); return err },
	} {
		if err := call(); !errors.Is(err, gofunc.ErrUnavailable) {
			t.Errorf("%s: %v, want unavailable", name, err)
		}
	}
}

func TestList(t *testing.T) {
	m, log := fakeSystemctl(t)
	units, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(units) != 4 || units[1] != (Unit{Name: "getty@tty1.service", Load: "loaded", Active: "active", Sub: "running", Description: "Getty on tty1"}) {
		t.Fatalf("List = %+v", units)
	}
	want := [][]string{{"list-units", "--no-pager", "--no-ask-password", "--type=service", "--all", "--output=json"}}
	if got := calls(log); !reflect.DeepEqual(got, want) {
		t.Errorf("argv = %q, want %q", got, want)
	}
	running, err := m.GetRunning(t.Context())
	if err != nil || !reflect.DeepEqual(running, []string{"cron.service", "getty@tty1.service"}) {
		t.Errorf("GetRunning = %q, %v", running, err)
	}
	enabled, err := m.GetEnabled(t.Context())
	if err != nil || !reflect.DeepEqual(enabled, []string{"cron.service", "getty@.service"}) {
		t.Errorf("GetEnabled = %q, %v", enabled, err)
	}
}

func TestStatus(t *testing.T) {
	m, log := fakeSystemctl(t)
	st, err := m.Status(t.Context(), "nginx")
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Name: "nginx.service", Description: "A high performance web server and a reverse proxy server",
		LoadState: "loaded", ActiveState: "active", SubState: "running", UnitFileState: "enabled",
		Running: true, MainPID: 4242, ActiveSince: "Wed 2025-11-26 11:29:01 UTC"}
	if st != want {
		t.Fatalf("Status =\n%+v, want\n%+v", st, want)
	}
	got := calls(log)[0]
	if got[0] != "show" || got[len(got)-2] != "--" || got[len(got)-1] != "nginx" {
		t.Errorf("argv = %q, want show ... -- nginx", got)
	}
	_, err = m.Status(t.Context(), "nosuch")
	modtest.WantCode(t, err, gofunc.CodeNotFound)
}

// controlVerbs are the module's control methods by systemctl verb.
func controlVerbs(ctx context.Context, m *Module) map[string]func(string) (bool, error) {
	return map[string]func(string) (bool, error){
		"start":   func(n string) (bool, error) { return m.Start(ctx, n) },
		"stop":    func(n string) (bool, error) { return m.Stop(ctx, n) },
		"restart": func(n string) (bool, error) { return m.Restart(ctx, n) },
		"reload":  func(n string) (bool, error) { return m.Reload(ctx, n) },
		"enable":  func(n string) (bool, error) { return m.Enable(ctx, n) },
		"disable": func(n string) (bool, error) { return m.Disable(ctx, n) },
	}
}

func TestActions(t *testing.T) {
	m, log := fakeSystemctl(t)
	for verb, call := range controlVerbs(t.Context(), m) {
		log.Reset()
		if ok, err := call("getty@tty1.service"); !ok || err != nil {
			t.Fatalf("%s = %v, %v", verb, ok, err)
		}
		want := [][]string{{verb, "--no-pager", "--no-ask-password", "--", "getty@tty1.service"}}
		if got := calls(log); !reflect.DeepEqual(got, want) {
			t.Errorf("%s argv = %q, want %q", verb, got, want)
		}
		log.Reset()
		if ok, err := call("nginx"); !ok || err != nil {
			t.Fatalf("%s(nginx) = %v, %v", verb, ok, err)
		}
		want = [][]string{{verb, "--no-pager", "--no-ask-password", "--", "nginx.service"}}
		if got := calls(log); !reflect.DeepEqual(got, want) {
			t.Errorf("%s(nginx) argv = %q, want %q: the .service suffix is added", verb, got, want)
		}
		_, err := call("missing")
		modtest.WantCode(t, err, gofunc.CodeNotFound)
		_, err = call("broken")
		modtest.WantCode(t, err, gofunc.CodeModule)
		if !strings.Contains(err.Error(), "control process exited") {
			t.Errorf("%s error %q lacks systemctl's message", verb, err)
		}
	}
}

func TestInventory(t *testing.T) {
	m, log := fakeSystemctl(t)
	inv, err := m.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []InventoryEntry{{"cron.service", "enabled"}, {"getty@.service", "enabled"},
		{"nginx.service", "disabled"}, {"rsync.service", "disabled"}}
	if !reflect.DeepEqual(inv, want) {
		t.Errorf("Inventory = %+v, want %+v", inv, want)
	}
	for _, argv := range calls(log) {
		if argv[0] != "list-unit-files" {
			t.Errorf("Inventory ran systemctl %q: runtime state has no place in it", argv)
		}
	}
}

// The reviewer's case on a fake host: between two inventories a timer
// starts a oneshot, a service crashes, systemd-run makes a transient
// service; nothing was configured, so the inventories are equal.
func TestInventoryStable(t *testing.T) {
	m, _ := fakeSystemctl(t)
	before, err := m.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(m.Systemctl)
	churned := map[string]string{
		"list-units.json": strings.ReplaceAll(listUnitsJSON, `"active":"active","sub":"running"`, `"active":"failed","sub":"failed"`),
		"list-unit-files.json": strings.Replace(listUnitFilesJSON, "[",
			`[{"unit_file":"run-u42.service","state":"transient","preset":null},`, 1),
	}
	for name, content := range churned {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	after, err := m.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("Inventory changed with runtime state alone:\nbefore %+v\nafter  %+v", before, after)
	}
}

// The reviewer's case on this host, when systemd runs it.
func TestInventoryStableReal(t *testing.T) {
	m := &Module{}
	if err := m.booted(); err != nil {
		t.Skipf("SKIPPED: %v", err)
	}
	modtest.CheckStable(t, m.Inventory)
}

func TestInventoryOf(t *testing.T) {
	got := inventoryOf([]UnitFile{{"b.service", "enabled"}, {"run-u7.service", "transient"},
		{"a.service", "masked"}, {"b.service", "enabled-runtime"}})
	want := []InventoryEntry{{"a.service", "masked"}, {"b.service", "enabled"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("inventoryOf = %+v, want %+v", got, want)
	}
}

func TestHostileNames(t *testing.T) {
	m, log := fakeSystemctl(t)
	for _, name := range []string{"", "nginx; reboot", "-rf", "--force", ".hidden", "../../etc/shadow",
		"a/b", "nginx\x00", "nginx service", "$(reboot)", "a*", strings.Repeat("a", 256), "foo..service"} {
		_, err := m.Restart(t.Context(), name)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
		_, err = m.Status(t.Context(), name)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
	}
	if log.Runs() != nil {
		t.Error("systemctl ran for an invalid name")
	}
	for _, name := range []string{"nginx", "nginx.service", "getty@tty1.service", "systemd-fsck@dev-disk-by\\x2duuid-1.service", "a:b"} {
		if err := CheckUnitName(name); err != nil {
			t.Errorf("CheckUnitName(%q) = %v", name, err)
		}
	}
}

// The review's case: service.start reboot.target rebooted the host,
// bypassing reboot.reboot being dangerous. The control verbs act on
// .service units only, and never on the services that change the
// machine's power state; systemctl is not even run.
func TestControlVerbsOnlyActOnServices(t *testing.T) {
	m, log := fakeSystemctl(t)
	ctx := t.Context()
	for verb, call := range controlVerbs(ctx, m) {
		for _, unit := range []string{"reboot.target", "poweroff.target", "halt.target", "emergency.target",
			"rescue.target", "kexec.target", "ctrl-alt-del.target", "home.mount", "dev-sda1.swap", "sshd.socket",
			"apt-daily.timer", "user.slice", "session-1.scope", "nginx.path", "proc-sys-fs-binfmt_misc.automount",
			"dev-sda.device"} {
			_, err := call(unit)
			modtest.WantCode(t, err, gofunc.CodeBadArgs)
		}
		for _, unit := range []string{"systemd-reboot.service", "systemd-poweroff", "systemd-halt.service",
			"systemd-kexec.service", "systemd-soft-reboot", "systemd-suspend.service", "systemd-hibernate",
			"rescue", "emergency.service"} {
			_, err := call(unit)
			modtest.WantCode(t, err, gofunc.CodeDenied)
		}
		if runs := log.Runs(); runs != nil {
			t.Fatalf("%s: systemctl ran for a refused unit: %q", verb, runs)
		}
	}
	for name, want := range map[string]string{
		"nginx": "nginx.service", "nginx.service": "nginx.service", "getty@tty1": "getty@tty1.service",
		"dbus-org.freedesktop.login1": "dbus-org.freedesktop.login1.service", "a:b": "a:b.service",
	} {
		if got, err := ServiceUnit(name); got != want || err != nil {
			t.Errorf("ServiceUnit(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	// A 255-byte name is a valid unit name, but with ".service" added it
	// is no longer one.
	_, err := ServiceUnit(strings.Repeat("a", 250))
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	// Reading a unit's state is harmless: status takes any unit.
	if _, err := m.Status(ctx, "reboot.target"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Status(reboot.target) = %v, want the fake's not-found", err)
	}
}

func TestMissingSystemctl(t *testing.T) {
	m, _ := fakeSystemctl(t)
	m.Systemctl = "/nonexistent/systemctl"
	_, err := m.List(t.Context())
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

func TestParseErrors(t *testing.T) {
	if _, err := ParseListUnits([]byte("not json")); !errors.Is(err, gofunc.Errorf(gofunc.CodeModule, "")) {
		t.Errorf("ParseListUnits = %v", err)
	}
	if _, err := ParseShow([]byte("no equals sign\n")); err == nil {
		t.Error("ParseShow accepted a line without '='")
	}
	props, err := ParseShow([]byte("Environment=A=1 B=2\r\nEmpty=\n\n"))
	if err != nil || props["Environment"] != "A=1 B=2" || props["Empty"] != "" {
		t.Errorf("ParseShow = %q, %v", props, err)
	}
}

func FuzzParseShow(f *testing.F) {
	f.Add([]byte(showNginx))
	f.Add([]byte("A=\nB==\n=x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		props, err := ParseShow(data)
		if err != nil {
			return
		}
		for k := range props {
			if k == "" || strings.ContainsAny(k, "=\n") {
				t.Fatalf("bad key %q", k)
			}
		}
		_ = statusFrom(props)
	})
}

func FuzzParseListUnits(f *testing.F) {
	f.Add([]byte(listUnitsJSON))
	f.Add([]byte(listUnitFilesJSON))
	f.Add([]byte(`[{"unit":""}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		units, err := ParseListUnits(data)
		if err == nil {
			for _, u := range units {
				if u.Name == "" {
					t.Fatal("unit without a name")
				}
			}
		}
		files, err := ParseUnitFiles(data)
		if err == nil {
			inv := inventoryOf(files)
			if !slices.IsSortedFunc(inv, func(a, b InventoryEntry) int { return strings.Compare(a.Name, b.Name) }) {
				t.Fatalf("inventory not sorted: %+v", inv)
			}
		}
	})
}
