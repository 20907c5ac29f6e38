package filetracker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc/internal/modtest"
)

// A local user who owns a directory inside a tracked, allowed tree keeps
// swapping it with a symbolic link to a directory elsewhere while
// filetracker scans. The scan listed and hashed the directory elsewhere
// through the swapped-in link (its names, sizes, owners and SHA-256s
// ended up in the snapshot). Now a scan descends only through the
// directories it opened without following a link: it records the link
// as a link, or the user's own files, never what is elsewhere.
func TestScanDirectoryRace(t *testing.T) {
	allowed, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	write(t, filepath.Join(outside, "shadow"), "root:$6$secret", 0o600)
	sub, spare := filepath.Join(allowed, "user"), filepath.Join(allowed, "spare")
	write(t, filepath.Join(sub, "file"), "mine", 0o644)
	if err := os.Symlink(outside, spare); err != nil {
		t.Fatal(err)
	}
	m := newModule(t)
	m.AllowDirs = []string{allowed}
	if err := m.Track(t.Context(), allowed); err != nil {
		t.Fatal(err)
	}
	stop := modtest.Exchange(t, sub, spare)
	var leaked string
	n := modtest.Repeat(20000, 3*time.Second, func() bool {
		inv, err := m.Inventory(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range inv.Files {
			if strings.HasSuffix(f.Path, "/shadow") || f.SHA256 == sum("root:$6$secret") {
				leaked = f.Path + " " + f.SHA256
			}
		}
		return leaked == ""
	})
	swaps := stop()
	if leaked != "" {
		t.Fatalf("after %d scans and %d swaps filetracker recorded a file outside the allowed directory: %s", n, swaps, leaked)
	}
	t.Logf("%d scans, %d swaps; nothing outside was recorded", n, swaps)
}
