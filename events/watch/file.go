package watch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/internal/pathguard"
)

// DefaultMaxHashSize is the largest file a file watcher hashes.
const DefaultMaxHashSize = 64 << 20

// File watches a path (type "file"): an event when it is created or
// deleted, or its content (SHA-256), size, mode, owner, type or link
// target changes. It does not follow a symbolic link: the link itself
// is watched.
//
// Every interval the path is hashed: that is the truth, and it catches
// what notification misses (network filesystems, changes made while the
// minion was down, when Options.StateDir keeps the last state). With
// Notify (the default) the path's directory is also watched with
// inotify, so a change is reported within moments instead of at the
// next interval.
type File struct {
	// Path is the absolute path watched.
	Path string `toml:"path"`
	// NoNotify turns off the inotify wake-up (notify = false in
	// gofunc.toml): changes are then seen at the next interval.
	NoNotify bool `toml:"-"`
	// MaxHashSize is the largest file hashed; a larger one is compared
	// by size and modification time instead. Zero means
	// DefaultMaxHashSize (64 MiB).
	MaxHashSize int64 `toml:"max_hash_size"`
}

// Type implements Check.
func (*File) Type() string { return "file" }

func (*File) defaultEvery() time.Duration { return time.Minute }

func (f *File) validate() error {
	switch {
	case !filepath.IsAbs(f.Path) || filepath.Clean(f.Path) != f.Path || len(f.Path) > 4096:
		return fmt.Errorf("file: path %q is not a clean absolute path", f.Path)
	case f.MaxHashSize < 0:
		return fmt.Errorf("file: max_hash_size %d", f.MaxHashSize)
	}
	return nil
}

func (f *File) start(e *env) (source, error) {
	s := &fileSource{path: f.Path, maxHash: f.MaxHashSize}
	if s.maxHash == 0 {
		s.maxHash = DefaultMaxHashSize
	}
	if f.NoNotify {
		return s, nil
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(filepath.Dir(f.Path))
		if err != nil {
			w.Close()
		}
	}
	if err != nil {
		e.logger.Warn("file watcher without inotify; changes are seen at each interval", "path", f.Path, "error", err)
		return s, nil
	}
	s.notify, s.done = w, make(chan struct{})
	go s.forward(e.trigger)
	return s, nil
}

type fileSource struct {
	path    string
	maxHash int64
	notify  *fsnotify.Watcher
	done    chan struct{}
}

// A burst of inotify events about the path (an in-place rewrite is a
// truncation and then one event per write) becomes one check once the
// path has been quiet for notifySettle, or notifyMaxDelay after the
// burst began if it goes on: a check in the middle of the burst would
// report a half-written file and then the whole one, two events for one
// change.
var (
	notifySettle   = 200 * time.Millisecond
	notifyMaxDelay = 2 * time.Second
)

// forward turns inotify events about the path into checks, until the
// watcher is closed.
func (s *fileSource) forward(trigger chan struct{}) {
	defer close(s.done)
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	var burst time.Time // when the pending burst began; zero if none
	wake := func() {
		now := time.Now()
		if burst.IsZero() {
			burst = now
		}
		settle.Reset(min(notifySettle, max(0, burst.Add(notifyMaxDelay).Sub(now))))
	}
	for {
		select {
		case ev, ok := <-s.notify.Events:
			if !ok {
				return
			}
			if ev.Name == s.path {
				wake()
			}
		case _, ok := <-s.notify.Errors:
			if !ok {
				return
			}
			wake() // an overflow: look, rather than guess
		case <-settle.C:
			burst = time.Time{}
			poke(trigger)
		}
	}
}

func (s *fileSource) close() error {
	if s.notify == nil {
		return nil
	}
	err := s.notify.Close()
	<-s.done
	return err
}

func (s *fileSource) observe(ctx context.Context, prev events.Data) (string, events.Data, error) {
	now, mtime, err := s.stat(ctx)
	if err != nil {
		return "", nil, err
	}
	d := &events.FileChanged{Path: s.path, Now: now}
	if p, ok := prev.(*events.FileChanged); ok {
		was := p.Now
		d.Was = &was
		d.Changed = changes(was, now)
	}
	key, _ := json.Marshal(now)
	if now.Exists && now.Type == "file" && now.SHA256 == "" {
		key = fmt.Appendf(key, "@%d", mtime.UnixNano()) // too big to hash
	}
	return string(key), d, nil
}

// stat records the path's state without following a symbolic link.
func (s *fileSource) stat(ctx context.Context) (events.FileState, time.Time, error) {
	fi, err := os.Lstat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return events.FileState{}, time.Time{}, nil
	}
	if err != nil {
		return events.FileState{}, time.Time{}, err
	}
	st := events.FileState{Exists: true, Size: fi.Size(), Mode: fmt.Sprintf("%04o", pathguard.ModeBits(fi.Mode()))}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.UID, st.GID = int(sys.Uid), int(sys.Gid)
	}
	switch {
	case fi.Mode().IsRegular():
		st.Type = "file"
		if fi.Size() <= s.maxHash {
			if st.SHA256, err = hashFile(ctx, s.path); err != nil {
				return events.FileState{}, time.Time{}, err
			}
		}
	case fi.IsDir():
		st.Type, st.Size = "dir", 0
	case fi.Mode()&fs.ModeSymlink != 0:
		st.Type = "symlink"
		st.Target, _ = os.Readlink(s.path)
	default:
		st.Type = "other"
	}
	return st, fi.ModTime(), nil
}

// hashFile hashes a regular file, refusing anything else that took its
// place since it was looked at (a FIFO would block the read).
func hashFile(ctx context.Context, path string) (string, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s changed while it was read", path)
	}
	return pathguard.HashFile(ctx, f)
}

// changes names what differs between two states.
func changes(was, now events.FileState) []string {
	switch {
	case !was.Exists && now.Exists:
		return []string{"created"}
	case was.Exists && !now.Exists:
		return []string{"deleted"}
	case was.Type != now.Type:
		return []string{"type"}
	}
	var c []string
	add := func(differ bool, what string) {
		if differ {
			c = append(c, what)
		}
	}
	add(was.SHA256 != now.SHA256, "content")
	add(was.Size != now.Size, "size")
	add(was.Mode != now.Mode, "mode")
	add(was.UID != now.UID || was.GID != now.GID, "owner")
	add(was.Target != now.Target, "target")
	return c
}
