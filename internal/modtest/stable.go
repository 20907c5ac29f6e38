package modtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// churnMemory is what Churn allocates and touches: enough to move the
// host's used-memory figures by whole megabytes.
const churnMemory = 32 << 20

// churnDisk is what Churn writes to disk: enough to move the free space
// of the filesystem holding t.TempDir() by whole megabytes.
const churnDisk = 4 << 20

// Churn does on this host what a busy host does all day without changing
// its configuration, so that an inventory taken before and after it shows
// whether it holds live counters. It starts and reaps short processes and
// leaves one running (process counts, kernel.ns_last_pid), opens files
// and keeps them open (fs.file-nr), creates files and looks up missing
// ones (fs.dentry-state, fs.inode-nr), writes a few megabytes under
// t.TempDir() and syncs them (free disk space), touches 32 MiB of memory
// (used memory), and returns once the wall clock is in a later second
// than when it was called, so anything counted in seconds (uptime) moves
// too. Everything it holds is released by t.Cleanup.
func Churn(t testing.TB) {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	churnProcesses(t)
	churnFiles(t, dir)
	churnDiskSpace(t, dir)
	churnMemoryUse(t)
	// The one wait in these helpers: an inventory that reports seconds
	// (uptime, ages) must be seen to tick. At most one second.
	time.Sleep(time.Until(start.Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
}

// churnProcesses runs a few short processes and leaves one sleeping until
// t's cleanup.
func churnProcesses(t testing.TB) {
	t.Helper()
	for range 8 {
		if err := exec.Command("/bin/true").Run(); err != nil {
			t.Fatalf("churn: %v", err)
		}
	}
	sleeper := exec.Command("/bin/sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatalf("churn: %v", err)
	}
	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})
}

// churnFiles creates files, looks up names that do not exist (negative
// dentries) and keeps 32 descriptors open until t's cleanup.
func churnFiles(t testing.TB, dir string) {
	t.Helper()
	for i := range 200 {
		name := filepath.Join(dir, fmt.Sprintf("f%d", i))
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatalf("churn: %v", err)
		}
		_, _ = os.Stat(filepath.Join(dir, fmt.Sprintf("missing%d", i)))
	}
	for range 32 {
		f, err := os.Open(dir)
		if err != nil {
			t.Fatalf("churn: %v", err)
		}
		t.Cleanup(func() { f.Close() })
	}
}

// churnDiskSpace writes churnDisk bytes under dir and syncs them to disk;
// t.TempDir's cleanup removes them.
func churnDiskSpace(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatalf("churn: %v", err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for i := range block {
		block[i] = byte(i) // not zeros: no filesystem may compress them away
	}
	for range churnDisk / len(block) {
		if _, err := f.Write(block); err != nil {
			t.Fatalf("churn: %v", err)
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("churn: %v", err)
	}
}

// churnMemoryUse maps and touches churnMemory bytes of anonymous memory,
// unmapped at t's cleanup (outside the Go heap, so the GC cannot give it
// back early).
func churnMemoryUse(t testing.TB) {
	t.Helper()
	mem, err := syscall.Mmap(-1, 0, churnMemory, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("churn: %v", err)
	}
	for i := 0; i < len(mem); i += 4096 {
		mem[i] = 1
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
}

// CheckStable fails t unless inventory gives equal results before and
// after Churn: an inventory is a snapshot of configuration and installed
// state, and must not change when nothing was configured. opts are
// passed to cmp.Diff, for a test that must ignore what other tests on
// this host change for real at the same time (a tmpfs mounted under
// $TMPDIR). It returns the first result, for further checks.
func CheckStable[T any](t testing.TB, inventory func(context.Context) (T, error), opts ...cmp.Option) T {
	t.Helper()
	ctx := t.Context()
	before, err := inventory(ctx)
	if err != nil {
		t.Fatalf("first inventory: %v", err)
	}
	Churn(t)
	after, err := inventory(ctx)
	if err != nil {
		t.Fatalf("second inventory: %v", err)
	}
	if diff := cmp.Diff(before, after, opts...); diff != "" {
		t.Errorf("inventory changed while nothing was configured (-before +after):\n%s", diff)
	}
	return before
}
