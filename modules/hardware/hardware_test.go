package hardware

import (
	"bufio"
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
	"github.com/gofunc/gofunc/modules/disk"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) {
	modtest.CheckDoc(t, &Module{})
	modtest.CheckDoc(t, &Facts{})
}

func TestInfoReal(t *testing.T) {
	info, err := (&Module{}).Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Warnings) > 0 {
		t.Logf("warnings: %q", info.Warnings)
	}
	checkWire(t, "Info", reflect.ValueOf(info))
	hostname, _ := os.Hostname()
	uname := unameFields(t)
	if info.Hostname != hostname {
		t.Errorf("Hostname = %q, want %q", info.Hostname, hostname)
	}
	if info.OS.System != "linux" || info.OS.Name != osReleaseID(t) || info.OS.Version == "" {
		t.Errorf("OS = %+v, want linux / %s with a version", info.OS, osReleaseID(t))
	}
	if info.OS.Kernel != uname["release"] || info.OS.Arch != uname["machine"] {
		t.Errorf("OS kernel, arch = %q, %q; uname says %q, %q", info.OS.Kernel, info.OS.Arch, uname["release"], uname["machine"])
	}
	if info.CPU.Count < runtime.NumCPU() || info.CPU.Cores < 1 || info.CPU.Cores > info.CPU.Count || info.CPU.Sockets < 1 {
		t.Errorf("CPU = %+v, NumCPU %d", info.CPU, runtime.NumCPU())
	}
	if want := memTotal(t); info.Memory.Total != want || info.Memory.Available <= 0 || info.Memory.Available > want {
		t.Errorf("Memory = %+v, /proc/meminfo MemTotal %d", info.Memory, want)
	}
	if info.BootTime.IsZero() || info.BootTime.After(time.Now()) || info.UptimeS <= 0 {
		t.Errorf("BootTime %v, UptimeS %v", info.BootTime, info.UptimeS)
	}
	if !hasLoopback(info.Interfaces) {
		t.Errorf("no lo with 127.0.0.1/8 in %+v", info.Interfaces)
	}
	root := false
	for _, fs := range info.Filesystems {
		root = root || fs.Mountpoint == "/"
	}
	if !root {
		t.Errorf("no / in Filesystems %+v", info.Filesystems)
	}
	inv, err := (&Module{}).Inventory(t.Context())
	if err != nil || inv.OS != info.OS || inv.MemoryTotal != info.Memory.Total || inv.CPU.Model != info.CPU.Model {
		t.Errorf("Inventory() = %+v, %v; Info() = %+v", inv, err, info)
	}
}

// ignoreTempMounts leaves out of a comparison the filesystems mounted
// under $TMPDIR, where other packages' tests (modules/mount's real tmpfs)
// mount and unmount while this one runs: real changes, but not ours.
var ignoreTempMounts = cmpopts.IgnoreSliceElements(func(f disk.Filesystem) bool {
	return strings.HasPrefix(f.Mountpoint, os.TempDir()+"/")
})

// The reviewer's case: a second inventory after some activity (and at
// least one second) must equal the first.
func TestInventoryStable(t *testing.T) {
	m := &Module{}
	inv := modtest.CheckStable(t, m.Inventory, ignoreTempMounts)
	checkWire(t, "Inventory", reflect.ValueOf(inv))
	if len(inv.Warnings) > 0 {
		t.Logf("warnings: %q", inv.Warnings)
	}
	if inv.OS.System != "linux" || inv.OS.Kernel != unameFields(t)["release"] || inv.CPU.Count < runtime.NumCPU() {
		t.Errorf("Inventory OS, CPU = %+v, %+v", inv.OS, inv.CPU)
	}
	if inv.MemoryTotal != memTotal(t) {
		t.Errorf("MemoryTotal = %d, want /proc/meminfo's %d", inv.MemoryTotal, memTotal(t))
	}
	if !hasLoopback(inv.Interfaces) {
		t.Errorf("no lo with 127.0.0.1/8 in %+v", inv.Interfaces)
	}
	if !slices.ContainsFunc(inv.Filesystems, func(f disk.Filesystem) bool { return f.Mountpoint == "/" && f.Total > 0 }) {
		t.Errorf("no / with a size in %+v", inv.Filesystems)
	}
	sorted := slices.IsSortedFunc(inv.Interfaces, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) }) &&
		slices.IsSortedFunc(inv.BlockDevices, func(a, b BlockDevice) int { return strings.Compare(a.Name, b.Name) }) &&
		slices.IsSortedFunc(inv.Filesystems, func(a, b disk.Filesystem) int { return strings.Compare(a.Mountpoint, b.Mountpoint) })
	for _, i := range inv.Interfaces {
		sorted = sorted && slices.IsSorted(i.Addresses)
	}
	if !sorted {
		t.Errorf("Inventory slices are not sorted: %+v", inv)
	}
}

func TestStableHostID(t *testing.T) {
	if got := stableHostID("3d1219c7-c4c5-404a-aa1f-6d2a48adfda4"); got != "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4" {
		t.Errorf("stableHostID(a machine id) = %q", got)
	}
	boot := readString(bootIDFile)
	if boot == "" {
		t.Skipf("SKIPPED: no %s", bootIDFile)
	}
	if got := stableHostID(strings.ToUpper(boot)); got != "" {
		t.Errorf("stableHostID(this boot's id) = %q, want \"\"", got)
	}
}

func hasLoopback(ifs []Interface) bool {
	for _, i := range ifs {
		if i.Name == "lo" {
			for _, a := range i.Addresses {
				if a == "127.0.0.1/8" {
					return true
				}
			}
		}
	}
	return false
}

