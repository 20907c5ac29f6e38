// Package disk is the gofunc "disk" module: space and inode usage of the
// host's mounted filesystems, like df(1).
//
//	srv.Register("disk", &disk.Module{})
package disk

import (
	"context"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/diskusage"
)

// Module is the disk module. Its exported fields are its configuration;
// the zero Module is ready to use. It is safe for concurrent use.
type Module struct {
	// MountInfo is the mount table read to find filesystems; "" means
	// mount.DefaultMountInfo ("/proc/self/mountinfo").
	MountInfo string
	// IncludePseudo also reports pseudo filesystems (proc, sysfs, cgroup,
	// ...) and filesystems of size zero. Default false.
	IncludePseudo bool
}

type (
	// Usage is the usage of one mounted filesystem. Sizes are bytes.
	Usage = diskusage.Usage
	// Filesystem is a mounted filesystem as the inventory records it:
	// what it is and how big, not how full (see Usage for that). Total
	// is bytes.
	Filesystem = diskusage.Filesystem
)

func (m *Module) table() diskusage.Table {
	return diskusage.Table{MountInfo: m.MountInfo, IncludePseudo: m.IncludePseudo}
}

// Usage returns the usage of every mounted filesystem (pseudo
// filesystems skipped unless IncludePseudo), or, when path is given, of
// the one filesystem holding path.
func (m *Module) Usage(ctx context.Context, path string) ([]Usage, error) {
	return m.table().Usage(ctx, path)
}

// Inventory returns the mounted filesystems (as Usage selects them) with
// their type and size but no usage, sorted by mountpoint: two
// inventories are equal unless a filesystem was mounted, unmounted or
// resized.
func (m *Module) Inventory(ctx context.Context) ([]Filesystem, error) {
	return m.table().Inventory(ctx)
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Disk space and inode usage of mounted filesystems.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Usage": {
				Description: "Usage per mounted filesystem: [{mountpoint, device, fstype, total, used, free, " +
					"used_percent, inodes_total, inodes_used, inodes_free, inodes_used_percent}], bytes.",
				Args: []gofunc.ArgDoc{{Name: "path", Type: "string", Optional: true, Default: "",
					Description: "absolute path: report only the filesystem holding it; empty: all filesystems"}},
			},
			"Inventory": {Description: "Every filesystem usage() reports, with its size but no usage, sorted by mountpoint: " +
				"[{mountpoint, device, fstype, total}]."},
		},
	}
}
