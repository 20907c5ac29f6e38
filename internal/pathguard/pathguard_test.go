package pathguard

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
)

// tree builds allowed/ (with a file, a subdirectory, an inner symlink and
// an escaping symlink) and outside/ under a temp dir.
func tree(t *testing.T) (root, allowed, outside string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed = filepath.Join(root, "allowed")
	outside = filepath.Join(root, "outside")
	for _, d := range []string{allowed, outside, filepath.Join(allowed, "sub")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(allowed, "f"), filepath.Join(outside, "secret")} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.Symlink(outside, filepath.Join(allowed, "escape")))
	must(t, os.Symlink(filepath.Join(outside, "secret"), filepath.Join(allowed, "secretlink")))
	must(t, os.Symlink("sub", filepath.Join(allowed, "inner")))
	return root, allowed, outside
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		code     gofunc.Code
	}{
		{"/etc/hosts", "/etc/hosts", 0},
		{"/srv/../etc//hosts", "/etc/hosts", 0},
		{"", "", gofunc.CodeBadArgs},
		{"../../etc/shadow", "", gofunc.CodeBadArgs},
		{"etc/hosts", "", gofunc.CodeBadArgs},
		{"/etc/ho\x00sts", "", gofunc.CodeBadArgs},
		{"/" + strings.Repeat("a", MaxPathLen), "", gofunc.CodeBadArgs},
	} {
		got, err := Clean(tc.in)
		if code := codeOf(err); code != tc.code || got != tc.want {
			t.Errorf("Clean(%q) = %q, %v; want %q, code %v", tc.in, got, err, tc.want, tc.code)
		}
	}
}

func codeOf(err error) gofunc.Code {
	if err == nil {
		return 0
	}
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		return -1
	}
	return f.Code
}

// pathCase is a path, what a check should make of it and the fault code
// it should fail with (0: none).
type pathCase struct {
	in, want string
	code     gofunc.Code
}

func checkPaths(t *testing.T, name string, check func(string) (string, error), cases []pathCase) {
	t.Helper()
	for _, tc := range cases {
		got, err := check(tc.in)
		if code := codeOf(err); code != tc.code || got != tc.want {
			t.Errorf("%s(%q) = %q, %v; want %q, code %v", name, tc.in, got, err, tc.want, tc.code)
		}
	}
}

func TestWritePath(t *testing.T) {
	_, allowed, outside := tree(t)
	g, err := New([]string{allowed})
	must(t, err)
	checkPaths(t, "WritePath", g.WritePath, []pathCase{
		{allowed + "/new", allowed + "/new", 0},
		{allowed + "/f", allowed + "/f", 0},
		{allowed + "/inner/x", allowed + "/sub/x", 0},
		// The final element is not followed: replacing the link is inside.
		{allowed + "/secretlink", allowed + "/secretlink", 0},
		{allowed + "/escape/x", "", gofunc.CodeDenied},
		{allowed + "/../outside/x", "", gofunc.CodeDenied},
		{outside + "/x", "", gofunc.CodeDenied},
		{allowed + "/nodir/x", "", gofunc.CodeNotFound},
		{allowed + "/f/x", "", gofunc.CodeNotFound},
		{allowed + "/", "", gofunc.CodeDenied}, // cleans to the allowed dir's own entry in its parent
		{"/", "", gofunc.CodeBadArgs},
		{"../../etc/shadow", "", gofunc.CodeBadArgs},
	})
}

func TestEntryPath(t *testing.T) {
	_, allowed, outside := tree(t)
	g, err := New([]string{allowed})
	must(t, err)
	checkPaths(t, "EntryPath", g.EntryPath, []pathCase{
		{allowed, allowed, 0}, // unlike WritePath: the allowed directory itself
		{allowed + "/", allowed, 0},
		{allowed + "/sub", allowed + "/sub", 0},
		{allowed + "/new", allowed + "/new", 0},
		{allowed + "/inner/x", allowed + "/sub/x", 0},
		{allowed + "/secretlink", allowed + "/secretlink", 0}, // the entry, not its target
		{allowed + "/escape", allowed + "/escape", 0},
		{allowed + "/escape/x", "", gofunc.CodeDenied},
		{allowed + "/../outside", "", gofunc.CodeDenied},
		{outside, "", gofunc.CodeDenied},
		{"/", "", gofunc.CodeDenied},
		{"/nonexistent/x", "", gofunc.CodeDenied},
		{allowed + "/escape/nodir/x", "", gofunc.CodeDenied},
		{allowed + "/nodir/x", "", gofunc.CodeNotFound},
		{"../../etc/shadow", "", gofunc.CodeBadArgs},
		{"/etc/\x00shadow", "", gofunc.CodeBadArgs},
	})
	root, err := New([]string{"/"})
	must(t, err)
	for _, g := range []*Guard{root, nil} {
		if got, err := g.EntryPath("/"); got != "/" || err != nil {
			t.Errorf("EntryPath(/) with / allowed = %q, %v", got, err)
		}
	}
}

