package watch

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc/events"
)

func changed(t *testing.T, d events.Data) string {
	t.Helper()
	return strings.Join(d.(*events.FileChanged).Changed, ",")
}

// TestFileChangesByInterval drives the checks itself (no inotify).
func TestFileChangesByInterval(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "conf", Every: MaxEvery, Check: &File{Path: path, NoNotify: true}})
	h.check("conf", false)
	first := h.wantTypes(events.TypeFileChanged)[0].(*events.FileChanged)
	if first.Now.Exists || first.Was != nil {
		t.Fatalf("first = %+v", first)
	}
	steps := []struct {
		do   func()
		want string
	}{
		{func() { os.WriteFile(path, []byte("a=1\n"), 0o644) }, "created"},
		{func() { os.WriteFile(path, []byte("a=2\n"), 0o644) }, "content"},
		{func() { os.WriteFile(path, []byte("a=22\n"), 0o644) }, "content,size"},
		{func() { os.Chmod(path, 0o600) }, "mode"},
		{func() { os.Chmod(path, 0o600|os.ModeSetuid) }, "mode"},
		{func() { os.Lchown(path, 12345, 12345) }, "mode,owner"}, // chown clears setuid
		{func() { os.Remove(path); os.Symlink("/etc/hostname", path) }, "type"},
		{func() { os.Remove(path); os.Symlink("/etc/hosts", path) }, "size,target"}, // a link's size is its target's length
		{func() { os.Remove(path) }, "deleted"},
		{func() { os.Mkdir(path, 0o755) }, "created"},
		{func() { os.Remove(path); syscall.Mkfifo(path, 0o644) }, "created"},
	}
	for i, s := range steps {
		if strings.Contains(s.want, "owner") && os.Geteuid() != 0 {
			t.Logf("step %d skipped: chown needs root", i)
			continue
		}
		if i == len(steps)-1 {
			os.Remove(path)
			h.check("conf", true)
			h.next()
		}
		s.do()
		h.check("conf", true)
		ds := h.wantTypes(events.TypeFileChanged)
		if got := changed(t, ds[0]); got != s.want {
			t.Errorf("step %d: changed %q, want %q (%+v)", i, got, s.want, ds[0])
		}
	}
	// A FIFO is recorded, never opened (that would block).
	h.check("conf", true)
	h.wantTypes()
	os.Remove(path)
	os.WriteFile(path, []byte("hello\n"), 0o644)
	h.check("conf", true)
	now := h.wantTypes(events.TypeFileChanged)[0].(*events.FileChanged).Now
	// sha256sum of "hello\n"
	if now.SHA256 != "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03" || now.Size != 6 || now.Mode != "0644" || now.Type != "file" {
		t.Errorf("now = %+v", now)
	}
	h.check("conf", true) // unchanged: nothing
	h.wantTypes()
}

// TestFileChangeNotified: with inotify a change is reported without
// waiting for the interval.
func TestFileChangeNotified(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "passwd")
	os.WriteFile(path, []byte("root:x:0:0\n"), 0o644)
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "passwd", Every: MaxEvery, Check: &File{Path: path}})
	h.check("passwd", false)
	h.wantTypes(events.TypeFileChanged)
	head := h.j.Stats().Head
	os.WriteFile(filepath.Join(dir, "other"), []byte("x"), 0o644) // another file in the directory
	// Replace it the way editors do: a new file renamed over it.
	os.WriteFile(path+".tmp", []byte("root:x:0:0\nmallory:x:0:0\n"), 0o644)
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := contextWithTimeout(t, time.Minute)
	defer cancel()
	for {
		if err := h.j.Wait(ctx, head); err != nil {
			t.Fatalf("no event after the file changed: %v", err)
		}
		evs := h.next()
		if len(evs) > 0 {
			d, _ := evs[len(evs)-1].Decode()
			if got := changed(t, d); got != "content,size" {
				t.Errorf("changed %q", got)
			}
			return
		}
		head = h.j.Stats().Head
	}
}

// TestFileRewrittenInPlace: a file truncated and written again in
// several writes (as `>` in a shell or a program that does not write a
// new file and rename it) is one change, reported with its final
// content, not a half-written state first.
func TestFileRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(path, []byte("old=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t)
	h.start(Options{}, Watch{Name: "conf", Every: MaxEvery, Check: &File{Path: path}})
	h.check("conf", false)
	h.wantTypes(events.TypeFileChanged)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"new=1\n", "more=2\n", "last=3\n"} {
		time.Sleep(10 * time.Millisecond) // a writer slower than inotify
		if _, err := f.WriteString(part); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	h.check("conf", false) // the check the writes caused
	now := h.wantTypes(events.TypeFileChanged)[0].(*events.FileChanged).Now
	if now.Size != int64(len("new=1\nmore=2\nlast=3\n")) {
		t.Errorf("reported %+v, not the whole file", now)
	}
	h.check("conf", true)
	h.wantTypes()
}
