//go:build unix

package overlord

import "golang.org/x/sys/unix"

// freeSpace returns the bytes an unprivileged user may still write on
// dir's file system.
func freeSpace(dir string) (free int64, known bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false, err
	}
	avail := uint64(st.Bavail) * uint64(st.Bsize) // both types differ between systems
	return int64(min(avail, 1<<62)), true, nil
}
