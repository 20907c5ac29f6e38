// Package diskusage measures the host's mounted filesystems, like
// df(1): what the disk module serves and the hardware module includes.
package diskusage

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	gopsdisk "github.com/shirou/gopsutil/v4/disk"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/mountinfo"
	"github.com/gofunc/gofunc/internal/wirenum"
)

// maxPathLen bounds the path argument.
const maxPathLen = 4096

// pseudoFstypes are the filesystems with no storage behind them, skipped
// unless Table.IncludePseudo is set. tmpfs and overlay are kept: they
// hold files and fill up.
var pseudoFstypes = map[string]bool{
	"autofs": true, "binfmt_misc": true, "bpf": true, "cgroup": true, "cgroup2": true,
	"configfs": true, "debugfs": true, "devpts": true, "devtmpfs": true, "efivarfs": true,
	"fusectl": true, "hugetlbfs": true, "mqueue": true, "nsfs": true, "proc": true,
	"pstore": true, "ramfs": true, "rpc_pipefs": true, "securityfs": true, "selinuxfs": true,
	"sysfs": true, "tracefs": true, "fuse.gvfsd-fuse": true, "fuse.portal": true,
}

// Table is a mount table to measure.
type Table struct {
	// MountInfo is the mount table read to find filesystems; "" means
	// mountinfo.Default ("/proc/self/mountinfo").
	MountInfo string
	// IncludePseudo also reports pseudo filesystems (proc, sysfs, cgroup,
	// ...) and filesystems of size zero.
	IncludePseudo bool
}

// Usage is the usage of one mounted filesystem. Sizes are bytes.
type Usage struct {
	Mountpoint        string  `xmlrpc:"mountpoint"`
	Device            string  `xmlrpc:"device"`
	Fstype            string  `xmlrpc:"fstype"`
	Total             int64   `xmlrpc:"total"`
	Used              int64   `xmlrpc:"used"`
	Free              int64   `xmlrpc:"free"` // available to unprivileged users, as df shows it
	UsedPercent       float64 `xmlrpc:"used_percent"`
	InodesTotal       int64   `xmlrpc:"inodes_total"`
	InodesUsed        int64   `xmlrpc:"inodes_used"`
	InodesFree        int64   `xmlrpc:"inodes_free"`
	InodesUsedPercent float64 `xmlrpc:"inodes_used_percent"`
}

// Usage returns the usage of every mounted filesystem (pseudo
// filesystems skipped unless IncludePseudo), or, when path is given, of
// the one filesystem holding path.
func (m Table) Usage(ctx context.Context, path string) ([]Usage, error) {
	if path != "" {
		u, err := m.usageOf(ctx, path)
		if err != nil {
			return nil, err
		}
		return []Usage{u}, nil
	}
	mounts, err := m.mounts(ctx)
	if err != nil {
		return nil, err
	}
	usages := []Usage{}
	for _, mt := range mounts {
		if !m.IncludePseudo && pseudoFstypes[mt.Fstype] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, contextFault(err)
		}
		u, err := statfs(ctx, mt)
		if err != nil {
			continue // gone since the table was read, or not ours to see
		}
		if u.Total == 0 && !m.IncludePseudo {
			continue
		}
		usages = append(usages, u)
	}
	return usages, nil
}

// Filesystem is a mounted filesystem as the inventory records it: what
// it is and how big, not how full (see Usage for that). Total is bytes.
type Filesystem struct {
	Mountpoint string `xmlrpc:"mountpoint"`
	Device     string `xmlrpc:"device"`
	Fstype     string `xmlrpc:"fstype"`
	// Total is the filesystem's size; 0 for a zfs dataset, whose statfs
	// size is its used plus the pool's free space and so moves as other
	// datasets of the pool fill up.
	Total int64 `xmlrpc:"total"`
}

// elasticFstypes are the filesystems whose statfs size is not a fixed
// capacity but used plus available space of a shared pool.
var elasticFstypes = map[string]bool{"zfs": true}

