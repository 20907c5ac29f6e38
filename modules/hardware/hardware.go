// Package hardware holds two gofunc modules that describe the host:
// Module ("hardware": the full inventory, nested) and Facts ("facts": a
// flat map of names to strings and numbers, which the overlord matches
// targets against, such as os == "debian").
//
//	srv.Register("hardware", &hardware.Module{})
//	srv.Register("facts", &hardware.Facts{Static: map[string]string{"datacenter": "fra1"}})
//
// Both answer from the host's own sources (/proc, /sys, uname, os-release)
// through gopsutil. A part that cannot be read is left empty and named in
// Info.Warnings rather than failing the call.
package hardware

import (
	"cmp"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/diskusage"
	"github.com/gofunc/gofunc/internal/wirenum"
)

// DefaultSysBlock is the default of Module.SysBlock.
const DefaultSysBlock = "/sys/block"

// Module is the hardware module. Its exported fields are its
// configuration; the zero Module is ready to use. It is safe for
// concurrent use.
type Module struct {
	// SysBlock is the directory listing block devices; "" means
	// DefaultSysBlock ("/sys/block").
	SysBlock string
	// MountInfo is the mount table read for filesystems; "" means
	// "/proc/self/mountinfo".
	MountInfo string
}

// Info is the host's inventory. Sizes are bytes.
type Info struct {
	Hostname string `xmlrpc:"hostname"`
	OS       OS     `xmlrpc:"os"`
	// BootTime is when the kernel booted; UptimeS the seconds since.
	BootTime       time.Time      `xmlrpc:"boot_time"`
	UptimeS        float64        `xmlrpc:"uptime_s"`
	Virtualization Virtualization `xmlrpc:"virtualization"`
	CPU            CPU            `xmlrpc:"cpu"`
	Memory         Memory         `xmlrpc:"memory"`
	Swap           Memory         `xmlrpc:"swap"`
	// BlockDevices are the disks (of non-zero size) and their partitions.
	BlockDevices []BlockDevice `xmlrpc:"block_devices"`
	// Filesystems are the mounted filesystems with their usage, as the
	// disk module reports them.
	Filesystems []diskusage.Usage `xmlrpc:"filesystems"`
	Interfaces  []Interface       `xmlrpc:"interfaces"`
	// Warnings name the parts that could not be read.
	Warnings []string `xmlrpc:"warnings"`
}

// OS identifies the operating system.
type OS struct {
	System  string `xmlrpc:"system"`  // "linux" (runtime.GOOS)
	Name    string `xmlrpc:"name"`    // distribution: "debian", "ubuntu", "fedora"
	Family  string `xmlrpc:"family"`  // "debian", "rhel", "fedora"
	Version string `xmlrpc:"version"` // "12.5"
	Kernel  string `xmlrpc:"kernel"`  // "6.1.0-18-amd64"
	Arch    string `xmlrpc:"arch"`    // uname -m: "x86_64", "aarch64"
	HostID  string `xmlrpc:"host_id"` // machine id
}

// Virtualization says whether the host is virtual: System is "kvm",
// "docker", "xen", ... or "" on bare metal; Role is "guest" or "host".
type Virtualization struct {
	System string `xmlrpc:"system"`
	Role   string `xmlrpc:"role"`
}

// CPU describes the processors.
type CPU struct {
	Model   string  `xmlrpc:"model"`
	Vendor  string  `xmlrpc:"vendor"`
	MHz     float64 `xmlrpc:"mhz"`
	Count   int     `xmlrpc:"count"`   // logical CPUs (threads)
	Cores   int     `xmlrpc:"cores"`   // physical cores
	Sockets int     `xmlrpc:"sockets"` // physical packages
}

// Memory is RAM or swap.
type Memory struct {
	Total       int64   `xmlrpc:"total"`
	Available   int64   `xmlrpc:"available"` // RAM: usable without swapping; swap: free
	Used        int64   `xmlrpc:"used"`
	UsedPercent float64 `xmlrpc:"used_percent"`
}

