package modtest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestExchangeAndRepeat(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := os.WriteFile(a, []byte("file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", b); err != nil {
		t.Fatal(err)
	}
	stop := Exchange(t, a, b)
	sawLink, sawFile := false, false
	n := Repeat(1_000_000, 20*time.Second, func() bool {
		if fi, err := os.Lstat(a); err == nil {
			sawLink = sawLink || fi.Mode()&os.ModeSymlink != 0
			sawFile = sawFile || fi.Mode().IsRegular()
		}
		return !(sawLink && sawFile)
	})
	if swaps := stop(); swaps == 0 || !sawLink || !sawFile {
		t.Errorf("after %d looks and %d swaps: saw the link %v, the file %v", n, swaps, sawLink, sawFile)
	}
	if stop() < 0 {
		t.Error("a second stop misbehaved")
	}
	if got := Repeat(5, time.Hour, func() bool { return true }); got != 5 {
		t.Errorf("Repeat ran %d times, want 5", got)
	}
}
