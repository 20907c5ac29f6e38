package copyfile

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// newModule returns a module restricted to a fresh directory.
func newModule(t *testing.T) (*Module, string) {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := &Module{AllowDirs: []string{dir}, MaxChunkSize: 1024, MaxFileSize: 10 * 1024}
	t.Cleanup(func() { m.Close() })
	return m, dir
}

// noTemps fails if copyfile left a temporary file in dir.
func noTemps(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// push uploads data in chunks of size n.
func push(t *testing.T, ctx context.Context, m *Module, path string, data []byte, n int, o Options) (CommitResult, error) {
	t.Helper()
	id, err := m.Open(ctx, path, o)
	if err != nil {
		return CommitResult{}, err
	}
	for off := 0; off < len(data); off += n {
		chunk := data[off:min(off+n, len(data))]
		got, err := m.Append(ctx, id, int64(off), chunk, sum(chunk))
		if err != nil {
			return CommitResult{}, err
		}
		if got != int64(off+len(chunk)) {
			t.Fatalf("Append returned %d, want %d", got, off+len(chunk))
		}
	}
	return m.Commit(ctx, id)
}

func stat(t *testing.T, path string) (fs.FileInfo, *syscall.Stat_t) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi, fi.Sys().(*syscall.Stat_t)
}

func TestChunkedUpload(t *testing.T) {
	m, dir := newModule(t)
	path := filepath.Join(dir, "big")
	data := bytes.Repeat([]byte("0123456789abcdef"), 500) // 8000 bytes, 8 chunks
	res, err := push(t, t.Context(), m, path, data, 1024, Options{Size: int64(len(data)), SHA256: sum(data)})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || res.SHA256 != sum(data) || res.Size != int64(len(data)) || res.BackupPath != "" {
		t.Fatalf("Commit = %+v", res)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file content differs (%d bytes, %v)", len(got), err)
	}
	if fi, _ := stat(t, path); fi.Mode().Perm() != DefaultMode {
		t.Errorf("mode = %v, want %v", fi.Mode(), DefaultMode)
	}
	noTemps(t, dir)
	if sumGot, err := m.Checksum(t.Context(), path); err != nil || sumGot != sum(data) {
		t.Errorf("Checksum = %q, %v", sumGot, err)
	}
}