// A fake /sys/block: one disk with two partitions, an empty loop device.
func TestBlockDevicesFixture(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sda/size", "1953525168")
	write("sda/removable", "0")
	write("sda/queue/rotational", "1")
	write("sda/device/model", "WDC WD10EZEX-00B")
	write("sda/serial", "WD-1234")
	write("sda/sda2/size", "1000")
	write("sda/sda2/partition", "2")
	write("sda/sda1/size", "2048")
	write("sda/sda1/partition", "1")
	write("sda/holders/.keep", "") // a subdirectory that is no partition
	write("loop0/size", "0")
	var w warnings
	got := blockDevices(root, &w)
	want := []BlockDevice{{
		Name: "sda", Size: 1953525168 * 512, Model: "WDC WD10EZEX-00B", Serial: "WD-1234", Rotational: true,
		Partitions: []Partition{{Name: "sda1", Size: 2048 * 512}, {Name: "sda2", Size: 1000 * 512}},
	}}
	if diff := cmp.Diff(want, got); diff != "" || len(w.list) > 0 {
		t.Errorf("blockDevices (-want +got):\n%s\nwarnings %q", diff, w.list)
	}
	info, err := (&Module{SysBlock: filepath.Join(root, "missing")}).Info(t.Context())
	if err != nil || len(info.BlockDevices) != 0 || !strings.Contains(strings.Join(info.Warnings, ";"), "block devices") {
		t.Errorf("missing SysBlock: %v, devices %+v, warnings %q; want a warning, not a failure", err, info.BlockDevices, info.Warnings)
	}
}

func TestInfoCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (&Module{}).Info(ctx); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Info(canceled) = %v, want CodeCanceled", err)
	}
	if _, err := (&Facts{}).List(ctx); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("List(canceled) = %v, want CodeCanceled", err)
	}
}

func TestFactsList(t *testing.T) {
	f := &Facts{Static: map[string]string{"datacenter": "fra1", "os": "plan9", "Bad Name": "x"}}
	facts, err := f.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("facts: %v", facts)
	for _, name := range []string{"os", "os_family", "os_version", "system", "kernel", "arch", "cpu_count",
		"cpu_cores", "memory_total", "virtualization", "hostname", "boot_time"} {
		if _, ok := facts[name]; !ok {
			t.Errorf("no fact %q", name)
		}
	}
	for name, v := range facts {
		switch v.(type) {
		case string, int, int64:
		default:
			t.Errorf("fact %s = %#v (%T): want a string or a number", name, v, v)
		}
		if !factNameRE.MatchString(name) {
			t.Errorf("fact name %q", name)
		}
	}
	if facts["os"] != osReleaseID(t) || facts["system"] != "linux" || facts["arch"] != unameFields(t)["machine"] {
		t.Errorf("os, system, arch = %v, %v, %v", facts["os"], facts["system"], facts["arch"])
	}
	if facts["datacenter"] != "fra1" {
		t.Errorf("static fact missing: %v", facts["datacenter"])
	}
	if _, ok := facts["Bad Name"]; ok {
		t.Error("a static fact with an invalid name was listed")
	}
	if facts["memory_total"] != memTotal(t) {
		t.Errorf("memory_total = %v, want %d", facts["memory_total"], memTotal(t))
	}
}

func TestFactsGet(t *testing.T) {
	f := &Facts{}
	got, err := f.Get(t.Context(), "kernel")
	if err != nil || got != unameFields(t)["release"] {
		t.Errorf("Get(kernel) = %v, %v; want %s", got, err, unameFields(t)["release"])
	}
	if _, err := f.Get(t.Context(), "no_such_fact"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Get(no_such_fact) = %v, want CodeNotFound", err)
	}
	for _, name := range []string{"", "os; reboot", "../../etc/shadow", "os\x00", "-rf", strings.Repeat("a", 100)} {
		if _, err := f.Get(t.Context(), name); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("Get(%q) = %v, want CodeBadArgs", name, err)
		}
	}
}

// checkWire fails t if v holds something XML-RPC cannot carry as is:
// unsigned integers, NaN or infinite floats, nil slices or maps.
func checkWire(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		t.Errorf("%s is unsigned (%s)", path, v.Type())
	case reflect.Float32, reflect.Float64:
		if math.IsNaN(v.Float()) || math.IsInf(v.Float(), 0) {
			t.Errorf("%s = %v", path, v.Float())
		}
	case reflect.Slice, reflect.Map:
		if v.IsNil() {
			t.Errorf("%s is nil", path)
		}
		if v.Kind() == reflect.Slice {
			for i := range v.Len() {
				checkWire(t, path+"["+strconv.Itoa(i)+"]", v.Index(i))
			}
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return
		}
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.Tag.Get("xmlrpc") == "" {
				t.Errorf("%s.%s has no xmlrpc tag", path, f.Name)
			}
			checkWire(t, path+"."+f.Name, v.Field(i))
		}
	}
}

func osReleaseID(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Skipf("no /etc/os-release: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "ID="); ok {
			return strings.Trim(id, `"`)
		}
	}
	t.Skip("no ID in /etc/os-release")
	return ""
}

func unameFields(t *testing.T) map[string]string {
	t.Helper()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	str := func(a [65]int8) string {
		var b strings.Builder
		for _, c := range a {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		return b.String()
	}
	return map[string]string{"release": str(u.Release), "machine": str(u.Machine)}
}

func memTotal(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Skip("no MemTotal")
	return 0
}

func BenchmarkInfo(b *testing.B) {
	m := &Module{}
	for b.Loop() {
		if _, err := m.Info(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFactsList(b *testing.B) {
	f := &Facts{}
	for b.Loop() {
		if _, err := f.List(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
