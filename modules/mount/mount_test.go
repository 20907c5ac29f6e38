package mount

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestListReal(t *testing.T) {
	mounts, err := (&Module{}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range mounts {
		found = found || (m.Mountpoint == "/proc" && m.Fstype == "proc")
	}
	if !found {
		t.Errorf("List() has no /proc: %+v", mounts)
	}
	inv, err := (&Module{}).Inventory(t.Context())
	if err != nil || len(inv) != len(mounts) {
		t.Errorf("Inventory() = %d mounts, %v; List had %d", len(inv), err, len(mounts))
	}
}

// The reviewer's case: two inventories around some activity are equal.
func TestInventoryStable(t *testing.T) {
	// Other packages' tests may mount under $TMPDIR meanwhile (and this
	// package's TestRealTmpfs does, though not concurrently): real
	// changes, but not this test's.
	ignoreTemp := cmpopts.IgnoreSliceElements(func(e InventoryEntry) bool {
		return strings.HasPrefix(e.Mountpoint, os.TempDir()+"/")
	})
	inv := modtest.CheckStable(t, (&Module{}).Inventory, ignoreTemp)
	if !slices.ContainsFunc(inv, func(e InventoryEntry) bool { return e.Mountpoint == "/proc" && e.Fstype == "proc" }) {
		t.Errorf("Inventory() has no /proc: %+v", inv)
	}
	if !slices.IsSortedFunc(inv, func(a, b InventoryEntry) int { return strings.Compare(a.Mountpoint, b.Mountpoint) }) {
		t.Errorf("Inventory() is not sorted by mountpoint: %+v", inv)
	}
}

// The same mounts, mounted again in another order with new ids, device
// numbers and peer groups, give the same inventory.
func TestInventoryIgnoresKernelNumbers(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) *Module {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return &Module{MountInfo: p}
	}
	first := write("first", "21 1 0:19 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,size=1024k\n"+
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"+
		"23 22 0:40 / /srv rw master:7 - tmpfs first rw\n"+
		"24 22 0:41 / /srv rw - tmpfs second rw\n")
	second := write("second", "30 1 8:1 / / rw,relatime shared:2 - ext4 /dev/sda1 rw\n"+
		"31 30 0:52 / /srv rw master:9 - tmpfs first rw\n"+
		"35 30 0:26 / /run rw,nosuid shared:12 - tmpfs tmpfs rw,size=1024k\n"+
		"36 30 0:53 / /srv rw - tmpfs second rw\n")
	a, err := first.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := second.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("Inventory differs with kernel numbers alone (-first +second):\n%s", diff)
	}
	want := []InventoryEntry{
		{Mountpoint: "/", Root: "/", Device: "/dev/sda1", Fstype: "ext4", Options: "rw,relatime", SuperOptions: "rw", Propagation: []string{"shared"}},
		{Mountpoint: "/run", Root: "/", Device: "tmpfs", Fstype: "tmpfs", Options: "rw,nosuid", SuperOptions: "rw,size=1024k", Propagation: []string{"shared"}},
		{Mountpoint: "/srv", Root: "/", Device: "first", Fstype: "tmpfs", Options: "rw", SuperOptions: "rw", Propagation: []string{"master"}},
		{Mountpoint: "/srv", Root: "/", Device: "second", Fstype: "tmpfs", Options: "rw", SuperOptions: "rw", Propagation: []string{}},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Errorf("Inventory (-want +got):\n%s", diff)
	}
}

func TestListMissingTable(t *testing.T) {
	_, err := (&Module{MountInfo: filepath.Join(t.TempDir(), "nope")}).List(t.Context())
	if !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("List(missing file) = %v, want CodeUnavailable", err)
	}
}

