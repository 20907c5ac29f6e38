//go:build unix

package hashchain

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock opens (creating, 0600) and exclusively locks path, so that two
// writers never extend the same chain. The lock is released when the
// file is closed, including by the kernel when the process dies. A
// lock held elsewhere gives an error wrapping ErrLocked.
func Lock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|NoFollow, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked", ErrLocked, path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// NoFollow makes opening a log's files fail on a symbolic link, so that
// a link planted in the log directory cannot redirect records.
const NoFollow = syscall.O_NOFOLLOW
