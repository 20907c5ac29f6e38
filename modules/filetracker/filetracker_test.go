package filetracker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func newModule(t *testing.T) *Module {
	t.Helper()
	return &Module{StateDir: filepath.Join(t.TempDir(), "state")}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func byPath(files []FileState) map[string]FileState {
	m := map[string]FileState{}
	for _, f := range files {
		m[f.Path] = f
	}
	return m
}

func TestTrackListUntrack(t *testing.T) {
	m := newModule(t)
	ctx := t.Context()
	dir := t.TempDir()
	file := filepath.Join(dir, "a.conf")
	write(t, file, "x", 0o644)
	if err := m.Track(ctx, file); err != nil {
		t.Fatal(err)
	}
	if err := m.Track(ctx, dir+"/"); err != nil {
		t.Fatal(err)
	}
	if err := m.Track(ctx, file); err != nil { // again: no-op
		t.Fatal(err)
	}
	got, err := m.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{dir, file}, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	if err := m.Untrack(ctx, file); err != nil {
		t.Fatal(err)
	}
	if err := m.Untrack(ctx, file); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Untrack(untracked) = %v, want CodeNotFound", err)
	}
	if got, _ := m.List(ctx); !cmp.Equal(got, []string{dir}) {
		t.Errorf("after Untrack, List = %q", got)
	}
	if err := m.Untrack(ctx, dir); err != nil { // the last one: an empty list is saved
		t.Fatal(err)
	}
	if got, err := m.List(ctx); err != nil || len(got) != 0 {
		t.Errorf("after untracking everything, List = %q, %v", got, err)
	}
	if err := m.Track(ctx, filepath.Join(dir, "missing")); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Track(missing) = %v, want CodeNotFound", err)
	}
	// State files are private and nothing temporary is left behind.
	entries, err := os.ReadDir(m.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, _ := e.Info()
		if strings.HasPrefix(e.Name(), ".") || info.Mode().Perm() != 0o600 {
			t.Errorf("state dir holds %s with mode %v", e.Name(), info.Mode())
		}
	}
	if info, _ := os.Stat(m.StateDir); info.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", info.Mode().Perm())
	}
}

