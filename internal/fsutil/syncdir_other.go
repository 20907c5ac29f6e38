//go:build !unix

package fsutil

// SyncDir is a no-op where directories cannot be synced.
func SyncDir(string) error { return nil }
