package ca

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
)

// dirLock is the CA directory's mutual exclusion: a semaphore for
// goroutines of this process (flock locks belong to the open file
// description, so two goroutines sharing one descriptor would not exclude
// each other) and flock(2) on DIR/lock for other processes, such as the
// certmaster daemon and an admin's certmaster command signing at the same
// moment. Both waits end with the caller's context: the lock is held for
// one txn at a time, but another process may hold it for as long as it
// likes (a `certmaster revoke` stopped with ^Z), and a certmaster must
// not pile up calls nobody waits for any more.
type dirLock struct {
	path string
	// held has room for one: the goroutine of this process that holds
	// the lock. A channel, not a sync.Mutex, so that the wait can end.
	held chan struct{}
}

func newDirLock(path string) *dirLock { return &dirLock{path: path, held: make(chan struct{}, 1)} }

// lockShared and lockExclusive choose the flock mode.
const (
	lockShared    = syscall.LOCK_SH
	lockExclusive = syscall.LOCK_EX
)

// lock takes the lock in the given mode and returns the function that
// releases it, or ctx's error if ctx ends first. Readers take a shared
// lock so a listing never sees one half of a multi-file update.
func (l *dirLock) lock(ctx context.Context, mode int) (unlock func(), err error) {
	select {
	case l.held <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("ca: lock %s: %w", l.path, ctx.Err())
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		<-l.held
		return nil, fmt.Errorf("ca: open lock file: %w", err)
	}
	if err := flockContext(ctx, f, mode); err != nil {
		<-l.held
		return nil, fmt.Errorf("ca: lock %s: %w", l.path, err)
	}
	return func() {
		// Closing the descriptor releases the flock.
		f.Close()
		<-l.held
	}, nil
}

// flockContext takes the flock on f, or returns ctx's error if another
// process holds it until ctx ends. On error f is closed.
func flockContext(ctx context.Context, f *os.File, mode int) error {
	err := flock(f, mode|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return waitFlock(ctx, f, mode)
	}
	if err != nil {
		f.Close()
	}
	return err
}

// waitFlock waits for the flock on f. flock(2) cannot be interrupted, so
// the wait runs in a goroutine; when ctx ends first, that goroutine
// waits on until the other process lets go and then releases the lock
// at once by closing f.
func waitFlock(ctx context.Context, f *os.File, mode int) error {
	got := make(chan error) // unbuffered: a send succeeds only while waitFlock waits
	go func() {
		err := flock(f, mode)
		select {
		case got <- err:
		case <-ctx.Done():
			f.Close()
		}
	}()
	select {
	case err := <-got:
		if err != nil {
			f.Close()
		}
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flock is flock(2), retried when a signal interrupts it.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
