package pathguard

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
)

// OpenRegular and OpenDir follow no symbolic link anywhere in the path:
// a link in the middle is a conflict (it was swapped in after the path
// was resolved), not a way out of the allowed directory.
func TestNoLinkAnywhere(t *testing.T) {
	_, allowed, _ := tree(t)
	for p, code := range map[string]gofunc.Code{
		allowed + "/escape/secret": gofunc.CodeConflict, // escape -> outside
		allowed + "/inner/nothing": gofunc.CodeConflict, // inner -> sub, inside, still a link
		allowed + "/f/x":           gofunc.CodeNotFound, // a file is not a directory
		allowed + "/none/x":        gofunc.CodeNotFound,
		"relative/x":               gofunc.CodeBadArgs,
		allowed + "/../allowed/f":  gofunc.CodeBadArgs, // not clean
	} {
		if _, _, err := OpenRegular(p); codeOf(err) != code {
			t.Errorf("OpenRegular(%q) = %v, want code %v", p, err, code)
		}
		if _, err := OpenDir(filepath.Dir(p)); code == gofunc.CodeConflict && codeOf(err) != code {
			t.Errorf("OpenDir(%q) = %v, want code %v", filepath.Dir(p), err, code)
		}
	}
	if _, err := OpenDir(allowed + "/escape"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("OpenDir(a link) = %v, want conflict", err)
	}
	if _, err := OpenDir(allowed + "/f"); codeOf(err) != gofunc.CodeNotFound {
		t.Errorf("OpenDir(a file) = %v, want not found", err)
	}
	if d, err := OpenDir("/"); err != nil || d.Name() != "/" {
		t.Errorf("OpenDir(/) = %v, %v", d, err)
	} else {
		d.Close()
	}
	fi, err := Lstat(allowed + "/secretlink")
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("Lstat(link) = %v, %v; want the link itself", fi, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Geteuid() {
		t.Errorf("Lstat(link).Sys() = %#v, want a *syscall.Stat_t with its owner", fi.Sys())
	}
	if _, err := Lstat(allowed + "/escape/secret"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("Lstat through a link = %v, want conflict", err)
	}
}

// What a Dir does happens in the directory it opened, by single names,
// and never through a symbolic link.
func TestDir(t *testing.T) {
	_, allowed, outside := tree(t)
	d, err := OpenDir(allowed)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()

	for _, bad := range []string{"", ".", "..", "a/b", "../outside", "x\x00"} {
		if _, err := d.Lstat(bad); codeOf(err) != gofunc.CodeBadArgs {
			t.Errorf("Lstat(%q) = %v, want bad args", bad, err)
		}
		if _, err := d.OpenFile(bad, os.O_RDONLY, 0); codeOf(err) != gofunc.CodeBadArgs {
			t.Errorf("OpenFile(%q) = %v, want bad args", bad, err)
		}
	}
	if _, _, err := d.OpenRegular("secretlink"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("OpenRegular(link) = %v, want conflict", err)
	}
	if _, err := d.OpenDir("escape"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("OpenDir(link) = %v, want conflict", err)
	}
	if target, err := d.Readlink("escape"); err != nil || target != outside {
		t.Errorf("Readlink = %q, %v", target, err)
	}

	f, name, err := d.CreateTemp(".tmp-", ".x")
	if err != nil || !strings.HasPrefix(name, ".tmp-") || f.Name() != filepath.Join(allowed, name) {
		t.Fatalf("CreateTemp = %v, %q, %v", f, name, err)
	}
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("CreateTemp mode %v, want 0600", fi.Mode())
	}
	io.WriteString(f, "new")
	f.Close()
	// A rename over a link replaces the link; it does not write through it.
	if err := d.Rename(name, "secretlink"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "x" {
		t.Errorf("the file the link led to now holds %q", b)
	}
	if err := d.Link("secretlink", "copy"); err != nil {
		t.Fatal(err)
	}
	if err := d.Link("secretlink", "copy"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("Link over an existing name = %v, want conflict", err)
	}
	names, err := d.Names()
	if err != nil || !slices.Contains(names, "copy") || !slices.Contains(names, "sub") {
		t.Errorf("Names = %q, %v", names, err)
	}
	if again, _ := d.Names(); len(again) != len(names) {
		t.Errorf("Names a second time = %q, want %q", again, names)
	}
	if err := d.Remove("copy"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lstat("copy"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Lstat(removed) = %v, want not found", err)
	}

	// Once open, the directory is the one acted on even if its path now
	// leads elsewhere.
	moved := allowed + ".moved"
	if err := os.Rename(allowed, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, allowed); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lstat("f"); err != nil {
		t.Errorf("Lstat after the move = %v, want the moved directory's file", err)
	}
	if _, err := d.Lstat("secret"); err == nil {
		t.Error("Lstat after the move found the file the new link leads to")
	}
}

func FuzzOpenRegular(f *testing.F) {
	for _, s := range []string{"/", "/etc/hostname", "/proc/self/fd/0", "//x", "/a/../b", "", "rel", "/dev/null", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		file, _, err := OpenRegular(p)
		if err == nil {
			file.Close()
			if !filepath.IsAbs(p) || filepath.Clean(p) != p {
				t.Fatalf("OpenRegular(%q) opened a path that is not clean and absolute", p)
			}
			return
		}
		var fault *gofunc.Fault
		if !errors.As(err, &fault) {
			t.Fatalf("OpenRegular(%q) = %v, not a fault", p, err)
		}
	})
}