func TestMountArgv(t *testing.T) {
	mnt := t.TempDir()
	bin, argv := modtest.FakeTool(t, "mount", "", 0)
	m := &Module{MountPath: bin}
	tests := []struct {
		device, fstype, options string
		want                    []string
	}{
		{"/dev/sdb1", "ext4", "ro,noatime", []string{bin, "-t", "ext4", "-o", "ro,noatime", "--", "/dev/sdb1", mnt}},
		{"server:/export", "", "", []string{bin, "--", "server:/export", mnt}},
		{"my disk", "fuse.sshfs", `context="system_u:object_r:tmp_t:s0"`,
			[]string{bin, "-t", "fuse.sshfs", "-o", `context="system_u:object_r:tmp_t:s0"`, "--", "my disk", mnt}},
	}
	for _, tt := range tests {
		if err := m.Mount(t.Context(), tt.device, mnt+"/", tt.fstype, tt.options); err != nil {
			t.Fatalf("Mount(%q) = %v", tt.device, err)
		}
		if diff := cmp.Diff(tt.want, argv.Last()); diff != "" {
			t.Errorf("Mount(%q) argv (-want +got):\n%s", tt.device, diff)
		}
	}
}

// TestMountPinnedArgv: with allowed directories, mount(8) gets the
// checked directory as an inherited handle, /proc/self/fd/3, and is told
// not to resolve paths itself.
func TestMountPinnedArgv(t *testing.T) {
	allowed := t.TempDir()
	mnt := filepath.Join(allowed, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	bin, argv := modtest.FakeBinary(t, "mount", `readlink /proc/self/fd/3 > "$dir/.fd3"`)
	m := &Module{MountPath: bin, AllowDirs: []string{allowed}}
	if err := m.Mount(t.Context(), "/dev/sdb1", mnt, "ext4", "ro"); err != nil {
		t.Fatal(err)
	}
	checkPinnedRun(t, bin, argv, mnt,
		[]string{bin, "--no-canonicalize", "-t", "ext4", "-o", "ro", "--", "/dev/sdb1", "/proc/self/fd/3"})
}

// checkPinnedRun checks the fake tool bin's last argv and that its fd 3
// (which it wrote to .fd3) was the directory held.
func checkPinnedRun(t *testing.T, bin string, argv *modtest.ArgvLog, held string, want []string) {
	t.Helper()
	if diff := cmp.Diff(want, argv.Last()); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	fd3, err := os.ReadFile(filepath.Join(filepath.Dir(bin), ".fd3"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(fd3)); got != held {
		t.Errorf("the tool's fd 3 is %q, want %q", got, held)
	}
}

// TestMountRaceStaysInside plays the local attacker who can write an
// allowed directory: the mountpoint and a symbolic link to a directory
// outside the allow-list are swapped over and over while Mount runs a
// real mount(8). Every mount must land inside the allowed directory.
// Needs root (CAP_SYS_ADMIN) and renameat2.
func TestMountRaceStaysInside(t *testing.T) {
	if _, err := os.Stat(DefaultMountPath); err != nil || os.Geteuid() != 0 {
		t.Skipf("needs root and %s", DefaultMountPath)
	}
	base := t.TempDir()
	allowed, outside := filepath.Join(base, "allowed"), filepath.Join(base, "outside")
	mnt, link := filepath.Join(allowed, "mnt"), filepath.Join(allowed, "link")
	for _, d := range []string{allowed, outside, mnt} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	m := &Module{AllowDirs: []string{allowed}}
	const device = "gofunc-race"
	t.Cleanup(func() { unmountAll(t, m, device) })
	stop := modtest.Exchange(t, mnt, link)
	var mounted, refused int
	modtest.Repeat(100, 10*time.Second, func() bool {
		if err := m.Mount(t.Context(), device, mnt, "tmpfs", "size=64k"); err == nil {
			mounted++
		} else if errors.Is(err, gofunc.ErrDenied) || errors.Is(err, gofunc.ErrBadArgs) || errors.Is(err, gofunc.ErrNotFound) {
			refused++
		} else {
			t.Fatalf("Mount: %v", err)
		}
		mounts, err := m.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range mounts {
			if mt.Device == device && !strings.HasPrefix(mt.Mountpoint, allowed+"/") {
				t.Errorf("a mount landed outside the allowed directory: %s", mt.Mountpoint)
				return false
			}
		}
		return true
	})
	swaps := stop()
	t.Logf("%d mounted, %d refused, %d swaps", mounted, refused, swaps)
	// Most attempts are refused (the attacker swaps far faster than a
	// mount runs); TestRealTmpfs is the one that must mount.
	if swaps == 0 || mounted+refused == 0 {
		t.Errorf("the race was not run: %d attempts, %d swaps", mounted+refused, swaps)
	}
}

// TestUmountRaceStaysInside: the attacker swaps the directory above
// an allowed mountpoint with a link to a directory outside, where
// another filesystem is mounted at the same relative path, while
// Umount runs a real umount(8). The outside filesystem must stay.
// Needs root (CAP_SYS_ADMIN) and renameat2.
func TestUmountRaceStaysInside(t *testing.T) {
	if _, err := os.Stat(DefaultUmountPath); err != nil || os.Geteuid() != 0 {
		t.Skipf("needs root and %s", DefaultUmountPath)
	}
	base := t.TempDir()
	allowed, outside := filepath.Join(base, "allowed"), filepath.Join(base, "outside")
	dir, link := filepath.Join(allowed, "dir"), filepath.Join(allowed, "link")
	for _, d := range []string{allowed, outside, dir, filepath.Join(dir, "mnt"), filepath.Join(outside, "mnt")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, link); err != nil {
		t.Fatal(err)
	}
	m := &Module{AllowDirs: []string{allowed}}
	const inside, victim = "gofunc-urace", "gofunc-victim"
	t.Cleanup(func() { unmountAll(t, m, inside); unmountAll(t, m, victim) })
	if err := unix.Mount(victim, filepath.Join(outside, "mnt"), "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount here: %v", err)
	}
	const stacked = 20
	for range stacked {
		if err := unix.Mount(inside, filepath.Join(dir, "mnt"), "tmpfs", 0, "size=64k"); err != nil {
			t.Fatal(err)
		}
	}
	stop := modtest.Exchange(t, dir, link)
	var unmounted, refused int
	modtest.Repeat(100, 10*time.Second, func() bool {
		if err := m.Umount(t.Context(), filepath.Join(dir, "mnt"), UmountOptions{}); err == nil {
			unmounted++
		} else if f := (*gofunc.Fault)(nil); errors.Is(err, gofunc.ErrDenied) || errors.Is(err, gofunc.ErrNotFound) ||
			(errors.As(err, &f) && f.Code == gofunc.CodeModule) {
			refused++ // umount(8) may find the name moved: "not mounted"
		} else {
			t.Fatalf("Umount: %v", err)
		}
		return countMounts(t, m, victim) == 1
	})
	swaps := stop()
	t.Logf("%d unmounted, %d refused, %d swaps", unmounted, refused, swaps)
	if n := countMounts(t, m, victim); n != 1 {
		t.Errorf("the filesystem outside the allowed directory was unmounted (%d left)", n)
	}
	if swaps == 0 || unmounted+refused == 0 {
		t.Errorf("the race was not run: %d attempts, %d swaps", unmounted+refused, swaps)
	}
}

func countMounts(t *testing.T, m *Module, device string) int {
	mounts, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mt := range mounts {
		if mt.Device == device {
			n++
		}
	}
	return n
}

// unmountAll detaches every mount of device (the race test's), however
// deep they are stacked.
func unmountAll(t *testing.T, m *Module, device string) {
	for range 1000 {
		mounts, err := m.List(context.Background())
		if err != nil {
			t.Error(err)
			return
		}
		left := 0
		for _, mt := range mounts {
			if mt.Device == device {
				left++
				_ = unix.Unmount(mt.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			}
		}
		if left == 0 {
			return
		}
	}
	t.Errorf("mounts of %s are left", device)
}

func TestMountToolFailure(t *testing.T) {
	bin, _ := modtest.FakeTool(t, "mount", "mount: /x: special device /dev/nope does not exist.", 32)
	err := (&Module{MountPath: bin}).Mount(t.Context(), "/dev/nope", t.TempDir(), "", "")
	var f *gofunc.Fault
	if !errors.As(err, &f) || f.Code != gofunc.CodeModule || !strings.Contains(f.Message, "does not exist") ||
		!strings.Contains(f.Message, "32") {
		t.Errorf("Mount with failing tool = %v, want CodeModule quoting the tool", err)
	}
}

// TestUmountPinnedArgv: with allowed directories, umount(8) gets the
// mountpoint through its parent, held open as fd 3, and is told not to
// resolve paths itself.
func TestUmountPinnedArgv(t *testing.T) {
	allowed := t.TempDir()
	mnt := filepath.Join(allowed, "data")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(table, []byte("40 27 8:1 / "+mnt+" rw - ext4 /dev/sda1 rw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, argv := modtest.FakeBinary(t, "umount", `readlink /proc/self/fd/3 > "$dir/.fd3"`)
	m := &Module{MountInfo: table, UmountPath: bin, AllowDirs: []string{allowed}}
	if err := m.Umount(t.Context(), mnt, UmountOptions{Lazy: true}); err != nil {
		t.Fatal(err)
	}
	checkPinnedRun(t, bin, argv, allowed, []string{bin, "--no-canonicalize", "-l", "--", "/proc/self/fd/3/data"})
}

func TestUmountArgv(t *testing.T) {
	// The fake mount table says /srv/data is mounted; umount is a fake.
	table := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(table, []byte("40 27 8:1 / /srv/data rw - ext4 /dev/sda1 rw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin, argv := modtest.FakeTool(t, "umount", "", 0)
	m := &Module{MountInfo: table, UmountPath: bin}
	if err := m.Umount(t.Context(), "/srv/data/", UmountOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bin, "--", "/srv/data"}, argv.Last()); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if err := m.Umount(t.Context(), "/srv/data", UmountOptions{Lazy: true, Force: true}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bin, "-l", "-f", "--", "/srv/data"}, argv.Last()); diff != "" {
		t.Errorf("argv (-want +got):\n%s", diff)
	}
	if err := m.Umount(t.Context(), "/srv/other", UmountOptions{}); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Umount(not mounted) = %v, want CodeNotFound", err)
	}
}

func TestHostileArguments(t *testing.T) {
	bin, argv := modtest.FakeTool(t, "mount", "", 0)
	allowed := t.TempDir()
	m := &Module{MountPath: bin, UmountPath: bin, AllowDirs: []string{allowed}}
	mnt := filepath.Join(allowed, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mnt, filepath.Join(allowed, "inside")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(allowed, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                                string
		device, mountpoint, fstype, options string
		want                                error
	}{
		{"device option", "-rf", mnt, "", "", gofunc.ErrBadArgs},
		{"device NUL", "/dev/sda\x001", mnt, "", "", gofunc.ErrBadArgs},
		{"device newline", "/dev/sda1\n", mnt, "", "", gofunc.ErrBadArgs},
		{"empty device", "", mnt, "", "", gofunc.ErrBadArgs},
		{"fstype injection", "/dev/sdb1", mnt, "ext4; reboot", "", gofunc.ErrBadArgs},
		{"fstype option", "/dev/sdb1", mnt, "-o", "", gofunc.ErrBadArgs},
		{"options shell", "/dev/sdb1", mnt, "", "ro; rm -rf /", gofunc.ErrBadArgs},
		{"options option", "/dev/sdb1", mnt, "", "--bind", gofunc.ErrBadArgs},
		{"options empty item", "/dev/sdb1", mnt, "", "ro,,exec", gofunc.ErrBadArgs},
		{"relative mountpoint", "/dev/sdb1", "../../etc/shadow", "", "", gofunc.ErrBadArgs},
		{"root mountpoint", "/dev/sdb1", "/", "", "", gofunc.ErrBadArgs},
		{"huge mountpoint", "/dev/sdb1", "/" + strings.Repeat("a", 10000), "", "", gofunc.ErrBadArgs},
		{"dotdot outside allow-list", "/dev/sdb1", allowed + "/../../etc", "", "", gofunc.ErrDenied},
		{"symlink outside allow-list", "/dev/sdb1", filepath.Join(allowed, "escape", "x"), "", "", gofunc.ErrDenied},
		{"missing mountpoint", "/dev/sdb1", filepath.Join(allowed, "nope"), "", "", gofunc.ErrNotFound},
		{"mountpoint a symlink out of the allow-list", "/dev/sdb1", filepath.Join(allowed, "escape"), "", "", gofunc.ErrDenied},
		{"mountpoint a symlink within the allow-list", "/dev/sdb1", filepath.Join(allowed, "inside"), "", "", gofunc.ErrDenied},
		{"mountpoint a file", "/dev/sdb1", filepath.Join(allowed, "file"), "", "", gofunc.ErrBadArgs},
		{"missing parent outside allow-list", "/dev/sdb1", filepath.Join(allowed, "escape", "nope", "x"), "", "", gofunc.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := m.Mount(t.Context(), tt.device, tt.mountpoint, tt.fstype, tt.options)
			if !errors.Is(err, tt.want) {
				t.Errorf("Mount(%q, %q, %q, %q) = %v, want %v", tt.device, tt.mountpoint, tt.fstype, tt.options, err, tt.want)
			}
		})
	}
	if err := m.Umount(t.Context(), "/etc", UmountOptions{}); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("Umount(/etc) outside the allow-list = %v, want CodeDenied", err)
	}
	misconfigured := &Module{MountPath: bin, AllowDirs: []string{"relative/dir"}}
	if err := misconfigured.Mount(t.Context(), "/dev/sdb1", mnt, "", ""); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("Mount with a relative AllowDirs = %v, want CodeUnavailable", err)
	}
	if got := argv.Last(); got != nil {
		t.Errorf("a refused call ran the tool: %q", got)
	}
}

func TestMountHonoursContext(t *testing.T) {
	// A "mount" that hangs, with a child that would hang too.
	bin, _ := modtest.FakeBinary(t, "mount", "sleep 60 &\nsleep 60")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := (&Module{MountPath: bin}).Mount(ctx, "tmpfs", t.TempDir(), "tmpfs", "")
	if !errors.Is(err, gofunc.ErrTimeout) {
		t.Errorf("Mount with a hanging tool = %v, want CodeTimeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Mount returned after %v", d)
	}
}

// TestRealTmpfs mounts a tmpfs inside a temporary directory and unmounts it,
// when this process may mount (root with CAP_SYS_ADMIN).
func TestRealTmpfs(t *testing.T) {
	if _, err := os.Stat(DefaultMountPath); err != nil {
		t.Skipf("no %s", DefaultMountPath)
	}
	base := t.TempDir()
	mnt := filepath.Join(base, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	m := &Module{AllowDirs: []string{base}}
	if err := m.Mount(t.Context(), "gofunc-test", mnt, "tmpfs", "size=1m,mode=0700"); err != nil {
		if os.Geteuid() != 0 || strings.Contains(err.Error(), "permission denied") ||
			strings.Contains(err.Error(), "must be superuser") || strings.Contains(err.Error(), "not permitted") {
			t.Skipf("cannot mount here: %v", err)
		}
		t.Fatal(err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = m.Umount(context.Background(), mnt, UmountOptions{Lazy: true})
		}
	})
	mounts, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got *Mount
	for i := range mounts {
		if mounts[i].Mountpoint == mnt {
			got = &mounts[i]
		}
	}
	if got == nil || got.Fstype != "tmpfs" || got.Device != "gofunc-test" || !strings.Contains(got.SuperOptions, "size=1024k") {
		t.Fatalf("after Mount, List has %+v for %s", got, mnt)
	}
	if err := m.Umount(t.Context(), mnt, UmountOptions{}); err != nil {
		t.Fatal(err)
	}
	mounted = false
	mounts, err = m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if isMounted(mounts, mnt) {
		t.Errorf("%s still mounted after Umount", mnt)
	}
}
