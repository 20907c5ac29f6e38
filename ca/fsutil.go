package ca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// writeFileAtomic replaces path with data so that a reader (or a crash)
// sees either the old file or the new one, never a torn mix: the bytes go
// to a temporary file in the same directory, are fsynced, renamed over
// path, and the directory is fsynced so the rename itself is durable.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	// CreateTemp makes the file 0600; Chmod sets the intended mode before
	// any data lands, so a secret is never readable by others even briefly.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

// syncDir fsyncs a directory so that renames and creations in it survive
// a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// dirLock is the CA directory's mutual exclusion: a sync.Mutex for
// goroutines of this process (flock locks belong to the open file
// description, so two goroutines sharing one descriptor would not exclude
// each other) and flock(2) on DIR/lock for other processes, such as the
// certmaster daemon and an admin's certmaster command signing at the same
// moment.
type dirLock struct {
	path string
	mu   sync.Mutex
}

// lockShared and lockExclusive choose the flock mode.
const (
	lockShared    = syscall.LOCK_SH
	lockExclusive = syscall.LOCK_EX
)

// lock takes the lock in the given mode and returns the function that
// releases it. Readers take a shared lock so a listing never sees one
// half of a multi-file update.
func (l *dirLock) lock(mode int) (unlock func(), err error) {
	l.mu.Lock()
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("ca: open lock file: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), mode)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		l.mu.Unlock()
		return nil, fmt.Errorf("ca: lock %s: %w", l.path, err)
	}
	return func() {
		// Closing the descriptor releases the flock.
		f.Close()
		l.mu.Unlock()
	}, nil
}