// BlockDevice is a disk from /sys/block.
type BlockDevice struct {
	Name       string      `xmlrpc:"name"` // "sda", "nvme0n1", "vda"
	Size       int64       `xmlrpc:"size"`
	Model      string      `xmlrpc:"model"`
	Serial     string      `xmlrpc:"serial"`
	Removable  bool        `xmlrpc:"removable"`
	Rotational bool        `xmlrpc:"rotational"`
	Partitions []Partition `xmlrpc:"partitions"`
}

// Partition is a partition of a BlockDevice.
type Partition struct {
	Name string `xmlrpc:"name"` // "sda1"
	Size int64  `xmlrpc:"size"`
}

// Interface is a network interface.
type Interface struct {
	Name  string   `xmlrpc:"name"`
	MAC   string   `xmlrpc:"mac"` // "" for interfaces without one (lo)
	MTU   int      `xmlrpc:"mtu"`
	Flags []string `xmlrpc:"flags"` // "up", "loopback", "multicast", ...
	// Addresses in CIDR form: "192.0.2.7/24", "fe80::1/64".
	Addresses []string `xmlrpc:"addresses"`
}

// Info returns the host's inventory. It fails only when ctx ends.
func (m *Module) Info(ctx context.Context) (Info, error) {
	var w warnings
	info := Info{
		OS:           osInfo(ctx, &w),
		Memory:       memory(ctx, &w),
		Swap:         swap(ctx, &w),
		CPU:          cpuInfo(ctx, &w),
		BlockDevices: blockDevices(cmp.Or(m.SysBlock, DefaultSysBlock), &w),
		Interfaces:   interfaces(ctx, &w),
	}
	info.Hostname, info.BootTime, info.UptimeS = uptime(ctx, &w)
	info.Virtualization = virtualization(ctx, &w)
	fss, err := diskusage.Table{MountInfo: m.MountInfo}.Usage(ctx, "")
	w.add("filesystems", err)
	info.Filesystems = nonNil(fss)
	if err := ctx.Err(); err != nil {
		return Info{}, contextFault(err)
	}
	info.Warnings = nonNil(w.list)
	return info, nil
}

// Inventory is the host's hardware and operating system as configured
// and installed: what Info reports less everything that moves while the
// host runs (boot time, uptime, used and available memory and swap,
// filesystem usage, the CPU's current clock). Two inventories of a host
// that nobody reconfigured are equal, so `func inventory` commits a
// change to git only when something was changed. Slices are sorted.
type Inventory struct {
	Hostname       string         `xmlrpc:"hostname"`
	OS             OS             `xmlrpc:"os"`
	Virtualization Virtualization `xmlrpc:"virtualization"`
	CPU            CPUInventory   `xmlrpc:"cpu"`
	// MemoryTotal and SwapTotal are the sizes of RAM and swap in bytes.
	MemoryTotal int64 `xmlrpc:"memory_total"`
	SwapTotal   int64 `xmlrpc:"swap_total"`
	// BlockDevices are the disks (of non-zero size) and their
	// partitions, sorted by name.
	BlockDevices []BlockDevice `xmlrpc:"block_devices"`
	// Filesystems are the mounted filesystems with their size, as the
	// disk module's inventory reports them, sorted by mountpoint.
	Filesystems []diskusage.Filesystem `xmlrpc:"filesystems"`
	// Interfaces are sorted by name, each one's addresses sorted too.
	Interfaces []Interface `xmlrpc:"interfaces"`
	// Warnings name the parts that could not be read.
	Warnings []string `xmlrpc:"warnings"`
}

// CPUInventory describes the processors without their current clock.
type CPUInventory struct {
	Model   string `xmlrpc:"model"`
	Vendor  string `xmlrpc:"vendor"`
	Count   int    `xmlrpc:"count"`   // logical CPUs (threads)
	Cores   int    `xmlrpc:"cores"`   // physical cores
	Sockets int    `xmlrpc:"sockets"` // physical packages
}