func TestIdenticalContentLeavesFileUntouched(t *testing.T) {
	m, dir := newModule(t)
	path := filepath.Join(dir, "f")
	data := []byte("same content\n")
	if _, err := m.Copyfile(t.Context(), path, data, Options{Mode: "0640"}); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, past, past); err != nil {
		t.Fatal(err)
	}
	_, before := stat(t, path)

	res, err := push(t, t.Context(), m, path, data, 5, Options{Backup: true})
	if err != nil {
		t.Fatal(err)
	}
	fi, after := stat(t, path)
	if res.Changed || res.BackupPath != "" || after.Ino != before.Ino || !fi.ModTime().Equal(past) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("identical upload: %+v, inode %d->%d, mtime %v, mode %v", res, before.Ino, after.Ino, fi.ModTime(), fi.Mode())
	}
	// Same content, new mode: fixed in place, content and mtime kept.
	res, err = m.Copyfile(t.Context(), path, data, Options{Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	fi, after = stat(t, path)
	if !res.Changed || after.Ino != before.Ino || fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(past) {
		t.Fatalf("mode change: %+v, inode %d->%d, mode %v", res, before.Ino, after.Ino, fi.Mode())
	}
	noTemps(t, dir)
}

// A file with other hard links (here a backup copyfile made, and a
// link as a local user could make) whose content is right but whose
// mode is not is replaced by a new file, not chmodded in place: the
// other names keep their mode.
func TestSameContentWithHardLinksIsNotChangedInPlace(t *testing.T) {
	m, dir := newModule(t)
	path := filepath.Join(dir, "f")
	data := []byte("same content\n")
	if _, err := m.Copyfile(t.Context(), path, []byte("old\n"), Options{Mode: "0644"}); err != nil {
		t.Fatal(err)
	}
	res, err := m.Copyfile(t.Context(), path, data, Options{Mode: "0644", Backup: true})
	if err != nil || res.BackupPath == "" {
		t.Fatalf("replace with backup: %+v, %v", res, err)
	}
	other := filepath.Join(dir, "other-name")
	if err := os.Link(path, other); err != nil {
		t.Fatal(err)
	}
	_, before := stat(t, path)
	res, err = m.Copyfile(t.Context(), path, data, Options{Mode: "0600"})
	if err != nil || !res.Changed {
		t.Fatalf("mode change: %+v, %v", res, err)
	}
	fi, after := stat(t, path)
	if fi.Mode().Perm() != 0o600 || after.Ino == before.Ino {
		t.Errorf("target: mode %v, inode %d -> %d", fi.Mode(), before.Ino, after.Ino)
	}
	if fi, _ := stat(t, other); fi.Mode().Perm() != 0o644 {
		t.Errorf("the other link's mode changed to %v", fi.Mode())
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Errorf("content %q, %v", got, err)
	}
	// Right mode already: left alone even with links.
	res, err = m.Copyfile(t.Context(), other, data, Options{Mode: "0644"})
	if _, now := stat(t, other); err != nil || res.Changed || now.Ino != before.Ino {
		t.Errorf("unchanged file with links: %+v, %v", res, err)
	}
	noTemps(t, dir)
}

func TestReplaceWithBackupAndOwnership(t *testing.T) {
	m, dir := newModule(t)
	path := filepath.Join(dir, "conf")
	if err := os.WriteFile(path, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := m.Copyfile(t.Context(), path, []byte("new\n"), Options{Backup: true, Owner: "nobody", Group: 65534})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Changed || !strings.HasPrefix(res.BackupPath, path+".") || !strings.HasSuffix(res.BackupPath, ".bak") {
		t.Fatalf("Copyfile = %+v", res)
	}
	if old, err := os.ReadFile(res.BackupPath); err != nil || string(old) != "old\n" {
		t.Fatalf("backup holds %q, %v", old, err)
	}
	fi, st := stat(t, path)
	if st.Uid != 65534 || st.Gid != 65534 || fi.Mode().Perm() != 0o600 {
		t.Errorf("owner %d:%d mode %v; want 65534:65534 and the old mode 0600", st.Uid, st.Gid, fi.Mode())
	}
	// A second backup in the same second gets its own name.
	res2, err := m.Copyfile(t.Context(), path, []byte("newer\n"), Options{Backup: true, Owner: "0", Group: "root", Mode: 0o4755})
	if err != nil {
		t.Fatal(err)
	}
	if res2.BackupPath == res.BackupPath || res2.BackupPath == "" {
		t.Errorf("second backup %q", res2.BackupPath)
	}
	fi, st = stat(t, path)
	if st.Uid != 0 || st.Gid != 0 || fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("owner %d:%d mode %v; want 0:0 and setuid 0755", st.Uid, st.Gid, fi.Mode())
	}
	noTemps(t, dir)
}

func TestUploadErrors(t *testing.T) {
	m, dir := newModule(t)
	ctx := t.Context()
	path := filepath.Join(dir, "f")
	id, err := m.Open(ctx, path, Options{Size: 6})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Append(ctx, id, 0, []byte("abc"), sum([]byte("abd")))
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = m.Append(ctx, id, 0, []byte("abc"), "not hex")
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	if _, err := m.Append(ctx, id, 0, []byte("abc"), sum([]byte("abc"))); err != nil {
		t.Fatal(err)
	}
	_, err = m.Append(ctx, id, 0, []byte("abc"), sum([]byte("abc"))) // replayed
	modtest.WantCode(t, err, gofunc.CodeConflict)
	_, err = m.Append(ctx, id, 3, []byte("defg"), sum([]byte("defg"))) // beyond declared size
	modtest.WantCode(t, err, gofunc.CodeTooLarge)
	big := make([]byte, 1025)
	_, err = m.Append(ctx, id, 3, big, sum(big))
	modtest.WantCode(t, err, gofunc.CodeTooLarge)
	_, err = m.Commit(ctx, id) // 3 bytes of 6
	modtest.WantCode(t, err, gofunc.CodeBadArgs)
	_, err = m.Commit(ctx, id) // the failed commit ended the upload
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed commit created the file: %v", err)
	}

	id, err = m.Open(ctx, path, Options{SHA256: sum([]byte("x"))})
	if err != nil {
		t.Fatal(err)
	}
	m.Append(ctx, id, 0, []byte("y"), sum([]byte("y")))
	_, err = m.Commit(ctx, id)
	modtest.WantCode(t, err, gofunc.CodeBadArgs)

	id, err = m.Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Abort(ctx, id); !ok || err != nil {
		t.Fatalf("Abort = %v, %v", ok, err)
	}
	_, err = m.Append(ctx, id, 0, nil, sum(nil))
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	_, err = m.Abort(ctx, "no-such-upload")
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	noTemps(t, dir)
}

