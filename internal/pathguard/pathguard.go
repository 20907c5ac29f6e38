// Package pathguard checks the file paths that callers send to modules
// (copyfile, getfile, mount, filetracker) against an optional allow-list
// of directories. It is the one implementation of "is this path inside
// the allowed directories, symbolic links resolved"; it also opens and
// hashes the regular files those paths name without being tricked by a
// link or a FIFO swapped in after the check.
//
// A path is accepted only when it is absolute, free of NUL bytes and of
// reasonable length. When the allow-list is not empty the path is also
// resolved through symbolic links and must land inside one of the allowed
// directories (themselves resolved at check time), so a symlink planted in
// an allowed directory cannot lead a write or a read outside it. Three
// checks differ in what they resolve: ReadPath the whole path (the file
// must exist), WritePath and EntryPath the parent directory only (the
// final element is the directory entry itself).
//
// A check and the act that follows it are two steps, and a local user
// who owns a directory inside the allow-list can swap a symbolic link in
// between. So the act goes through what the check returned, resolved and
// free of links, opened without following any: OpenRegular, HashRegular
// and Lstat walk the path from "/" one component at a time with
// O_NOFOLLOW, and a Dir (OpenDir) holds a checked directory open so that
// creating, renaming, linking, chmod and chown happen in it, by name,
// through descriptors. A link found on the way is CodeConflict: it was
// swapped in after the check, and is never followed.
//
// Errors are *gofunc.Fault values ready for the wire: CodeBadArgs for a
// malformed path, CodeDenied for a path outside the allow-list and
// CodeNotFound for a missing file or directory.
package pathguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/gofunc/gofunc"
)

// MaxPathLen is the longest path accepted (PATH_MAX on Linux).
const MaxPathLen = 4096

// Guard holds an allow-list of directories. The zero Guard (and a Guard
// built from an empty list) allows every absolute path. A Guard is
// immutable and safe for concurrent use.
type Guard struct {
	dirs []string // cleaned absolute paths, resolved again at each check
}

// New returns a Guard allowing the given directories and everything below
// them. Each must be an absolute path; it need not exist yet (a directory
// that does not exist simply matches nothing).
func New(dirs []string) (*Guard, error) {
	g := &Guard{}
	for _, d := range dirs {
		clean, err := Clean(d)
		if err != nil {
			return nil, fmt.Errorf("pathguard: allowed directory %q: %w", d, err)
		}
		g.dirs = append(g.dirs, clean)
	}
	return g, nil
}

// Restricted reports whether the Guard has an allow-list.
func (g *Guard) Restricted() bool { return g != nil && len(g.dirs) > 0 }

// Dirs returns a copy of the allow-list.
func (g *Guard) Dirs() []string {
	if g == nil {
		return nil
	}
	return append([]string(nil), g.dirs...)
}

// Clean validates a caller's path and returns it cleaned: it must be
// non-empty, absolute, at most MaxPathLen bytes and without NUL bytes.
// "../../etc/shadow" is refused (relative); "/srv/../etc/shadow" becomes
// "/etc/shadow" and is then judged by the allow-list.
func Clean(p string) (string, error) {
	switch {
	case p == "":
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path is empty")
	case len(p) > MaxPathLen:
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path is longer than %d bytes", MaxPathLen)
	case strings.IndexByte(p, 0) >= 0:
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path contains a NUL byte")
	case !filepath.IsAbs(p):
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path %q is not absolute", p)
	}
	return filepath.Clean(p), nil
}

// WritePath checks a path that is about to be created or replaced. The
// parent directory must exist; it is resolved through symbolic links and
// must be inside the allow-list. The final element is not followed (a
// rename replaces the directory entry itself), so the result is the
// resolved parent joined with the base name.
func (g *Guard) WritePath(p string) (string, error) {
	// Strictly below: replacing an allowed directory itself is not allowed.
	return g.entryPath(p, true)
}

// EntryPath checks a path naming a directory entry that is acted on in
// place rather than replaced: a mountpoint, a tracked file. Like
// WritePath it resolves the parent directory (which must exist) and not
// the final element, and returns the resolved parent joined with the
// base name; unlike WritePath an allowed directory itself, and "/" when
// "/" is allowed, are accepted.
func (g *Guard) EntryPath(p string) (string, error) { return g.entryPath(p, false) }

// entryPath resolves p's parent and checks the result against the
// allow-list; strict refuses the allowed directories themselves.
func (g *Guard) entryPath(p string, strict bool) (string, error) {
	clean, err := Clean(p)
	if err != nil {
		return "", err
	}
	if clean == "/" && !strict {
		if err := g.check(p, clean, false); err != nil {
			return "", err
		}
		return clean, nil
	}
	dir, base := filepath.Split(clean)
	if base == "" || base == "." || base == ".." {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path %q names no file", p)
	}
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", g.unresolved(p, clean, "directory of "+p, err)
	}
	resolved := filepath.Join(realDir, base)
	if err := g.check(p, resolved, strict); err != nil {
		return "", err
	}
	return resolved, nil
}

// ReadPath checks a path that is about to be read: it is resolved fully
// (it must exist) and the result must be inside the allow-list.
func (g *Guard) ReadPath(p string) (string, error) {
	clean, err := Clean(p)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return "", g.unresolved(p, clean, p, err)
	}
	if err := g.check(p, resolved, false); err != nil {
		return "", err
	}
	return resolved, nil
}

// Contains reports whether the resolved path is inside the allow-list
// (always true for an unrestricted Guard).
func (g *Guard) Contains(resolved string) bool { return g.contains(resolved, false) }

func (g *Guard) contains(resolved string, strict bool) bool {
	if !g.Restricted() {
		return true
	}
	for _, d := range g.dirs {
		real, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue // a missing allowed directory allows nothing
		}
		if within(real, resolved) && !(strict && real == resolved) {
			return true
		}
	}
	return false
}

func (g *Guard) check(asked, resolved string, strict bool) error {
	if g.contains(resolved, strict) {
		return nil
	}
	if asked == resolved {
		return gofunc.Errorf(gofunc.CodeDenied, "path %q is outside the allowed directories", asked)
	}
	return gofunc.Errorf(gofunc.CodeDenied, "path %q (resolved to %q) is outside the allowed directories", asked, resolved)
}

// within reports whether p is dir or below it; both are clean and absolute.
func within(dir, p string) bool {
	if dir == "/" || p == dir {
		return true
	}
	return strings.HasPrefix(p, dir+"/")
}

// unresolved reports a path that could not be resolved. Callers must not
// learn what exists outside the allow-list, so the longest prefix that
// does resolve is judged: outside means denied, inside means missing.
func (g *Guard) unresolved(asked, clean, what string, err error) error {
	if g.Restricted() {
		for d := clean; ; d = filepath.Dir(d) {
			if real, rerr := filepath.EvalSymlinks(d); rerr == nil {
				if !g.contains(real, false) {
					return gofunc.Errorf(gofunc.CodeDenied, "path %q is outside the allowed directories", asked)
				}
				break
			}
			if d == "/" {
				break
			}
		}
	}
	return notFound(what, err)
}

func notFound(what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return gofunc.Errorf(gofunc.CodeNotFound, "%s: no such file or directory", what)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, os.ErrPermission) {
		return gofunc.Errorf(gofunc.CodeDenied, "%s: permission denied", what)
	}
	return gofunc.Errorf(gofunc.CodeModule, "%s: %v", what, err)
}

// ctxReader stops a long read when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
