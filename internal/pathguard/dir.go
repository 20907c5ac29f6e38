package pathguard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
)

// Dir is a directory opened by OpenDir: each component of its path was
// opened without following a symbolic link, and the directory stays
// pinned by its descriptor, so what is done through a Dir happens in
// that very directory even if its path is changed afterwards. Its
// methods take a single file name (no "/", not "." or ".."), and never
// follow a symbolic link in that name either. A Dir is not safe for
// concurrent use; Close releases it.
//
// The checks (ReadPath, WritePath, EntryPath) resolve a path and judge
// the result; a Dir is how a module then acts on exactly what was
// judged: if a component of the resolved path has become a symbolic
// link since (a local user swapping one in), OpenDir fails with
// CodeConflict instead of following it.
type Dir struct {
	f    *os.File
	path string
}

// OpenDir opens the directory at path, a clean absolute path in which
// no component is a symbolic link (as ReadPath, WritePath and EntryPath
// return them). CodeConflict when a component is a symbolic link,
// CodeNotFound when one is missing or not a directory.
func OpenDir(path string) (*Dir, error) {
	fd, err := walk(path, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	return &Dir{f: os.NewFile(uintptr(fd), path), path: path}, nil
}

// walk opens path component by component from "/", never following a
// symbolic link, and opens the last component with flags. Intermediate
// directories are opened with openPath (O_PATH on Linux), which needs
// search permission only, like a path lookup.
func walk(path string, flags int) (int, error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return -1, gofunc.Errorf(gofunc.CodeBadArgs, "path %q is not clean and absolute", path)
	}
	names := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if path == "/" {
		names = nil
	}
	first := openPath | unix.O_DIRECTORY
	if len(names) == 0 {
		first = flags
	}
	fd, err := openat(unix.AT_FDCWD, "/", first)
	if err != nil {
		return -1, walkError(path, "/", err)
	}
	for i, name := range names {
		f := openPath | unix.O_DIRECTORY | unix.O_NOFOLLOW
		if i == len(names)-1 {
			f = flags | unix.O_NOFOLLOW
		}
		next, err := openat(fd, name, f)
		if err != nil {
			err = walkError(path, filepath.Join("/", filepath.Join(names[:i+1]...)), symlinkAt(fd, name, err))
			unix.Close(fd)
			return -1, err
		}
		unix.Close(fd)
		fd = next
	}
	return fd, nil
}

func openat(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// errSymlink marks a component that is a symbolic link.
var errSymlink = errors.New("is a symbolic link")

// symlinkAt tells a symbolic link apart from the other reasons an open
// with O_NOFOLLOW fails with ELOOP or ENOTDIR.
func symlinkAt(dirfd int, name string, err error) error {
	if err != unix.ELOOP && err != unix.ENOTDIR {
		return err
	}
	var st unix.Stat_t
	if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return errSymlink
	}
	return err
}

// walkError turns a failed open of component (a prefix of path) into a
// fault.
func walkError(path, component string, err error) error {
	switch {
	case errors.Is(err, errSymlink):
		return gofunc.Errorf(gofunc.CodeConflict, "%s: %s became a symbolic link after the path was checked; try again", path, component)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return gofunc.Errorf(gofunc.CodeNotFound, "%s: no such file or directory", path)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return gofunc.Errorf(gofunc.CodeDenied, "%s: permission denied", path)
	}
	return gofunc.Errorf(gofunc.CodeModule, "%s: %v", path, err)
}

// Name returns the path the directory was opened by.
func (d *Dir) Name() string { return d.path }

// Close releases the directory.
func (d *Dir) Close() error { return d.f.Close() }

// Stat describes the directory itself.
func (d *Dir) Stat() (fs.FileInfo, error) { return d.f.Stat() }

// Sync flushes the directory's entries (a rename into it) to disk.
func (d *Dir) Sync() error { return d.f.Sync() }

// join is the path of name in d, for messages and *os.File names.
func (d *Dir) join(name string) string { return filepath.Join(d.path, name) }

// checkName refuses anything but a single file name.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%q is not a file name", name)
	}
	return nil
}

// pathError turns the error of an operation on name into a fault.
func (d *Dir) pathError(op, name string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, errSymlink):
		return gofunc.Errorf(gofunc.CodeConflict, "%s: %s is a symbolic link", op, d.join(name))
	case errors.Is(err, unix.ENOENT):
		return gofunc.Errorf(gofunc.CodeNotFound, "%s: %s: no such file or directory", op, d.join(name))
	case errors.Is(err, unix.EEXIST):
		return gofunc.Errorf(gofunc.CodeConflict, "%s: %s exists", op, d.join(name))
	case errors.Is(err, unix.ENOTDIR):
		return gofunc.Errorf(gofunc.CodeNotFound, "%s: %s: not a directory", op, d.join(name))
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return gofunc.Errorf(gofunc.CodeDenied, "%s: %s: permission denied", op, d.join(name))
	}
	return gofunc.Errorf(gofunc.CodeModule, "%s %s: %v", op, d.join(name), err)
}

// Lstat describes the entry name without following it.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fi, err := lstatAt(int(d.f.Fd()), name)
	if err != nil {
		return nil, d.pathError("lstat", name, err)
	}
	return fi, nil
}