func TestHostileArguments(t *testing.T) {
	m, dir := newModule(t)
	ctx := t.Context()
	outside, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(dir, "f")
	for _, tc := range []struct {
		name string
		path string
		o    Options
		code gofunc.Code
	}{
		{"relative path", "../../etc/shadow", Options{}, gofunc.CodeBadArgs},
		{"NUL in path", dir + "/a\x00b", Options{}, gofunc.CodeBadArgs},
		{"outside", "/etc/shadow", Options{}, gofunc.CodeDenied},
		{"dot-dot outside", dir + "/../../etc/shadow", Options{}, gofunc.CodeDenied},
		{"symlink escape", dir + "/escape/x", Options{}, gofunc.CodeDenied},
		{"the allowed dir itself", dir, Options{}, gofunc.CodeDenied},
		{"missing dir", dir + "/nodir/x", Options{}, gofunc.CodeNotFound},
		{"temp name", dir + "/" + tempPrefix + "x.tmp", Options{}, gofunc.CodeBadArgs},
		{"10 GB", f, Options{Size: 10 << 30}, gofunc.CodeTooLarge},
		{"negative size", f, Options{Size: -1}, gofunc.CodeBadArgs},
		{"bad sha256", f, Options{SHA256: "; rm -rf /"}, gofunc.CodeBadArgs},
		{"owner injection", f, Options{Owner: "root; reboot"}, gofunc.CodeBadArgs},
		{"owner dash", f, Options{Owner: "-rf"}, gofunc.CodeBadArgs},
		{"unknown owner", f, Options{Owner: "gofunc-no-such-user"}, gofunc.CodeBadArgs},
		{"owner -1", f, Options{Owner: -1}, gofunc.CodeBadArgs},
		{"uid 2^32-1", f, Options{Owner: int64(1<<32 - 1)}, gofunc.CodeBadArgs},
		{"group type", f, Options{Group: 1.5}, gofunc.CodeBadArgs},
		{"mode too big", f, Options{Mode: 0o17777}, gofunc.CodeBadArgs},
		{"mode not octal", f, Options{Mode: "rwxr-xr-x"}, gofunc.CodeBadArgs},
		{"mode negative", f, Options{Mode: -1}, gofunc.CodeBadArgs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Open(ctx, tc.path, tc.o)
			modtest.WantCode(t, err, tc.code)
			_, err = m.Copyfile(ctx, tc.path, []byte("x"), tc.o)
			modtest.WantCode(t, err, tc.code)
		})
	}
	big := make([]byte, 1025)
	_, err = m.Copyfile(ctx, f, big, Options{})
	modtest.WantCode(t, err, gofunc.CodeTooLarge)
	noTemps(t, dir)
}

func TestRefusesNonRegularTarget(t *testing.T) {
	m, dir := newModule(t)
	if err := os.Symlink("target", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"link", "sub"} {
		_, err := m.Copyfile(t.Context(), filepath.Join(dir, name), []byte("x"), Options{})
		modtest.WantCode(t, err, gofunc.CodeConflict)
	}
	// A symlink planted between open and commit is refused too.
	path := filepath.Join(dir, "late")
	id, err := m.Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", path); err != nil {
		t.Fatal(err)
	}
	_, err = m.Commit(t.Context(), id)
	modtest.WantCode(t, err, gofunc.CodeConflict)
	if target, err := os.Readlink(path); err != nil || target != "/etc/passwd" {
		t.Errorf("the symlink was replaced: %q, %v", target, err)
	}
	noTemps(t, dir)
}