// Inventory returns the host's stable facts (see the Inventory type);
// Info is the live view. It fails only when ctx ends.
func (m *Module) Inventory(ctx context.Context) (Inventory, error) {
	var w warnings
	c := cpuInfo(ctx, &w)
	inv := Inventory{
		OS:             osInfo(ctx, &w),
		Virtualization: virtualization(ctx, &w),
		CPU:            CPUInventory{Model: c.Model, Vendor: c.Vendor, Count: c.Count, Cores: c.Cores, Sockets: c.Sockets},
		MemoryTotal:    memory(ctx, &w).Total,
		SwapTotal:      swap(ctx, &w).Total,
		BlockDevices:   blockDevices(cmp.Or(m.SysBlock, DefaultSysBlock), &w),
		Interfaces:     interfaces(ctx, &w),
	}
	inv.OS.HostID = stableHostID(inv.OS.HostID)
	var err error
	inv.Hostname, err = os.Hostname()
	w.add("hostname", err)
	fss, err := diskusage.Table{MountInfo: m.MountInfo}.Inventory(ctx)
	w.add("filesystems", err)
	inv.Filesystems = nonNil(fss)
	if err := ctx.Err(); err != nil {
		return Inventory{}, contextFault(err)
	}
	inv.Warnings = nonNil(w.list)
	return inv, nil
}

// bootIDFile changes at every boot; gopsutil falls back on it for the
// host id when the host has neither a DMI product UUID nor a machine id.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// stableHostID returns id, or "" when id is only this boot's id, which
// an inventory must not show as a change after every reboot.
func stableHostID(id string) string {
	if id != "" && strings.EqualFold(id, readString(bootIDFile)) {
		return ""
	}
	return id
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Hardware and operating system inventory: OS, CPU, memory, disks, network interfaces.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Info": {Description: "The inventory: {hostname, os{system, name, family, version, kernel, arch, host_id}, " +
				"boot_time, uptime_s, virtualization{system, role}, cpu{model, vendor, mhz, count, cores, sockets}, " +
				"memory{total, available, used, used_percent}, swap, block_devices[], filesystems[], interfaces[], warnings[]}."},
			"Inventory": {Description: "The stable part of info(), for change tracking (no uptime, usage or clock): " +
				"{hostname, os, virtualization, cpu{model, vendor, count, cores, sockets}, memory_total, swap_total, " +
				"block_devices[], filesystems[{mountpoint, device, fstype, total}], interfaces[], warnings[]}."},
		},
	}
}

// warnings collects the parts that failed, so one unreadable source does
// not hide the others.
type warnings struct{ list []string }

func (w *warnings) add(part string, err error) {
	if err != nil {
		w.list = append(w.list, part+": "+err.Error())
	}
}

func osInfo(ctx context.Context, w *warnings) OS {
	o := OS{System: "linux"}
	var err error
	o.Name, o.Family, o.Version, err = host.PlatformInformationWithContext(ctx)
	w.add("os", err)
	o.Kernel, err = host.KernelVersionWithContext(ctx)
	w.add("kernel", err)
	o.Arch, err = host.KernelArch()
	w.add("arch", err)
	o.HostID, err = host.HostIDWithContext(ctx)
	w.add("host_id", err)
	return o
}

func uptime(ctx context.Context, w *warnings) (hostname string, boot time.Time, uptimeS float64) {
	hostname, err := os.Hostname()
	w.add("hostname", err)
	bootS, err := host.BootTimeWithContext(ctx)
	w.add("boot_time", err)
	if err == nil {
		boot = time.Unix(wirenum.Int64(bootS), 0).UTC()
	}
	up, err := host.UptimeWithContext(ctx)
	w.add("uptime", err)
	return hostname, boot, float64(up)
}

func virtualization(ctx context.Context, w *warnings) Virtualization {
	system, role, err := host.VirtualizationWithContext(ctx)
	w.add("virtualization", err)
	return Virtualization{System: system, Role: role}
}

func cpuInfo(ctx context.Context, w *warnings) CPU {
	var c CPU
	var err error
	c.Count, err = cpu.CountsWithContext(ctx, true)
	w.add("cpu count", err)
	c.Cores, err = cpu.CountsWithContext(ctx, false)
	w.add("cpu cores", err)
	infos, err := cpu.InfoWithContext(ctx)
	w.add("cpu", err)
	sockets := map[string]bool{}
	for _, ci := range infos {
		sockets[ci.PhysicalID] = true
	}
	if len(infos) > 0 {
		c.Model, c.Vendor, c.MHz = infos[0].ModelName, infos[0].VendorID, wirenum.Finite(infos[0].Mhz)
		c.Sockets = len(sockets)
	}
	return c
}