// Inventory returns the mounted filesystems (as Usage selects them) with
// their type and size but no usage, sorted by mountpoint: two
// inventories are equal unless a filesystem was mounted, unmounted or
// resized.
func (m Table) Inventory(ctx context.Context) ([]Filesystem, error) {
	usages, err := m.Usage(ctx, "")
	if err != nil {
		return nil, err
	}
	fss := make([]Filesystem, 0, len(usages))
	for _, u := range usages {
		f := Filesystem{Mountpoint: u.Mountpoint, Device: u.Device, Fstype: u.Fstype, Total: u.Total}
		if elasticFstypes[u.Fstype] {
			f.Total = 0
		}
		fss = append(fss, f)
	}
	slices.SortStableFunc(fss, func(a, b Filesystem) int { return strings.Compare(a.Mountpoint, b.Mountpoint) })
	return fss, nil
}

// usageOf reports the filesystem holding path: the mount with the
// longest mountpoint that contains path once its symbolic links are
// resolved.
func (m Table) usageOf(ctx context.Context, path string) (Usage, error) {
	switch {
	case len(path) > maxPathLen:
		return Usage{}, gofunc.Errorf(gofunc.CodeBadArgs, "path is longer than %d bytes", maxPathLen)
	case !filepath.IsAbs(path):
		return Usage{}, gofunc.Errorf(gofunc.CodeBadArgs, "path %q is not absolute", path)
	case !utf8.ValidString(path) || strings.ContainsFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return Usage{}, gofunc.Errorf(gofunc.CodeBadArgs, "path %q contains control characters or invalid UTF-8", path)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Usage{}, gofunc.Errorf(gofunc.CodeNotFound, "path %q does not exist", path)
	} else if err != nil {
		return Usage{}, gofunc.Errorf(gofunc.CodeModule, "path %q: %v", path, err)
	}
	mounts, err := m.mounts(ctx)
	if err != nil {
		return Usage{}, err
	}
	best := -1
	for i, mt := range mounts {
		if within(resolved, mt.Mountpoint) && (best < 0 || len(mt.Mountpoint) >= len(mounts[best].Mountpoint)) {
			best = i
		}
	}
	if best < 0 {
		return Usage{}, gofunc.Errorf(gofunc.CodeNotFound, "no mounted filesystem holds %q", path)
	}
	u, err := statfs(ctx, mounts[best])
	if err != nil {
		return Usage{}, gofunc.Errorf(gofunc.CodeModule, "statfs %q: %v", mounts[best].Mountpoint, err)
	}
	return u, nil
}

// mounts reads the mount table; of mounts stacked on one mountpoint only
// the last (the visible one) is kept.
func (m Table) mounts(ctx context.Context) ([]mountinfo.Mount, error) {
	all, err := mountinfo.Read(ctx, m.MountInfo, "disk.usage")
	if err != nil {
		return nil, err
	}
	return mountinfo.Visible(all), nil
}

func within(path, dir string) bool {
	return path == dir || dir == "/" || strings.HasPrefix(path, dir+"/")
}

func statfs(ctx context.Context, mt mountinfo.Mount) (Usage, error) {
	s, err := gopsdisk.UsageWithContext(ctx, mt.Mountpoint)
	if err != nil {
		return Usage{}, err
	}
	return Usage{
		Mountpoint:        mt.Mountpoint,
		Device:            mt.Device,
		Fstype:            mt.Fstype,
		Total:             wirenum.Int64(s.Total),
		Used:              wirenum.Int64(s.Used),
		Free:              wirenum.Int64(s.Free),
		UsedPercent:       wirenum.Finite(s.UsedPercent),
		InodesTotal:       wirenum.Int64(s.InodesTotal),
		InodesUsed:        wirenum.Int64(s.InodesUsed),
		InodesFree:        wirenum.Int64(s.InodesFree),
		InodesUsedPercent: wirenum.Finite(s.InodesUsedPercent),
	}, nil
}

func contextFault(err error) *gofunc.Fault {
	if errors.Is(err, context.DeadlineExceeded) {
		return gofunc.Errorf(gofunc.CodeTimeout, "disk: deadline exceeded")
	}
	return gofunc.Errorf(gofunc.CodeCanceled, "disk: %v", err)
}
