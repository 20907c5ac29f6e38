// Package mount is the gofunc "mount" module: it lists the host's mounts
// from /proc/self/mountinfo and mounts and unmounts filesystems by running
// mount(8) and umount(8) with an argv (never a shell).
//
// Register it with the minion:
//
//	srv.Register("mount", &mount.Module{AllowDirs: []string{"/mnt", "/media"}})
//
// mount.mount and mount.umount are Dangerous: a catch-all ACL grant does
// not cover them.
package mount

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/mountinfo"
	"github.com/gofunc/gofunc/internal/pathguard"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults of Module's fields.
const (
	DefaultMountInfo  = mountinfo.Default
	DefaultMountPath  = "/bin/mount"
	DefaultUmountPath = "/bin/umount"
)

// maxArgLen bounds the device, mountpoint and options arguments.
const maxArgLen = 4096

// Module is the mount module. Its exported fields are its configuration;
// the zero Module is ready to use. It is safe for concurrent use.
type Module struct {
	// MountInfo is the mountinfo file list reads; "" means
	// DefaultMountInfo ("/proc/self/mountinfo").
	MountInfo string
	// MountPath and UmountPath are the mount(8) and umount(8) binaries;
	// "" means DefaultMountPath ("/bin/mount") and DefaultUmountPath
	// ("/bin/umount").
	MountPath  string
	UmountPath string
	// AllowDirs, when not empty, limits mount and umount to mountpoints
	// that are these directories or inside them (after resolving symbolic
	// links of the mountpoint's parent). The mountpoint itself must then
	// be a directory, not a symbolic link, and mount(8) gets it as a
	// handle opened and checked beforehand, not as a path to resolve
	// again. Empty means any mountpoint, links followed.
	AllowDirs []string
}

// UmountOptions are umount's optional knobs.
type UmountOptions struct {
	// Lazy detaches the filesystem now and cleans up when it is no longer
	// busy (umount -l).
	Lazy bool `xmlrpc:"lazy"`
	// Force forces the unmount of an unreachable NFS server (umount -f).
	Force bool `xmlrpc:"force"`
}

// List returns the host's mounts, in mountinfo order.
func (m *Module) List(ctx context.Context) ([]Mount, error) {
	return mountinfo.Read(ctx, m.MountInfo, "mount.list")
}

// The mount table's format, shared with the disk and hardware modules
// (internal/mountinfo).
type (
	// Mount is one entry of /proc/self/mountinfo (see proc(5)). Paths
	// and the device are unescaped: "\040" in the file is a space here.
	Mount = mountinfo.Mount
	// ParseError reports the line (1-based) where parsing stopped; it
	// wraps ErrMalformed, ErrTooMany or bufio.ErrTooLong.
	ParseError = mountinfo.ParseError
)

// Limits and errors of ParseMountInfo.
const (
	MaxLineLen = mountinfo.MaxLineLen
	MaxMounts  = mountinfo.MaxMounts
)

// Errors of ParseMountInfo, wrapped by its *ParseError.
var (
	ErrMalformed = mountinfo.ErrMalformed
	ErrTooMany   = mountinfo.ErrTooMany
)

// ParseMountInfo parses the mountinfo format of proc(5). Blank lines are
// skipped; any other line that is not an entry fails with a *ParseError
// wrapping ErrMalformed. Lines longer than MaxLineLen and inputs with
// more than MaxMounts entries are refused.
func ParseMountInfo(r io.Reader) ([]Mount, error) { return mountinfo.Parse(r) }

// InventoryEntry is a mount as the inventory records it: a Mount without
// the numbers the kernel hands out when something is mounted (mount and
// parent ids, the anonymous device numbers of tmpfs and the like, peer
// group numbers), which differ after a remount of the very same thing.
type InventoryEntry struct {
	Mountpoint string `xmlrpc:"mountpoint"`
	Root       string `xmlrpc:"root"`
	Device     string `xmlrpc:"device"`
	Fstype     string `xmlrpc:"fstype"`
	// Options are the per-mount options ("rw,relatime").
	Options string `xmlrpc:"options"`
	// SuperOptions are the filesystem's own options ("rw,errors=remount-ro").
	SuperOptions string `xmlrpc:"super_options"`
	// Propagation holds the propagation types without their peer group
	// numbers: "shared", "master", "propagate_from", "unbindable".
	Propagation []string `xmlrpc:"propagation"`
}