// OpenFile opens the entry name with flag (os.O_RDONLY, os.O_CREATE|
// os.O_EXCL|os.O_RDWR, ...) and perm, never following a symbolic link.
func (d *Dir) OpenFile(name string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	for {
		fd, err := unix.Openat(int(d.f.Fd()), name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, d.pathError("open", name, symlinkAt(int(d.f.Fd()), name, err))
		}
		return os.NewFile(uintptr(fd), d.join(name)), nil
	}
}

// OpenRegular opens the entry name for reading, without following a
// symbolic link and without blocking on a FIFO, and makes sure it is a
// regular file (CodeBadArgs otherwise).
func (d *Dir) OpenRegular(name string) (*os.File, fs.FileInfo, error) {
	f, err := d.OpenFile(name, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	return regular(f)
}

// OpenDir opens the subdirectory name without following a symbolic
// link.
func (d *Dir) OpenDir(name string) (*Dir, error) {
	f, err := d.OpenFile(name, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	return &Dir{f: f, path: d.join(name)}, nil
}

// CreateTemp creates a new file named prefix + random + suffix, mode
// 0600, opened for reading and writing, and returns it with its name.
func (d *Dir) CreateTemp(prefix, suffix string) (*os.File, string, error) {
	for range 100 {
		name := prefix + strings.ToLower(rand.Text()[:12]) + suffix
		f, err := d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			return f, name, nil
		}
		if !errors.Is(err, gofunc.ErrConflict) { // a name taken: try another
			return nil, "", err
		}
	}
	return nil, "", gofunc.Errorf(gofunc.CodeModule, "create a temporary file in %s: too many attempts", d.path)
}

// Rename renames the entry from to to, both in d; to is replaced if it
// exists (a symbolic link there is replaced, not followed).
func (d *Dir) Rename(from, to string) error {
	if err := errors.Join(checkName(from), checkName(to)); err != nil {
		return err
	}
	fd := int(d.f.Fd())
	if err := unix.Renameat(fd, from, fd, to); err != nil {
		return d.pathError("rename", from, err)
	}
	return nil
}

// Link makes to a hard link to the entry from, both in d, without
// following from if it is a symbolic link. CodeConflict when to exists.
func (d *Dir) Link(from, to string) error {
	if err := errors.Join(checkName(from), checkName(to)); err != nil {
		return err
	}
	fd := int(d.f.Fd())
	if err := unix.Linkat(fd, from, fd, to, 0); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return d.pathError("link", to, err)
		}
		return d.pathError("link", from, err)
	}
	return nil
}

// Remove removes the entry name (not a directory).
func (d *Dir) Remove(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(int(d.f.Fd()), name, 0); err != nil {
		return d.pathError("remove", name, err)
	}
	return nil
}

// Readlink returns the target of the symbolic link name.
func (d *Dir) Readlink(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(int(d.f.Fd()), name, buf)
	if err != nil {
		return "", d.pathError("readlink", name, err)
	}
	return string(buf[:n]), nil
}

// Names returns the names of the directory's entries, in directory
// order.
func (d *Dir) Names() ([]string, error) {
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", d.path, err)
	}
	names, err := d.f.Readdirnames(-1)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", d.path, err)
	}
	return names, nil
}

// OpenRegular opens path for reading, without following a symbolic link
// anywhere in it (path is resolved, as ReadPath returns it, so a link in
// it was swapped in after the check: CodeConflict) and without blocking
// on a FIFO, and makes sure it is a regular file (CodeBadArgs otherwise;
// CodeNotFound when it is gone).
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	fd, err := walk(path, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, nil, err
	}
	return regular(os.NewFile(uintptr(fd), path))
}

// Lstat describes path, resolved as ReadPath, WritePath or EntryPath
// return it, without following a symbolic link anywhere in it: the last
// component is described as it is; a link before it is CodeConflict.
func Lstat(path string) (fs.FileInfo, error) {
	if path == "/" {
		return os.Lstat(path)
	}
	d, err := OpenDir(filepath.Dir(path))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Lstat(filepath.Base(path))
}

// regular checks that an open file is a regular file, closing it if not.
func regular(f *os.File) (*os.File, fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, gofunc.Errorf(gofunc.CodeModule, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s is not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	return f, fi, nil
}

// HashRegular opens path with OpenRegular and returns the hex SHA-256 of
// its content and the FileInfo of the file actually read. ctx is checked
// between reads, so a long hash stops with CodeCanceled once the call no
// longer wants it.
func HashRegular(ctx context.Context, path string) (sum string, fi fs.FileInfo, err error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	sum, err = HashFile(ctx, f)
	return sum, fi, err
}

// HashFile returns the hex SHA-256 of what is left to read of f.
func HashFile(ctx context.Context, f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, ctxReader{ctx, f}); err != nil {
		if ctx.Err() != nil {
			return "", gofunc.Errorf(gofunc.CodeCanceled, "checksum of %s interrupted", f.Name())
		}
		return "", gofunc.Errorf(gofunc.CodeModule, "read %s: %v", f.Name(), err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ModeBits returns mode's permission bits with setuid, setgid and sticky
// in their chmod(1) places: what "%04o" of it shows as "4755".
func ModeBits(mode fs.FileMode) uint32 {
	bits := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
