package getfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc/internal/modtest"
)

// A local user who owns a directory inside the allow-list keeps
// swapping it with a symbolic link to a directory elsewhere, while
// getfile reads a file below it. getfile checked the path, then opened
// it again by name, following the swapped-in link: it read the file
// elsewhere. Now the path it checked is opened without following any
// link, so it reads the allowed file or fails, never the other.
func TestReadDirectoryRace(t *testing.T) {
	m, dir, _ := setup(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("TOPSECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub, spare := filepath.Join(dir, "user"), filepath.Join(dir, "spare")
	if err := os.Mkdir(sub, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "secret"), []byte("public"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, spare); err != nil {
		t.Fatal(err)
	}
	stop := modtest.Exchange(t, sub, spare)
	path := filepath.Join(sub, "secret")
	var leaked string
	var reads, stats int
	n := modtest.Repeat(20000, 3*time.Second, func() bool {
		if c, err := m.Read(t.Context(), path, 0, 0); err == nil {
			reads++
			if string(c.Data) != "public" {
				leaked = "read " + string(c.Data)
			}
		}
		if st, err := m.Stat(t.Context(), path); err == nil {
			stats++
			if st.SHA256 != hexSum([]byte("public")) || strings.HasPrefix(st.Path, outside) {
				leaked = "stat " + st.Path + " " + st.SHA256
			}
		}
		return leaked == ""
	})
	swaps := stop()
	if leaked != "" {
		t.Fatalf("after %d calls and %d swaps getfile leaked the file outside the allowed directory: %s", n, swaps, leaked)
	}
	t.Logf("%d calls (%d reads, %d stats succeeded), %d swaps; nothing outside was read", n, reads, stats, swaps)
}
