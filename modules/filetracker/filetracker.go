// Package filetracker is the gofunc "filetracker" module: it keeps a list
// of tracked files and directories, records their state (SHA-256, size,
// mode, owner, mtime) when asked to scan, and reports what changed since
// the last scan.
//
//	srv.Register("filetracker", &filetracker.Module{StateDir: "/var/lib/gofunc/filetracker"})
//
// The workflow is: track paths, scan (the baseline), later diff (what
// changed since the baseline, read-only), and scan again to accept the
// changes as the new baseline. Directories are tracked recursively
// without following symbolic links (not even one swapped in for a
// directory during the scan: each directory is opened through its
// parent's descriptor); a scan covers at most MaxFiles entries, 100
// levels deep, and hashes files up to MaxHashSize bytes.
package filetracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/pathguard"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults of Module's fields.
const (
	DefaultStateDir    = "/var/lib/gofunc/filetracker"
	DefaultMaxFiles    = 10_000
	DefaultMaxHashSize = 64 << 20
)

// State file names inside StateDir.
const (
	trackedFile  = "tracked.json"
	snapshotFile = "snapshot.json"
)

// maxPathLen bounds a tracked path.
const maxPathLen = 4096

// Module is the filetracker module. Its exported fields are its
// configuration; the zero Module is ready to use. It is safe for
// concurrent use.
type Module struct {
	// StateDir holds the tracked list and the last scan (files 0600,
	// directory 0700, written atomically); "" means DefaultStateDir
	// ("/var/lib/gofunc/filetracker").
	StateDir string
	// MaxFiles bounds the tracked paths and the entries one scan
	// records; 0 means DefaultMaxFiles (10000). A scan that reaches it
	// stops and says Truncated.
	MaxFiles int
	// MaxHashSize is the largest file hashed; larger files are recorded
	// with HashSkipped. 0 means DefaultMaxHashSize (64 MiB).
	MaxHashSize int64
	// AllowDirs, when not empty, limits tracking to paths inside these
	// directories (after resolving the symbolic links of the path's
	// parent). Empty means any path.
	AllowDirs []string

	mu sync.Mutex // guards the state files
}

// FileState is the recorded state of one path.
type FileState struct {
	Path   string `xmlrpc:"path"`
	Exists bool   `xmlrpc:"exists"`
	Type   string `xmlrpc:"type"` // "file", "dir", "symlink" or "other" (device, socket, fifo)
	// SHA256 is the hex digest of a regular file's content; "" for other
	// types and for files not hashed.
	SHA256 string `xmlrpc:"sha256"`
	// HashSkipped is set for a regular file larger than MaxHashSize or
	// that could not be read.
	HashSkipped bool      `xmlrpc:"hash_skipped"`
	Size        int64     `xmlrpc:"size"`
	Mode        string    `xmlrpc:"mode"` // octal permission bits with setuid/setgid/sticky: "0644", "4755"
	UID         int64     `xmlrpc:"uid"`
	GID         int64     `xmlrpc:"gid"`
	Mtime       time.Time `xmlrpc:"mtime"`
	Target      string    `xmlrpc:"target"` // a symbolic link's target
}

// Snapshot is the state of every tracked path at one time.
type Snapshot struct {
	Taken time.Time   `xmlrpc:"taken"`
	Files []FileState `xmlrpc:"files"` // sorted by path
	// Truncated is set when MaxFiles entries were recorded and the scan
	// stopped.
	Truncated bool `xmlrpc:"truncated"`
}

// Changes is what differs between the last scan and now.
type Changes struct {
	Since    time.Time      `xmlrpc:"since"` // when the last scan was taken
	Added    []FileState    `xmlrpc:"added"`
	Removed  []FileState    `xmlrpc:"removed"` // as they were at the last scan
	Modified []Modification `xmlrpc:"modified"`
}

// Modification is a path present in both scans whose state differs.
type Modification struct {
	Path string `xmlrpc:"path"`
	// Changed names the attributes that differ: "type", "sha256", "size",
	// "mode", "uid", "gid", "mtime", "target".
	Changed []string  `xmlrpc:"changed"`
	Before  FileState `xmlrpc:"before"`
	After   FileState `xmlrpc:"after"`
}

