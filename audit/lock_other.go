//go:build !unix

package audit

// syncDir is a no-op where directories cannot be synced.
func syncDir(string) error { return nil }

// noFollow is O_NOFOLLOW where the platform has it; not here.
const noFollow = 0