func TestReadPath(t *testing.T) {
	_, allowed, outside := tree(t)
	g, err := New([]string{allowed})
	must(t, err)
	checkPaths(t, "ReadPath", g.ReadPath, []pathCase{
		{allowed + "/f", allowed + "/f", 0},
		{allowed, allowed, 0},
		{allowed + "/inner", allowed + "/sub", 0},
		{allowed + "/secretlink", "", gofunc.CodeDenied},
		{allowed + "/escape/secret", "", gofunc.CodeDenied},
		{outside + "/secret", "", gofunc.CodeDenied},
		{allowed + "/missing", "", gofunc.CodeNotFound},
		{"../../etc/shadow", "", gofunc.CodeBadArgs},
	})
}

func TestUnrestricted(t *testing.T) {
	_, _, outside := tree(t)
	for _, g := range []*Guard{nil, {}} {
		if g.Restricted() {
			t.Fatal("empty guard is restricted")
		}
		if got, err := g.ReadPath(outside + "/secret"); err != nil || got != outside+"/secret" {
			t.Errorf("ReadPath = %q, %v", got, err)
		}
	}
}

func TestAllowedDirIsSymlink(t *testing.T) {
	root, allowed, _ := tree(t)
	link := filepath.Join(root, "link")
	must(t, os.Symlink(allowed, link))
	g, err := New([]string{link})
	must(t, err)
	if _, err := g.ReadPath(link + "/f"); err != nil {
		t.Errorf("ReadPath through allowed symlink: %v", err)
	}
	if _, err := g.ReadPath(allowed + "/f"); err != nil {
		t.Errorf("ReadPath of the real directory: %v", err)
	}
}

func TestNewRejectsRelative(t *testing.T) {
	if _, err := New([]string{"etc"}); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Fatalf("New(relative) = %v, want bad args", err)
	}
}

func TestWithinPrefix(t *testing.T) {
	if within("/srv/a", "/srv/ab") {
		t.Error("/srv/ab is not within /srv/a")
	}
	if !within("/", "/etc") || !within("/srv", "/srv") || !within("/srv", "/srv/x/y") {
		t.Error("within rejects a path inside")
	}
}

func TestNoProbingOutside(t *testing.T) {
	_, allowed, _ := tree(t)
	g, err := New([]string{allowed})
	must(t, err)
	for _, p := range []string{"/nonexistent/x", allowed + "/../../nonexistent/x"} {
		if _, err := g.ReadPath(p); codeOf(err) != gofunc.CodeDenied {
			t.Errorf("ReadPath(%q) = %v, want denied (not found would reveal existence)", p, err)
		}
		if _, err := g.WritePath(p); codeOf(err) != gofunc.CodeDenied {
			t.Errorf("WritePath(%q) = %v, want denied", p, err)
		}
	}
}

func TestNoProbingThroughEscapingLink(t *testing.T) {
	_, allowed, _ := tree(t)
	g, err := New([]string{allowed})
	must(t, err)
	p := allowed + "/escape/nodir/x"
	if _, err := g.WritePath(p); codeOf(err) != gofunc.CodeDenied {
		t.Errorf("WritePath(%q) = %v, want denied", p, err)
	}
	if _, err := g.ReadPath(p); codeOf(err) != gofunc.CodeDenied {
		t.Errorf("ReadPath(%q) = %v, want denied", p, err)
	}
}

func TestOpenRegular(t *testing.T) {
	_, allowed, _ := tree(t)
	f, fi, err := OpenRegular(allowed + "/f")
	if err != nil || fi.Size() != 1 {
		t.Fatalf("OpenRegular = %v, %v", fi, err)
	}
	f.Close()
	fifo := allowed + "/fifo"
	must(t, syscall.Mkfifo(fifo, 0o600))
	for p, code := range map[string]gofunc.Code{
		allowed + "/sub":        gofunc.CodeBadArgs,
		fifo:                    gofunc.CodeBadArgs, // and it did not block
		allowed + "/secretlink": gofunc.CodeConflict,
		allowed + "/missing":    gofunc.CodeNotFound,
	} {
		if _, _, err := OpenRegular(p); codeOf(err) != code {
			t.Errorf("OpenRegular(%q) = %v, want code %v", p, err, code)
		}
	}
}

func TestHashRegular(t *testing.T) {
	_, allowed, _ := tree(t)
	sum, fi, err := HashRegular(t.Context(), allowed+"/f")
	// SHA-256 of "x".
	if want := "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"; err != nil || sum != want || fi.Size() != 1 {
		t.Fatalf("HashRegular = %q, %v, %v; want %s", sum, fi, err, want)
	}
	if _, _, err := HashRegular(t.Context(), allowed+"/secretlink"); codeOf(err) != gofunc.CodeConflict {
		t.Errorf("HashRegular(symlink) = %v, want conflict", err)
	}
	big := allowed + "/big"
	must(t, os.WriteFile(big, make([]byte, 1<<20), 0o600))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := HashRegular(ctx, big); codeOf(err) != gofunc.CodeCanceled {
		t.Errorf("HashRegular(canceled) = %v, want canceled", err)
	}
}