// Inventory returns the mount table as InventoryEntry values sorted by
// mountpoint (mounts stacked on one mountpoint stay in mount order): two
// inventories are equal unless something was mounted, unmounted or
// remounted with other options.
func (m *Module) Inventory(ctx context.Context) ([]InventoryEntry, error) {
	mounts, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	inv := make([]InventoryEntry, 0, len(mounts))
	for _, mt := range mounts {
		e := InventoryEntry{Mountpoint: mt.Mountpoint, Root: mt.Root, Device: mt.Device, Fstype: mt.Fstype,
			Options: mt.Options, SuperOptions: mt.SuperOptions, Propagation: make([]string, 0, len(mt.Propagation))}
		for _, p := range mt.Propagation {
			kind, _, _ := strings.Cut(p, ":")
			e.Propagation = append(e.Propagation, kind)
		}
		inv = append(inv, e)
	}
	slices.SortStableFunc(inv, func(a, b InventoryEntry) int { return strings.Compare(a.Mountpoint, b.Mountpoint) })
	return inv, nil
}

// Mount mounts device on mountpoint, running
// "mount [-t fstype] [-o options] -- device mountpoint". fstype and
// options may be empty.
func (m *Module) Mount(ctx context.Context, device, mountpoint, fstype, options string) error {
	if err := checkDevice(device); err != nil {
		return err
	}
	if err := checkFstype(fstype); err != nil {
		return err
	}
	if err := checkOptions(options); err != nil {
		return err
	}
	dir, err := m.checkMountpoint(mountpoint)
	if err != nil {
		return err
	}
	bin := cmp.Or(m.MountPath, DefaultMountPath)
	if len(m.AllowDirs) == 0 {
		info, err := os.Stat(dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return gofunc.Errorf(gofunc.CodeNotFound, "mountpoint %q does not exist", dir)
		case err != nil:
			return gofunc.Errorf(gofunc.CodeModule, "mountpoint: %v", err)
		case !info.IsDir():
			return gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q is not a directory", dir)
		}
		return m.exec(ctx, mountArgv(bin, device, dir, fstype, options), nil)
	}
	// With an allow-list, mount(8) must not resolve the path again: a
	// symbolic link named as the mountpoint, or one swapped in for a
	// directory after the check, would take the mount outside the
	// allowed directories. The directory is opened without following
	// a link, its path as the kernel sees it checked again, and mount
	// gets it as /proc/self/fd/3 with its own canonicalization off.
	pinned, err := pinMountpoint(dir)
	if err != nil {
		return err
	}
	defer pinned.Close()
	argv := mountArgv(bin, device, pinnedPath, fstype, options)
	argv = slices.Insert(argv, 1, "--no-canonicalize")
	return m.exec(ctx, argv, []*os.File{pinned})
}

// pinnedPath is how mount(8) names the directory Mount pinned: the
// first of the files it inherits.
const pinnedPath = "/proc/self/fd/3"

// pinMountpoint opens dir, a checked mountpoint, as an O_PATH handle
// without following a final symbolic link, and checks that the
// directory it holds is still at dir: dir was checked against the
// allow-list, and the kernel's path of the handle names no link, so
// the handle is the directory that was checked.
func pinMountpoint(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, mountpointError(dir, err)
	}
	return checkHeld(os.NewFile(uintptr(fd), dir), fd, dir, dir)
}

// mountpointError says why dir could not be opened as a directory.
func mountpointError(dir string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return gofunc.Errorf(gofunc.CodeNotFound, "mountpoint %q does not exist", dir)
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		if info, lerr := os.Lstat(dir); lerr == nil && info.Mode()&fs.ModeSymlink != 0 {
			return gofunc.Errorf(gofunc.CodeDenied, "mountpoint %q is a symbolic link: with allowed directories set, name the directory itself", dir)
		}
		return gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q is not a directory", dir)
	}
	return gofunc.Errorf(gofunc.CodeModule, "mountpoint %q: %v", dir, err)
}

