//go:build linux

package events

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tinyDisk mounts a 256 KiB tmpfs for the test, or skips (fails under
// CI=true) where mounting is not allowed.
func tinyDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs (CI runs as root): %v", err)
		}
		t.Skipf("SKIPPED: cannot mount a tmpfs to fill (needs root): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// TestFullDisk: an event that does not fit is refused with ErrWrite and
// leaves no torn line; the journal goes on once there is room again.
func TestFullDisk(t *testing.T) {
	disk := tinyDisk(t)
	filler := filepath.Join(disk, "filler")
	j, err := Open(filepath.Join(disk, "events"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	big := &NagiosState{State: "OK", Output: strings.Repeat("x", 8<<10)}
	for range 2 {
		if _, err := j.Emit("big", big); err != nil {
			t.Fatal(err)
		}
	}
	// Fill the disk, then free a page and a half: the next event's write
	// gets part of the way (a partial write the journal must take back).
	f, _ := os.Create(filler)
	for {
		if _, err := f.Write(make([]byte, 512)); err != nil {
			break
		}
	}
	fi, _ := f.Stat()
	f.Truncate(fi.Size() - 6<<10)
	f.Close()
	written := 2
	for ; written < 100; written++ {
		if _, err = j.Emit("big", big); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrWrite) {
		t.Fatalf("Emit on a full disk = %v, want ErrWrite", err)
	}
	head := j.Stats().Head
	if head != uint64(written) {
		t.Fatalf("head %d after %d events written", head, written)
	}
	os.Remove(filler)
	e, err := j.Emit("big", big)
	if err != nil || e.Seq != head+1 {
		t.Fatalf("Emit after freeing space = %+v, %v", e, err)
	}
	j.Close()

	// Every line on disk is whole: reopening finds no torn tail and no
	// damage, and the chain reads from 1 to head+1.
	j2, err := Open(filepath.Join(disk, "events"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	evs, notices := all(t, j2, NewTracker(nil), "m")
	if len(notices) != 0 || len(evs) != int(head+1) || evs[len(evs)-1].Type != TypeNagiosState {
		t.Fatalf("after reopening: %d events (want %d), notices %v", len(evs), head+1, notices)
	}
}
