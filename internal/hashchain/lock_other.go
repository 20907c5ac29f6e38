//go:build !unix

package hashchain

import "os"

// Lock opens path; on this platform there is no advisory lock, so only
// one writer per chain is the caller's duty.
func Lock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE|NoFollow, 0o600)
}

// NoFollow is O_NOFOLLOW where the platform has it; not here.
const NoFollow = 0
