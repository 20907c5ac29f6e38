package pathguard

import (
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openPath opens a directory on the way to a path: O_PATH needs search
// permission only, as a path lookup does.
const openPath = unix.O_PATH

// lstatAt describes the entry name of the directory dirfd without
// following it: an O_PATH descriptor of the entry itself, a link
// included, is stat'ed, so the result is os's own FileInfo.
func lstatAt(dirfd int, name string) (fs.FileInfo, error) {
	fd, err := openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	return f.Stat()
}