// Umount unmounts the filesystem mounted on mountpoint, running
// "umount [-l] [-f] -- mountpoint". opts is optional.
func (m *Module) Umount(ctx context.Context, mountpoint string, opts UmountOptions) error {
	dir, err := m.checkMountpoint(mountpoint)
	if err != nil {
		return err
	}
	// Look the mountpoint up in the table rather than stat it: stat on a
	// dead NFS server hangs, and that is when umount -f is needed.
	mounts, err := m.List(ctx)
	if err != nil {
		return err
	}
	if !isMounted(mounts, dir) {
		return gofunc.Errorf(gofunc.CodeNotFound, "nothing is mounted on %q", dir)
	}
	bin := cmp.Or(m.UmountPath, DefaultUmountPath)
	if len(m.AllowDirs) == 0 {
		return m.exec(ctx, umountArgv(bin, dir, opts), nil)
	}
	// With an allow-list, umount(8) must not resolve the checked path
	// again: a directory above the mountpoint renamed and replaced by
	// a link meanwhile would aim it at another mount. The parent is
	// held open (not the mountpoint: a handle on it would keep the
	// filesystem busy, and opening it can hang on a dead NFS server)
	// and checked, and the mountpoint named through it; a mountpoint
	// cannot itself be renamed or replaced while mounted.
	parent, err := pinParent(dir)
	if err != nil {
		return err
	}
	defer parent.Close()
	argv := umountArgv(bin, pinnedPath+"/"+filepath.Base(dir), opts)
	argv = slices.Insert(argv, 1, "--no-canonicalize")
	return m.exec(ctx, argv, []*os.File{parent})
}

// pinParent opens the directory holding dir, a checked mountpoint, as
// an O_PATH handle and checks that it is still where dir says.
func pinParent(dir string) (*os.File, error) {
	want := filepath.Dir(dir)
	fd, err := unix.Open(want, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "mountpoint %q: %v", dir, err)
	}
	return checkHeld(os.NewFile(uintptr(fd), want), fd, dir, want)
}

// checkHeld returns f, the handle of path opened as fd, if the kernel
// still places it at path; otherwise it closes f and refuses the call
// about mountpoint.
func checkHeld(f *os.File, fd int, mountpoint, path string) (*os.File, error) {
	held, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		f.Close()
		return nil, gofunc.Errorf(gofunc.CodeModule, "mountpoint %q: %v", mountpoint, err)
	}
	if held != path {
		f.Close()
		return nil, gofunc.Errorf(gofunc.CodeDenied, "mountpoint %q changed while it was checked (%q is now %q)", mountpoint, path, held)
	}
	return f, nil
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	mountpoint := gofunc.ArgDoc{Name: "mountpoint", Type: "string", Description: "absolute directory path"}
	return gofunc.ModuleDoc{
		Description: "List, mount and unmount filesystems.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List": {Description: "The mount table: [{id, parent_id, major_minor, root, mountpoint, options, " +
				"propagation, fstype, device, super_options}]."},
			"Inventory": {Description: "The mount table without kernel-assigned numbers, sorted by mountpoint: " +
				"[{mountpoint, root, device, fstype, options, super_options, propagation}]."},
			"Mount": {
				Description: "Mount a filesystem (mount -t fstype -o options -- device mountpoint).",
				Dangerous:   true,
				Args: []gofunc.ArgDoc{
					{Name: "device", Type: "string", Description: "source: /dev/sdb1, UUID=..., server:/export, tmpfs"},
					mountpoint,
					{Name: "fstype", Type: "string", Description: "filesystem type (ext4, nfs, tmpfs); empty lets mount guess",
						Optional: true, Default: ""},
					{Name: "options", Type: "string", Description: "comma-separated mount options (secret: cifs and others take credentials here)", Optional: true, Default: "", Secret: true},
				},
			},
			"Umount": {
				Description: "Unmount the filesystem on mountpoint.",
				Dangerous:   true,
				Args: []gofunc.ArgDoc{
					mountpoint,
					{Name: "options", Type: "struct", Description: "{lazy: bool, force: bool}", Optional: true},
				},
			},
		},
	}
}

