package disk

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestUsageReal(t *testing.T) {
	usages, err := (&Module{}).Usage(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var root *Usage
	for i, u := range usages {
		if pseudoFstypes[u.Fstype] || u.Total <= 0 {
			t.Errorf("pseudo or empty filesystem reported by default: %+v", u)
		}
		if u.Used < 0 || u.Free < 0 || u.Free > u.Total || u.UsedPercent < 0 || u.UsedPercent > 100 {
			t.Errorf("inconsistent usage: %+v", u)
		}
		if u.Mountpoint == "/" {
			root = &usages[i]
		}
	}
	if root == nil {
		t.Fatalf("Usage() has no / : %+v", usages)
	}
	all, err := (&Module{IncludePseudo: true}).Usage(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !hasFstype(all, "proc") {
		t.Errorf("IncludePseudo: no proc in %+v", all)
	}
	inv, err := (&Module{}).Inventory(t.Context())
	if err != nil || len(inv) != len(usages) {
		t.Errorf("Inventory() = %d filesystems, %v; Usage had %d", len(inv), err, len(usages))
	}
}

// The reviewer's case: free space, used inodes and percentages move
// while nothing is configured; the inventory must not.
func TestInventoryStable(t *testing.T) {
	// Other packages' tests mount tmpfs under $TMPDIR meanwhile: real
	// changes, but not this test's.
	ignoreTemp := cmpopts.IgnoreSliceElements(func(f Filesystem) bool {
		return strings.HasPrefix(f.Mountpoint, os.TempDir()+"/")
	})
	inv := modtest.CheckStable(t, (&Module{}).Inventory, ignoreTemp)
	if !slices.IsSortedFunc(inv, func(a, b Filesystem) int { return strings.Compare(a.Mountpoint, b.Mountpoint) }) {
		t.Errorf("Inventory is not sorted by mountpoint: %+v", inv)
	}
	if !slices.ContainsFunc(inv, func(f Filesystem) bool { return f.Mountpoint == "/" && f.Total > 0 && f.Fstype != "" }) {
		t.Errorf("Inventory has no / with a type and size: %+v", inv)
	}
}

// A fixture table: the inventory is sorted by mountpoint and a zfs
// dataset, whose statfs size moves with its pool, has no size.
func TestInventoryFixture(t *testing.T) {
	dir := t.TempDir()
	b, a := filepath.Join(dir, "b"), filepath.Join(dir, "a")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	table := filepath.Join(dir, "mountinfo")
	content := "1 0 8:1 / " + b + " rw - ext4 /dev/sda1 rw\n" +
		"2 1 0:5 / " + a + " rw - zfs tank/home rw\n"
	if err := os.WriteFile(table, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	inv, err := (&Module{MountInfo: table}).Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 2 || inv[0].Mountpoint != a || inv[0].Total != 0 || inv[0].Fstype != "zfs" ||
		inv[1].Mountpoint != b || inv[1].Total <= 0 || inv[1].Device != "/dev/sda1" {
		t.Errorf("Inventory = %+v; want %s (zfs, no size) then %s (ext4, sized)", inv, a, b)
	}
}

func hasFstype(us []Usage, fstype string) bool {
	for _, u := range us {
		if u.Fstype == fstype {
			return true
		}
	}
	return false
}

func TestUsageOfPath(t *testing.T) {
	dir := t.TempDir()
	usages, err := (&Module{}).Usage(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(usages) != 1 || !within(dir, usages[0].Mountpoint) || usages[0].Total <= 0 {
		t.Errorf("Usage(%s) = %+v, want the one filesystem holding it", dir, usages)
	}
}

// A fixture mount table pointing at real directories: the stacked mount
// on one mountpoint reports the visible (last) one, proc is skipped.
func TestUsageFixtureTable(t *testing.T) {
	dir := t.TempDir()
	table := filepath.Join(dir, "mountinfo")
	content := "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"2 1 0:5 / " + dir + " rw - tmpfs first rw\n" +
		"3 1 0:6 / " + dir + " rw - tmpfs second rw\n" +
		"4 1 0:7 / /proc rw - proc proc rw\n"
	if err := os.WriteFile(table, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Module{MountInfo: table}
	usages, err := m.Usage(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var devices []string
	for _, u := range usages {
		devices = append(devices, u.Device)
	}
	if got := strings.Join(devices, ","); got != "/dev/sda1,second" {
		t.Errorf("devices = %s, want /dev/sda1,second", got)
	}
	sub := filepath.Join(dir, "a")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	one, err := m.Usage(t.Context(), sub)
	if err != nil || len(one) != 1 || one[0].Device != "second" {
		t.Errorf("Usage(%s) = %+v, %v; want the mount on %s", sub, one, err, dir)
	}
}

func TestUsageHostile(t *testing.T) {
	tests := map[string]error{
		"../../etc/shadow":               gofunc.ErrBadArgs,
		"; rm -rf /":                     gofunc.ErrBadArgs,
		"/etc\x00/shadow":                gofunc.ErrBadArgs,
		"/" + strings.Repeat("a", 10000): gofunc.ErrBadArgs,
		"/no/such/dir/anywhere":          gofunc.ErrNotFound,
	}
	for path, want := range tests {
		if _, err := (&Module{}).Usage(t.Context(), path); !errors.Is(err, want) {
			t.Errorf("Usage(%.40q) = %v, want %v", path, err, want)
		}
	}
}

func TestUsageCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (&Module{}).Usage(ctx, ""); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Usage(canceled) = %v, want CodeCanceled", err)
	}
}

func TestWireConversions(t *testing.T) {
	if Int64(math.MaxUint64) != math.MaxInt64 || Int64(42) != 42 {
		t.Error("Int64 does not clamp")
	}
	if Finite(math.NaN()) != 0 || Finite(math.Inf(1)) != 0 || Finite(12.3456) != 12.35 {
		t.Error("Finite does not sanitize")
	}
}

func BenchmarkUsage(b *testing.B) {
	m := &Module{}
	for b.Loop() {
		if _, err := m.Usage(context.Background(), ""); err != nil {
			b.Fatal(err)
		}
	}
}
