//go:build unix

package audit

import (
	"os"
	"syscall"
)

// syncDir makes directory entries (a created or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// noFollow makes opening the log's files fail on a symbolic link, so
// that a link planted in the log directory cannot redirect records.
const noFollow = syscall.O_NOFOLLOW
