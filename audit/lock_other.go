//go:build !unix

package audit

import (
	"fmt"
	"os"
)

// lockFile opens path; on this platform there is no advisory lock, so
// only one Log per file is the caller's duty.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|noFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	return f, nil
}

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }

// noFollow is O_NOFOLLOW where the platform has it; not here.
const noFollow = 0