func TestHostilePaths(t *testing.T) {
	allowed := t.TempDir()
	outside := t.TempDir()
	write(t, filepath.Join(outside, "secret"), "s", 0o600)
	if err := os.Symlink(outside, filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	m := &Module{StateDir: filepath.Join(t.TempDir(), "state"), AllowDirs: []string{allowed}}
	tests := map[string]error{
		"":                                      gofunc.ErrBadArgs,
		"../../etc/shadow":                      gofunc.ErrBadArgs,
		"etc/passwd":                            gofunc.ErrBadArgs,
		"/etc/pass\x00wd":                       gofunc.ErrBadArgs,
		"/etc/passwd\n":                         gofunc.ErrBadArgs,
		"/" + strings.Repeat("a", 10000):        gofunc.ErrBadArgs,
		"/etc/shadow":                           gofunc.ErrDenied,
		allowed + "/../../etc/shadow":           gofunc.ErrDenied,
		filepath.Join(allowed, "escape/secret"): gofunc.ErrDenied,
		filepath.Join(allowed, "escape/no/x"):   gofunc.ErrDenied,
		filepath.Join(allowed, "no/x"):          gofunc.ErrNotFound,
	}
	for path, want := range tests {
		if err := m.Track(t.Context(), path); !errors.Is(err, want) {
			t.Errorf("Track(%.40q) = %v, want %v", path, err, want)
		}
	}
	if got, _ := m.List(t.Context()); len(got) != 0 {
		t.Errorf("refused paths were tracked: %q", got)
	}
	if err := m.Track(t.Context(), filepath.Join(allowed, "escape")); err != nil {
		t.Errorf("Track(the symlink itself, inside) = %v", err) // the link is inside; it is not followed
	}
}

func TestScanRecordsState(t *testing.T) {
	m := newModule(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "alpha", 0o640)
	write(t, filepath.Join(dir, "sub", "b"), "beta", 0o755|os.ModeSetuid)
	if err := os.Symlink("a.conf", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, "a.conf"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := m.Track(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	snap, err := m.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	files := byPath(snap.Files)
	want := FileState{Path: filepath.Join(dir, "a.conf"), Exists: true, Type: "file", SHA256: sum("alpha"), Size: 5,
		Mode: "0640", UID: int64(os.Getuid()), GID: int64(os.Getgid()), Mtime: mtime}
	if diff := cmp.Diff(want, files[want.Path]); diff != "" {
		t.Errorf("a.conf (-want +got):\n%s", diff)
	}
	if f := files[filepath.Join(dir, "sub", "b")]; f.Mode != "4755" || f.SHA256 != sum("beta") {
		t.Errorf("sub/b = %+v", f)
	}
	if f := files[filepath.Join(dir, "link")]; f.Type != "symlink" || f.Target != "a.conf" || f.SHA256 != "" {
		t.Errorf("link = %+v", f)
	}
	if f := files[filepath.Join(dir, "fifo")]; f.Type != "other" || f.SHA256 != "" {
		t.Errorf("fifo = %+v", f)
	}
	if f := files[dir]; f.Type != "dir" || !f.Exists {
		t.Errorf("the tracked dir = %+v", f)
	}
	if len(snap.Files) != 6 || snap.Truncated {
		t.Errorf("Scan recorded %d entries (truncated %v), want 6", len(snap.Files), snap.Truncated)
	}
	inv, err := m.Inventory(t.Context())
	if err != nil || !cmp.Equal(inv.Files, snap.Files) {
		t.Errorf("Inventory differs from Scan: %v", err)
	}
}

func TestDiff(t *testing.T) {
	m := newModule(t)
	ctx := t.Context()
	dir := t.TempDir()
	conf := filepath.Join(dir, "app.conf")
	mode := filepath.Join(dir, "mode")
	touched := filepath.Join(dir, "touched")
	gone := filepath.Join(dir, "gone")
	for _, p := range []string{conf, mode, touched, gone} {
		write(t, p, "v1", 0o644)
	}
	if _, err := m.Diff(ctx); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Diff before any scan = %v, want CodeNotFound", err)
	}
	if err := m.Track(ctx, dir); err != nil {
		t.Fatal(err)
	}
	base, err := m.Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dirMtime := byPath(base.Files)[dir].Mtime
	fileMtime := byPath(base.Files)[conf].Mtime

	// Same size, new content, mtime put back: only the hash can tell.
	write(t, conf, "v2", 0o644)
	mustChtimes(t, conf, fileMtime)
	if err := os.Chmod(mode, 0o600); err != nil {
		t.Fatal(err)
	}
	mustChtimes(t, touched, fileMtime.Add(time.Hour))
	if err := os.Remove(gone); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "new"), "n", 0o644)
	mustChtimes(t, dir, dirMtime) // keep the directory itself out of the picture

	ch, err := m.Diff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Since.Equal(base.Taken) {
		t.Errorf("Since = %v, want %v", ch.Since, base.Taken)
	}
	changed := map[string][]string{}
	for _, mod := range ch.Modified {
		changed[mod.Path] = mod.Changed
	}
	wantChanged := map[string][]string{conf: {"sha256"}, mode: {"mode"}, touched: {"mtime"}}
	if diff := cmp.Diff(wantChanged, changed); diff != "" {
		t.Errorf("Modified (-want +got):\n%s", diff)
	}
	if len(ch.Added) != 1 || ch.Added[0].Path != filepath.Join(dir, "new") {
		t.Errorf("Added = %+v", ch.Added)
	}
	if len(ch.Removed) != 1 || ch.Removed[0].Path != gone || ch.Removed[0].SHA256 != sum("v1") {
		t.Errorf("Removed = %+v", ch.Removed)
	}
	// Diff records nothing: asking again gives the same answer.
	again, err := m.Diff(ctx)
	if err != nil || len(again.Modified) != 3 || len(again.Added) != 1 {
		t.Errorf("second Diff = %+v, %v", again, err)
	}
	// A scan accepts the changes.
	if _, err := m.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := m.Diff(ctx)
	if err != nil || len(after.Modified)+len(after.Added)+len(after.Removed) != 0 {
		t.Errorf("Diff right after Scan = %+v, %v; want no changes", after, err)
	}
}