// exec runs argv, handing it files as fds 3, 4, ..., and turns a
// failure into a fault carrying the tool's message.
func (m *Module) exec(ctx context.Context, argv []string, files []*os.File) error {
	res, err := procrun.Run(ctx, procrun.Spec{Argv: argv, Env: procrun.ToolEnv(), Tool: true, ExtraFiles: files})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return res.Fault(gofunc.CodeModule, filepath.Base(argv[0]))
	}
	return nil
}

func mountArgv(bin, device, dir, fstype, options string) []string {
	argv := []string{bin}
	if fstype != "" {
		argv = append(argv, "-t", fstype)
	}
	if options != "" {
		argv = append(argv, "-o", options)
	}
	return append(argv, "--", device, dir)
}

func umountArgv(bin, dir string, opts UmountOptions) []string {
	argv := []string{bin}
	if opts.Lazy {
		argv = append(argv, "-l")
	}
	if opts.Force {
		argv = append(argv, "-f")
	}
	return append(argv, "--", dir)
}

func isMounted(mounts []Mount, dir string) bool {
	for _, mt := range mounts {
		if mt.Mountpoint == dir {
			return true
		}
	}
	return false
}

var fstypeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._+-]{0,63}$`)

func checkFstype(fstype string) error {
	if fstype != "" && !fstypeRE.MatchString(fstype) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "fstype %q is not a filesystem type name", fstype)
	}
	return nil
}

func checkDevice(device string) error {
	switch {
	case device == "":
		return gofunc.Errorf(gofunc.CodeBadArgs, "device is empty")
	case len(device) > maxArgLen:
		return gofunc.Errorf(gofunc.CodeBadArgs, "device is longer than %d bytes", maxArgLen)
	case strings.HasPrefix(device, "-"):
		return gofunc.Errorf(gofunc.CodeBadArgs, "device %q starts with '-'", device)
	case !printable(device):
		return gofunc.Errorf(gofunc.CodeBadArgs, "device %q contains control characters or invalid UTF-8", device)
	}
	return nil
}

// checkOptions accepts a comma-separated list of non-empty options made of
// printable ASCII without spaces, such as `size=10m,mode=0755` or
// `context="system_u:object_r:tmp_t:s0"`.
func checkOptions(options string) error {
	if options == "" {
		return nil
	}
	if len(options) > maxArgLen {
		return gofunc.Errorf(gofunc.CodeBadArgs, "options are longer than %d bytes", maxArgLen)
	}
	if strings.HasPrefix(options, "-") {
		return gofunc.Errorf(gofunc.CodeBadArgs, "options %q start with '-'", options)
	}
	for _, opt := range strings.Split(options, ",") {
		if opt == "" {
			return gofunc.Errorf(gofunc.CodeBadArgs, "options %q contain an empty option", options)
		}
		for _, c := range []byte(opt) {
			if c <= ' ' || c >= 0x7f {
				return gofunc.Errorf(gofunc.CodeBadArgs, "options %q contain a space, control or non-ASCII byte", options)
			}
		}
	}
	return nil
}

// checkMountpoint validates and cleans mountpoint and, when AllowDirs is
// set, resolves its parent's symbolic links and checks the result is
// inside an allowed directory. It returns the path to hand to the tool.
func (m *Module) checkMountpoint(mountpoint string) (string, error) {
	switch {
	case mountpoint == "":
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint is empty")
	case len(mountpoint) > maxArgLen:
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint is longer than %d bytes", maxArgLen)
	case !filepath.IsAbs(mountpoint):
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q is not an absolute path", mountpoint)
	case !printable(mountpoint):
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q contains control characters or invalid UTF-8", mountpoint)
	}
	dir := filepath.Clean(mountpoint)
	if dir == "/" {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint is the root directory")
	}
	guard, err := pathguard.New(m.AllowDirs)
	if err != nil {
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "mount is misconfigured: %v", err)
	}
	if !guard.Restricted() {
		return dir, nil // handed to the tool as the caller wrote it
	}
	// An allowed directory may itself be a mountpoint; a path whose
	// parent is missing is denied, not reported missing, when it lies
	// outside the allowed directories.
	return guard.EntryPath(dir)
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