func memory(ctx context.Context, w *warnings) Memory {
	v, err := mem.VirtualMemoryWithContext(ctx)
	w.add("memory", err)
	if err != nil {
		return Memory{}
	}
	return Memory{Total: wirenum.Int64(v.Total), Available: wirenum.Int64(v.Available),
		Used: wirenum.Int64(v.Used), UsedPercent: wirenum.Finite(v.UsedPercent)}
}

func swap(ctx context.Context, w *warnings) Memory {
	s, err := mem.SwapMemoryWithContext(ctx)
	w.add("swap", err)
	if err != nil {
		return Memory{}
	}
	return Memory{Total: wirenum.Int64(s.Total), Available: wirenum.Int64(s.Free),
		Used: wirenum.Int64(s.Used), UsedPercent: wirenum.Finite(s.UsedPercent)}
}

func interfaces(ctx context.Context, w *warnings) []Interface {
	ifs, err := net.InterfacesWithContext(ctx)
	w.add("interfaces", err)
	out := make([]Interface, 0, len(ifs))
	for _, i := range ifs {
		addrs := make([]string, 0, len(i.Addrs))
		for _, a := range i.Addrs {
			addrs = append(addrs, a.Addr)
		}
		slices.Sort(addrs)
		out = append(out, Interface{Name: i.Name, MAC: i.HardwareAddr, MTU: i.MTU,
			Flags: nonNil(i.Flags), Addresses: addrs})
	}
	slices.SortFunc(out, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// sectorSize is the unit of /sys/block sizes, whatever the device's own
// block size.
const sectorSize = 512

// blockDevices lists the disks of non-zero size under sysBlock.
func blockDevices(sysBlock string, w *warnings) []BlockDevice {
	entries, err := os.ReadDir(sysBlock)
	w.add("block devices", err)
	devs := []BlockDevice{}
	for _, e := range entries {
		dir := filepath.Join(sysBlock, e.Name())
		size := readInt(filepath.Join(dir, "size")) * sectorSize
		if size <= 0 {
			continue // empty loop devices, unconfigured zram
		}
		devs = append(devs, BlockDevice{
			Name:       e.Name(),
			Size:       size,
			Model:      readString(filepath.Join(dir, "device", "model")),
			Serial:     firstNonEmpty(readString(filepath.Join(dir, "serial")), readString(filepath.Join(dir, "device", "serial"))),
			Removable:  readInt(filepath.Join(dir, "removable")) == 1,
			Rotational: readInt(filepath.Join(dir, "queue", "rotational")) == 1,
			Partitions: partitions(dir),
		})
	}
	slices.SortFunc(devs, func(a, b BlockDevice) int { return strings.Compare(a.Name, b.Name) })
	return devs
}

// partitions lists the subdirectories of a /sys/block device that are
// partitions (they hold a "partition" file).
func partitions(dir string) []Partition {
	entries, _ := os.ReadDir(dir)
	parts := []Partition{}
	for _, e := range entries {
		pdir := filepath.Join(dir, e.Name())
		if _, err := os.Stat(filepath.Join(pdir, "partition")); err != nil {
			continue
		}
		parts = append(parts, Partition{Name: e.Name(), Size: readInt(filepath.Join(pdir, "size")) * sectorSize})
	}
	slices.SortFunc(parts, func(a, b Partition) int { return strings.Compare(a.Name, b.Name) })
	return parts
}

// readString reads a small sysfs attribute; "" if it is missing.
func readString(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 256) // sysfs attributes are short
	n, _ := f.Read(buf)
	return strings.ToValidUTF8(strings.TrimSpace(string(buf[:n])), "?")
}

func readInt(path string) int64 {
	n, err := strconv.ParseInt(readString(path), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/sectorSize {
		return 0
	}
	return n
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// nonNil returns s, or an empty slice for nil: XML-RPC has no nil, and
// an empty array says "none" better than a missing member.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func contextFault(err error) *gofunc.Fault {
	if errors.Is(err, context.DeadlineExceeded) {
		return gofunc.Errorf(gofunc.CodeTimeout, "hardware: deadline exceeded")
	}
	return gofunc.Errorf(gofunc.CodeCanceled, "hardware: %v", err)
}