// Track adds path to the tracked list. It must exist; tracking a tracked
// path again does nothing.
func (m *Module) Track(ctx context.Context, path string) error {
	clean, err := m.checkPath(path)
	if err != nil {
		return err
	}
	lstat := os.Lstat
	if len(m.AllowDirs) > 0 {
		lstat = pathguard.Lstat // clean's parent is resolved: follow no link swapped in since
	}
	if _, err := lstat(clean); errors.Is(err, fs.ErrNotExist) || errors.Is(err, gofunc.ErrNotFound) {
		return gofunc.Errorf(gofunc.CodeNotFound, "path %q does not exist", clean)
	} else if err != nil {
		return gofunc.Errorf(gofunc.CodeModule, "path %q: %v", clean, err)
	}
	return m.editTracked(ctx, func(tracked []string) ([]string, error) {
		if slices.Contains(tracked, clean) {
			return nil, nil
		}
		if len(tracked) >= m.maxFiles() {
			return nil, gofunc.Errorf(gofunc.CodeTooLarge, "already tracking %d paths", len(tracked))
		}
		tracked = append(tracked, clean)
		slices.Sort(tracked)
		return tracked, nil
	})
}

// Untrack removes path from the tracked list, or fails with CodeNotFound.
func (m *Module) Untrack(ctx context.Context, path string) error {
	clean, err := checkSyntax(path)
	if err != nil {
		return err
	}
	return m.editTracked(ctx, func(tracked []string) ([]string, error) {
		i := slices.Index(tracked, clean)
		if i < 0 && len(m.AllowDirs) > 0 {
			// Track stored the path with its parent's links resolved.
			if resolved, err := m.checkPath(clean); err == nil {
				i = slices.Index(tracked, resolved)
			}
		}
		if i < 0 {
			return nil, gofunc.Errorf(gofunc.CodeNotFound, "path %q is not tracked", clean)
		}
		return slices.Delete(tracked, i, i+1), nil
	})
}

