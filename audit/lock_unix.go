//go:build unix

package audit

import (
	"syscall"
)

// noFollow makes opening the log's files fail on a symbolic link, so
// that a link planted in the log directory cannot redirect records.
const noFollow = syscall.O_NOFOLLOW