func mustChtimes(t *testing.T, path string, mtime time.Time) {
	t.Helper()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestTrackedFileDeleted(t *testing.T) {
	m := newModule(t)
	file := filepath.Join(t.TempDir(), "f")
	write(t, file, "x", 0o644)
	if err := m.Track(t.Context(), file); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	snap, err := m.Inventory(t.Context())
	if err != nil || len(snap.Files) != 1 || snap.Files[0].Exists {
		t.Errorf("Inventory of a deleted tracked file = %+v, %v; want one entry, exists false", snap.Files, err)
	}
	ch, err := m.Diff(t.Context())
	if err != nil || len(ch.Removed) != 1 || ch.Removed[0].Path != file {
		t.Errorf("Diff = %+v, %v; want %s removed", ch, err, file)
	}
}

func TestLimits(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		write(t, filepath.Join(dir, fmt.Sprintf("f%02d", i)), strings.Repeat("x", i), 0o644)
	}
	m := &Module{StateDir: filepath.Join(t.TempDir(), "state"), MaxFiles: 5, MaxHashSize: 10}
	if err := m.Track(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	snap, err := m.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Files) != 5 || !snap.Truncated {
		t.Errorf("MaxFiles 5: %d entries, truncated %v", len(snap.Files), snap.Truncated)
	}
	m.MaxFiles = 100
	snap, err = m.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	files := byPath(snap.Files)
	if f := files[filepath.Join(dir, "f10")]; f.SHA256 != sum(strings.Repeat("x", 10)) || f.HashSkipped {
		t.Errorf("file of MaxHashSize bytes = %+v, want hashed", f)
	}
	if f := files[filepath.Join(dir, "f11")]; f.SHA256 != "" || !f.HashSkipped || f.Size != 11 {
		t.Errorf("file above MaxHashSize = %+v, want size recorded, hash skipped", f)
	}
	small := &Module{StateDir: filepath.Join(t.TempDir(), "state"), MaxFiles: 1}
	if err := small.Track(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if err := small.Track(t.Context(), filepath.Join(dir, "f01")); !errors.Is(err, gofunc.ErrTooLarge) {
		t.Errorf("tracking past MaxFiles = %v, want CodeTooLarge", err)
	}
}

func TestCorruptState(t *testing.T) {
	m := newModule(t)
	write(t, filepath.Join(m.StateDir, trackedFile), "{not json", 0o600)
	if _, err := m.List(t.Context()); !errors.Is(err, &gofunc.Fault{Code: gofunc.CodeModule}) ||
		!strings.Contains(err.Error(), "corrupt") {
		t.Errorf("List with a corrupt state file = %v, want CodeModule naming the corruption", err)
	}
}

func TestCanceled(t *testing.T) {
	m := newModule(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "f"), "x", 0o644)
	if err := m.Track(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := m.Scan(ctx); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Scan(canceled) = %v, want CodeCanceled", err)
	}
	if err := m.Track(ctx, dir); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Track(canceled) = %v, want CodeCanceled", err)
	}
}

// Concurrent Track calls must not lose each other's paths.
func TestConcurrentTrack(t *testing.T) {
	m := newModule(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	for i := range 16 {
		p := filepath.Join(dir, fmt.Sprint(i))
		write(t, p, "x", 0o644)
		wg.Go(func() {
			if err := m.Track(context.Background(), p); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := m.List(t.Context()); err != nil || len(got) != 16 {
		t.Errorf("after 16 concurrent Track calls, List = %d paths, %v", len(got), err)
	}
}

func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	for i := range 1000 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprint(i)), []byte(strings.Repeat("x", 4096)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	m := &Module{StateDir: filepath.Join(b.TempDir(), "state")}
	if err := m.Track(context.Background(), dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := m.Scan(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// The reviewer's case: with a tracked tree read (atime), its directory
// listed and the host busy in between, two inventories are equal; and
// they differ as soon as a tracked file does.
func TestInventoryStable(t *testing.T) {
	m := newModule(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.conf"), "alpha", 0o640)
	write(t, filepath.Join(dir, "sub", "b"), "beta", 0o755)
	if err := m.Track(t.Context(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Scan(t.Context()); err != nil { // a scan in between records state, changes no file
		t.Fatal(err)
	}
	inv := modtest.CheckStable(t, func(ctx context.Context) (Inventory, error) {
		if _, err := os.ReadFile(filepath.Join(dir, "a.conf")); err != nil {
			return Inventory{}, err
		}
		if _, err := os.ReadDir(dir); err != nil {
			return Inventory{}, err
		}
		return m.Inventory(ctx)
	})
	if len(inv.Files) != 4 || inv.Truncated {
		t.Errorf("Inventory = %+v, want the dir, a.conf, sub and sub/b", inv)
	}
	write(t, filepath.Join(dir, "a.conf"), "alpha2", 0o640)
	after, err := m.Inventory(t.Context())
	if err != nil || cmp.Equal(inv, after) {
		t.Errorf("Inventory after a tracked file changed = %+v, %v; want a difference", after, err)
	}
}