// List returns the tracked paths, sorted.
func (m *Module) List(ctx context.Context) ([]string, error) {
	if ctx.Err() != nil {
		return nil, procrun.ContextFault(ctx, "filetracker")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadTracked()
}

// Scan records the current state of every tracked path as the new
// baseline for diff, and returns it.
func (m *Module) Scan(ctx context.Context) (Snapshot, error) {
	snap, err := m.current(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.save(snapshotFile, snap); err != nil {
		return Snapshot{}, err
	}
	return snap, nil
}

// Inventory is the current state of the tracked paths: a Snapshot
// without the time it was taken, so that two inventories are equal
// unless a tracked file changed.
type Inventory struct {
	Files []FileState `xmlrpc:"files"` // sorted by path
	// Truncated is set when MaxFiles entries were recorded and the scan
	// stopped.
	Truncated bool `xmlrpc:"truncated"`
}

// Inventory returns the current state of every tracked path without
// recording it.
func (m *Module) Inventory(ctx context.Context) (Inventory, error) {
	snap, err := m.current(ctx)
	if err != nil {
		return Inventory{}, err
	}
	return Inventory{Files: snap.Files, Truncated: snap.Truncated}, nil
}

// current takes a snapshot of every tracked path.
func (m *Module) current(ctx context.Context) (Snapshot, error) {
	tracked, err := m.List(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	return m.snapshot(ctx, tracked)
}

// Diff compares the current state with the last scan, without recording
// anything. It fails with CodeNotFound before the first scan.
func (m *Module) Diff(ctx context.Context) (Changes, error) {
	m.mu.Lock()
	var before Snapshot
	found, err := m.load(snapshotFile, &before)
	m.mu.Unlock()
	if err != nil {
		return Changes{}, err
	}
	if !found {
		return Changes{}, gofunc.Errorf(gofunc.CodeNotFound, "no scan yet: call scan first")
	}
	now, err := m.current(ctx)
	if err != nil {
		return Changes{}, err
	}
	return compare(before, now), nil
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	path := gofunc.ArgDoc{Name: "path", Type: "string", Description: "absolute path of a file or directory"}
	return gofunc.ModuleDoc{
		Description: "Track files and directories and report how they change (content hash, size, mode, owner, mtime).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Track":   {Description: "Track a path (directories recursively).", Args: []gofunc.ArgDoc{path}},
			"Untrack": {Description: "Stop tracking a path.", Args: []gofunc.ArgDoc{path}},
			"List":    {Description: "The tracked paths."},
			"Scan": {Description: "Record the current state as the baseline and return it: {taken, files[{path, exists, type, " +
				"sha256, hash_skipped, size, mode, uid, gid, mtime, target}], truncated}."},
			"Diff": {Description: "What changed since the last scan: {since, added[], removed[], " +
				"modified[{path, changed[], before, after}]}; records nothing."},
			"Inventory": {Description: "The current state without recording it: {files[], truncated}, as scan() " +
				"returns it but without the time taken."},
		},
	}
}

// snapshot records every tracked path, directories recursively, up to
// MaxFiles entries.
func (m *Module) snapshot(ctx context.Context, tracked []string) (Snapshot, error) {
	snap := Snapshot{Taken: time.Now().UTC(), Files: []FileState{}}
	seen := map[string]bool{}
	limit := m.maxFiles()
	errFull := errors.New("full")
	add := func(st FileState) error {
		if seen[st.Path] {
			return nil
		}
		if len(snap.Files) == limit {
			snap.Truncated = true
			return errFull
		}
		seen[st.Path] = true
		snap.Files = append(snap.Files, st)
		return nil
	}
	for _, root := range tracked {
		err := m.walkRoot(ctx, root, add)
		if errors.Is(err, errFull) {
			break
		}
		if err != nil { // only ctx ends a walk early
			return Snapshot{}, procrun.ContextFault(ctx, "filetracker")
		}
	}
	slices.SortFunc(snap.Files, func(a, b FileState) int { return strings.Compare(a.Path, b.Path) })
	return snap, nil
}

// maxDepth bounds how deep a scan descends below a tracked directory (it
// holds one descriptor per level).
const maxDepth = 100

// walkRoot records a tracked path and, when it is a directory, what is
// below it. The path's parent is resolved again and, with AllowDirs,
// checked again; from there on the walk opens each directory through its
// parent's descriptor without following a symbolic link, so a directory
// swapped for a link meanwhile is recorded as the link it has become,
// and what the link leads to is never listed or hashed. Entries are
// recorded under the tracked path as it was given.
func (m *Module) walkRoot(ctx context.Context, root string, add func(FileState) error) error {
	canon, err := m.canonical(root)
	if err != nil {
		return add(FileState{Path: root})
	}
	if canon == "/" {
		dir, err := pathguard.OpenDir("/")
		if err != nil {
			return add(FileState{Path: root})
		}
		defer dir.Close()
		if err := add(FileState{Path: root, Exists: true, Type: "dir"}); err != nil {
			return err
		}
		return m.walkDir(ctx, dir, root, 1, add)
	}
	parent, err := pathguard.OpenDir(filepath.Dir(canon))
	if err != nil {
		return add(FileState{Path: root})
	}
	defer parent.Close()
	return m.walk(ctx, parent, filepath.Base(canon), root, 0, add)
}

// canonical is root with its parent's symbolic links resolved now (and
// checked against AllowDirs when set).
func (m *Module) canonical(root string) (string, error) {
	if len(m.AllowDirs) > 0 {
		return m.checkPath(root)
	}
	if root == "/" {
		return root, nil
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(root))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(root)), nil
}

// walk records the entry name of dir, shown as path, and descends into
// it when it is a directory.
func (m *Module) walk(ctx context.Context, dir *pathguard.Dir, name, path string, depth int, add func(FileState) error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	st := m.stat(ctx, dir, name, path)
	if err := add(st); err != nil {
		return err
	}
	if st.Type != "dir" || depth >= maxDepth {
		return nil
	}
	sub, err := dir.OpenDir(name)
	if err != nil {
		return nil // swapped for a link, gone or unreadable: recorded, contents unknown
	}
	defer sub.Close()
	return m.walkDir(ctx, sub, path, depth+1, add)
}

// walkDir walks the entries of dir, shown as path, in lexical order.
func (m *Module) walkDir(ctx context.Context, dir *pathguard.Dir, path string, depth int, add func(FileState) error) error {
	names, err := dir.Names()
	if err != nil {
		return nil // unreadable: recorded, contents unknown
	}
	slices.Sort(names)
	for _, n := range names {
		if err := m.walk(ctx, dir, n, filepath.Join(path, n), depth, add); err != nil {
			return err
		}
	}
	return nil
}

// stat records the entry name of dir, shown as path, without following a
// symbolic link; a regular file is hashed through the descriptor it was
// described by.
func (m *Module) stat(ctx context.Context, dir *pathguard.Dir, name, path string) FileState {
	st := FileState{Path: path}
	info, err := dir.Lstat(name)
	if err != nil {
		return st // vanished since the directory was read
	}
	if info.Mode().IsRegular() && info.Size() <= m.maxHashSize() {
		if f, fi, err := dir.OpenRegular(name); err == nil {
			if sum, err := pathguard.HashFile(ctx, f); err == nil {
				st.SHA256, info = sum, fi
			}
			f.Close()
		}
	}
	st.Exists = true
	st.Size = info.Size()
	st.Mtime = info.ModTime().UTC()
	st.Mode = fmt.Sprintf("%04o", pathguard.ModeBits(info.Mode()))
	if sys, ok := info.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = int64(sys.Uid), int64(sys.Gid)
	}
	switch {
	case info.Mode().IsRegular():
		st.Type = "file"
		st.HashSkipped = st.SHA256 == ""
	case info.IsDir():
		st.Type = "dir"
	case info.Mode()&fs.ModeSymlink != 0:
		st.Type = "symlink"
		st.Target, _ = dir.Readlink(name)
	default:
		st.Type = "other"
	}
	return st
}