func TestUploadBelongsToItsCaller(t *testing.T) {
	m, dir := newModule(t)
	alice := gofunc.NewContext(t.Context(), gofunc.Peer{Name: "alice", Role: gofunc.RoleOverlord, Serial: "01"})
	mallory := gofunc.NewContext(t.Context(), gofunc.Peer{Name: "mallory", Role: gofunc.RoleOverlord, Serial: "02"})
	id, err := m.Open(alice, filepath.Join(dir, "f"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Append(mallory, id, 0, []byte("evil"), sum([]byte("evil")))
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	_, err = m.Commit(mallory, id)
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	if _, err := m.Append(alice, id, 0, []byte("ok"), sum([]byte("ok"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Commit(alice, id); err != nil {
		t.Fatal(err)
	}
}

func TestLimitsUploadsAndClose(t *testing.T) {
	m, dir := newModule(t)
	m.MaxUploads = 2
	for i := range 2 {
		if _, err := m.Open(t.Context(), filepath.Join(dir, fmt.Sprint(i)), Options{}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := m.Open(t.Context(), filepath.Join(dir, "3"), Options{})
	modtest.WantCode(t, err, gofunc.CodeBusy)
	m.Close()
	noTemps(t, dir)
	_, err = m.Open(t.Context(), filepath.Join(dir, "4"), Options{})
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
	m.Close() // idempotent
}

func TestIdleUploadsExpire(t *testing.T) {
	m, dir := newModule(t)
	clock := time.Now()
	m.now = func() time.Time { return clock }
	idle, err := m.Open(t.Context(), filepath.Join(dir, "idle"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(DefaultUploadTTL / 2)
	busy, err := m.Open(t.Context(), filepath.Join(dir, "busy"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(DefaultUploadTTL/2 + time.Second)
	m.sweep()
	_, err = m.Append(t.Context(), idle, 0, []byte("x"), sum([]byte("x")))
	modtest.WantCode(t, err, gofunc.CodeNotFound)
	if _, err := m.Append(t.Context(), busy, 0, []byte("x"), sum([]byte("x"))); err != nil {
		t.Fatalf("the younger upload expired too: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d temporary files, want only the live upload's", len(entries))
	}
}

func TestOrphanedTempFilesAreRemoved(t *testing.T) {
	m, dir := newModule(t)
	orphan := filepath.Join(dir, tempPrefix+"123"+tempSuffix)
	fresh := filepath.Join(dir, tempPrefix+"456"+tempSuffix)
	for _, f := range []string{orphan, fresh} {
		if err := os.WriteFile(f, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * DefaultUploadTTL)
	os.Chtimes(orphan, old, old)
	if _, err := m.Copyfile(t.Context(), filepath.Join(dir, "f"), []byte("x"), Options{}); err != nil {
		t.Fatal(err)
	}
	id, err := m.Open(t.Context(), filepath.Join(dir, "f"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Abort(t.Context(), id)
	if _, err := os.Stat(orphan); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("orphan survived: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a fresh temporary file was removed: %v", err)
	}
}

func TestUnrestrictedAndMisconfigured(t *testing.T) {
	dir := t.TempDir()
	m := &Module{}
	defer m.Close()
	if _, err := m.Copyfile(t.Context(), filepath.Join(dir, "f"), []byte("x"), Options{}); err != nil {
		t.Fatalf("zero Module refused a write: %v", err)
	}
	bad := &Module{AllowDirs: []string{"relative/dir"}}
	defer bad.Close()
	_, err := bad.Copyfile(t.Context(), filepath.Join(dir, "f"), []byte("x"), Options{})
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want fs.FileMode
		ok   bool
	}{
		{420, 0o644, true},
		{int64(0o600), 0o600, true},
		{"0644", 0o644, true},
		{"755", 0o755, true},
		{"0o750", 0o750, true},
		{"4755", 0o755 | fs.ModeSetuid, true},
		{"3777", 0o777 | fs.ModeSetgid | fs.ModeSticky, true},
		{"", 0, false},
		{"8", 0, false},
		{"-644", 0, false},
		{"10000", 0, false},
		{1.5, 0, false},
	} {
		got, err := ParseMode(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseMode(%#v) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	for _, s := range []string{"0644", "4755", "0o7777", "", "99", "+1", "0x1ff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mode, err := ParseMode(s)
		if err != nil {
			return
		}
		if mode&^(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
			t.Fatalf("ParseMode(%q) = %v: stray bits", s, mode)
		}
	})
}

func ExampleModule_Copyfile() {
	dir, _ := os.MkdirTemp("", "copyfile-example")
	defer os.RemoveAll(dir)
	m := &Module{AllowDirs: []string{dir}}
	defer m.Close()
	ctx := context.Background()
	path := filepath.Join(dir, "motd")
	for range 2 {
		res, err := m.Copyfile(ctx, path, []byte("welcome\n"), Options{Mode: "0644"})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("changed:", res.Changed, "size:", res.Size)
	}
	_, err := m.Copyfile(ctx, "/etc/motd", []byte("x"), Options{})
	fmt.Println(errors.Is(err, gofunc.ErrDenied))
	// Output:
	// changed: true size: 8
	// changed: false size: 8
	// true
}

// BenchmarkChunkedUpload measures open + 4 MiB appends + commit of a
// 64 MiB file (fsync included).
func BenchmarkChunkedUpload(b *testing.B) {
	dir := b.TempDir()
	m := &Module{}
	defer m.Close()
	chunk := bytes.Repeat([]byte("x"), DefaultMaxChunkSize)
	chunkSum := sum(chunk)
	const chunks = 16
	b.SetBytes(chunks * DefaultMaxChunkSize)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id, err := m.Open(ctx, filepath.Join(dir, fmt.Sprint(i%2)), Options{})
		if err != nil {
			b.Fatal(err)
		}
		for c := range chunks {
			if _, err := m.Append(ctx, id, int64(c)*DefaultMaxChunkSize, chunk, chunkSum); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := m.Commit(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}
