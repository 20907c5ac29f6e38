package disk

import (
	"context"
	"errors"
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

func BenchmarkUsage(b *testing.B) {
	m := &Module{}
	for b.Loop() {
		if _, err := m.Usage(context.Background(), ""); err != nil {
			b.Fatal(err)
		}
	}
}