// compare lists what differs between two snapshots. Paths recorded as
// not existing count as absent.
func compare(before, after Snapshot) Changes {
	ch := Changes{Since: before.Taken, Added: []FileState{}, Removed: []FileState{}, Modified: []Modification{}}
	old := map[string]FileState{}
	for _, f := range before.Files {
		if f.Exists {
			old[f.Path] = f
		}
	}
	for _, f := range after.Files {
		if !f.Exists {
			continue
		}
		prev, ok := old[f.Path]
		delete(old, f.Path)
		if !ok {
			ch.Added = append(ch.Added, f)
			continue
		}
		if changed := differences(prev, f); len(changed) > 0 {
			ch.Modified = append(ch.Modified, Modification{Path: f.Path, Changed: changed, Before: prev, After: f})
		}
	}
	for _, f := range before.Files {
		if _, gone := old[f.Path]; gone {
			ch.Removed = append(ch.Removed, f)
		}
	}
	return ch
}

func differences(a, b FileState) []string {
	var changed []string
	check := func(name string, differs bool) {
		if differs {
			changed = append(changed, name)
		}
	}
	check("type", a.Type != b.Type)
	check("sha256", a.SHA256 != b.SHA256)
	check("size", a.Size != b.Size)
	check("mode", a.Mode != b.Mode)
	check("uid", a.UID != b.UID)
	check("gid", a.GID != b.GID)
	check("mtime", !a.Mtime.Equal(b.Mtime))
	check("target", a.Target != b.Target)
	return changed
}

// checkSyntax validates a path argument and returns it cleaned.
func checkSyntax(path string) (string, error) {
	switch {
	case path == "" || len(path) > maxPathLen:
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path must be 1 to %d bytes", maxPathLen)
	case !filepath.IsAbs(path):
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path %q is not absolute", path)
	case !utf8.ValidString(path) || strings.ContainsFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "path %q contains control characters or invalid UTF-8", path)
	}
	return filepath.Clean(path), nil
}

// checkPath validates path and, when AllowDirs is set, checks it lies
// inside an allowed directory once its parent's symbolic links are
// resolved; it returns the path to track.
func (m *Module) checkPath(path string) (string, error) {
	clean, err := checkSyntax(path)
	if err != nil || len(m.AllowDirs) == 0 {
		return clean, err
	}
	guard, err := pathguard.New(m.AllowDirs)
	if err != nil {
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "filetracker is misconfigured: %v", err)
	}
	// A tracked symbolic link is recorded as a link, so only the parent
	// is resolved; an allowed directory itself may be tracked.
	return guard.EntryPath(clean)
}

// editTracked loads the tracked list under the lock, hands it to edit and
// saves the list edit returns; a nil list (or an error) saves nothing.
func (m *Module) editTracked(ctx context.Context, edit func(tracked []string) ([]string, error)) error {
	if ctx.Err() != nil {
		return procrun.ContextFault(ctx, "filetracker")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tracked, err := m.loadTracked()
	if err != nil {
		return err
	}
	if tracked, err = edit(tracked); err != nil || tracked == nil {
		return err
	}
	return m.save(trackedFile, tracked)
}

func (m *Module) loadTracked() ([]string, error) {
	tracked := []string{}
	if _, err := m.load(trackedFile, &tracked); err != nil {
		return nil, err
	}
	if tracked == nil {
		tracked = []string{}
	}
	return tracked, nil
}

// load decodes a state file into v; found is false if it does not exist yet.
func (m *Module) load(name string, v any) (found bool, err error) {
	b, err := os.ReadFile(filepath.Join(m.stateDir(), name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, gofunc.Errorf(gofunc.CodeModule, "filetracker state: %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, gofunc.Errorf(gofunc.CodeModule, "filetracker state %s is corrupt: %v", name, err)
	}
	return true, nil
}

// save writes a state file atomically: a 0600 temporary file in the same
// directory, synced, then renamed over the old one.
func (m *Module) save(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return gofunc.Errorf(gofunc.CodeModule, "filetracker state: %v", err)
	}
	dir := m.stateDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return gofunc.Errorf(gofunc.CodeModule, "filetracker state: %v", err)
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, name), b, 0o600); err != nil {
		return gofunc.Errorf(gofunc.CodeModule, "filetracker state: %v", err)
	}
	return nil
}

func (m *Module) stateDir() string {
	if m.StateDir == "" {
		return DefaultStateDir
	}
	return m.StateDir
}

func (m *Module) maxFiles() int {
	if m.MaxFiles <= 0 {
		return DefaultMaxFiles
	}
	return m.MaxFiles
}

func (m *Module) maxHashSize() int64 {
	if m.MaxHashSize <= 0 {
		return DefaultMaxHashSize
	}
	return m.MaxHashSize
}
