package copyfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gofunc/gofunc/internal/modtest"
)

// The review's case (issue 11, item 8): a local user who owns a
// directory inside the allow-list keeps swapping the target between a
// regular file and a symbolic link to a 0600 file elsewhere, while
// copyfile writes the same content with another mode. copyfile changed
// the mode of the file elsewhere (os.Chmod follows the link) within a
// second; now the mode is changed through the descriptor of the file it
// checked, so the file elsewhere keeps its mode, however long this runs.
func TestCopyfileModeRace(t *testing.T) {
	m, dir := newModule(t)
	outside := filepath.Join(t.TempDir(), "shadow")
	content := []byte("same content\n")
	if err := os.WriteFile(outside, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "user")
	if err := os.Mkdir(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	target, spare := filepath.Join(sub, "file"), filepath.Join(sub, "spare")
	if err := os.WriteFile(target, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, spare); err != nil {
		t.Fatal(err)
	}
	stop := modtest.Exchange(t, target, spare)
	modes := []any{"0644", "0640"} // always a change, so the chmod path always runs
	outsideMode := func() os.FileMode {
		fi, err := os.Stat(outside)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	var changed int
	n := modtest.Repeat(20000, 3*time.Second, func() bool {
		res, err := m.Copyfile(t.Context(), target, content, Options{Mode: modes[changed%2]})
		if err == nil && res.Changed {
			changed++
		}
		return outsideMode() == 0o600
	})
	swaps := stop()
	if mode := outsideMode(); mode != 0o600 {
		t.Fatalf("after %d calls and %d swaps the file outside the allowed directory has mode %04o, want 0600", n, swaps, mode)
	}
	t.Logf("%d calls (%d changed the mode), %d swaps; the file outside kept mode 0600", n, changed, swaps)
	noTemps(t, sub)
}
