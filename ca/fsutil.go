package ca

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

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
