// Package stats is the gofunc "stats" module: the host's CPU, memory,
// disk, load and network figures as typed values, for the fleet table
// (func SPEC stats) and Func compatibility.
//
//	srv.Register("stats", &stats.Module{})
//
// Everything is read from /proc and statfs(2) when asked, nothing is
// sampled by sleeping: each figure is a cumulative counter (seconds of
// CPU time, bytes received since boot) and a rate against the previous
// reading this module took, whoever asked for it, or against boot for
// the first; IntervalS says which span a rate covers. Long-term series
// belong in Prometheus (node_exporter has them); this module answers
// "how is the fleet right now".
//
// stats.disk takes a mountpoint, which must be one of the host's
// mounts: anything else is a bad-arguments fault, so the argument can
// never name a file or carry a command.
package stats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/diskusage"
	"github.com/gofunc/gofunc/internal/mountinfo"
)

// DefaultProc is where the proc filesystem is mounted.
const DefaultProc = "/proc"

// maxFile bounds what is read of one /proc file.
const maxFile = 16 << 20

// maxPathLen bounds stats.disk's argument.
const maxPathLen = 4096

// Module is the stats module. Its exported fields are its
// configuration; the zero Module reads the host. It keeps the previous
// reading of each counter for the rates, and is safe for concurrent
// use.
type Module struct {
	// Proc is the proc filesystem's root; "" means DefaultProc
	// ("/proc"). Tests point it at a fixture tree.
	Proc string
	// MountInfo is the mount table; "" means Proc + "/self/mountinfo".
	MountInfo string
	// Clock times the readings for the rates; nil means time.Now.
	Clock func() time.Time

	mu      sync.Mutex
	prevCPU *cpuReading
	prevNet map[string]netReading
	prevIO  map[string]ioReading
}

type cpuReading struct {
	times cpuTimes
	stat  procStat
}

type netReading struct {
	at time.Time
	c  netCounters
}

type ioReading struct {
	at time.Time
	c  diskCounters
}

// CPU is what stats.cpu returns. Seconds are of CPU time summed over all
// CPUs since boot; percents are shares of all CPUs' time over the
// interval (so they add up to 100).
type CPU struct {
	CPUs          int     `xmlrpc:"cpus"`
	UserS         float64 `xmlrpc:"user_s"` // user and nice
	SystemS       float64 `xmlrpc:"system_s"`
	IdleS         float64 `xmlrpc:"idle_s"`
	IOWaitS       float64 `xmlrpc:"iowait_s"`
	IRQS          float64 `xmlrpc:"irq_s"` // hard and soft interrupts
	StealS        float64 `xmlrpc:"steal_s"`
	UserPercent   float64 `xmlrpc:"user_percent"`
	SystemPercent float64 `xmlrpc:"system_percent"`
	IdlePercent   float64 `xmlrpc:"idle_percent"`
	IOWaitPercent float64 `xmlrpc:"iowait_percent"`
	IRQPercent    float64 `xmlrpc:"irq_percent"`
	StealPercent  float64 `xmlrpc:"steal_percent"`
	BusyPercent   float64 `xmlrpc:"busy_percent"` // everything but idle and iowait
	ContextSwitch int64   `xmlrpc:"context_switches"`
	Interrupts    int64   `xmlrpc:"interrupts"`
	Forks         int64   `xmlrpc:"forks"` // processes created since boot
	ProcsRunning  int64   `xmlrpc:"procs_running"`
	ProcsBlocked  int64   `xmlrpc:"procs_blocked"`
	IntervalS     float64 `xmlrpc:"interval_s"` // the percents' span: since the previous reading, or since boot
	SinceBoot     bool    `xmlrpc:"since_boot"` // the percents are averages since boot (first reading)
}

// Memory is what stats.memory returns; sizes are bytes.
type Memory struct {
	Total       int64   `xmlrpc:"total"`
	Available   int64   `xmlrpc:"available"` // what can be used without swapping (MemAvailable)
	Used        int64   `xmlrpc:"used"`      // Total - Available
	UsedPercent float64 `xmlrpc:"used_percent"`
	Free        int64   `xmlrpc:"free"`
	Buffers     int64   `xmlrpc:"buffers"`
	Cached      int64   `xmlrpc:"cached"`
	SwapTotal   int64   `xmlrpc:"swap_total"`
	SwapFree    int64   `xmlrpc:"swap_free"`
	SwapUsed    int64   `xmlrpc:"swap_used"`
	SwapPercent float64 `xmlrpc:"swap_used_percent"`
}

// Load is what stats.load returns.
type Load struct {
	Load1   float64 `xmlrpc:"load1"`
	Load5   float64 `xmlrpc:"load5"`
	Load15  float64 `xmlrpc:"load15"`
	CPUs    int     `xmlrpc:"cpus"`
	Running int64   `xmlrpc:"running"` // runnable threads now
	Threads int64   `xmlrpc:"threads"` // threads in the system
	UptimeS float64 `xmlrpc:"uptime_s"`
}

// Net is one network interface in stats.net.
type Net struct {
	Interface     string  `xmlrpc:"interface"`
	RxBytes       int64   `xmlrpc:"rx_bytes"`
	RxPackets     int64   `xmlrpc:"rx_packets"`
	RxErrors      int64   `xmlrpc:"rx_errors"`
	RxDropped     int64   `xmlrpc:"rx_dropped"`
	TxBytes       int64   `xmlrpc:"tx_bytes"`
	TxPackets     int64   `xmlrpc:"tx_packets"`
	TxErrors      int64   `xmlrpc:"tx_errors"`
	TxDropped     int64   `xmlrpc:"tx_dropped"`
	RxBytesPerS   float64 `xmlrpc:"rx_bytes_per_s"`
	TxBytesPerS   float64 `xmlrpc:"tx_bytes_per_s"`
	RxPacketsPerS float64 `xmlrpc:"rx_packets_per_s"`
	TxPacketsPerS float64 `xmlrpc:"tx_packets_per_s"`
	IntervalS     float64 `xmlrpc:"interval_s"`
}

// Disk is one mounted filesystem in stats.disk; sizes are bytes. The
// I/O figures are those of its block device, zero when it has none in
// /proc/diskstats (tmpfs, NFS).
type Disk struct {
	// Usage is what disk.usage reports: mountpoint, device, fstype,
	// total, used, free, used_percent and the inode counts.
	diskusage.Usage
	ReadBytes      int64   `xmlrpc:"read_bytes"`
	WrittenBytes   int64   `xmlrpc:"written_bytes"`
	ReadBytesPerS  float64 `xmlrpc:"read_bytes_per_s"`
	WriteBytesPerS float64 `xmlrpc:"write_bytes_per_s"`
	BusyPercent    float64 `xmlrpc:"busy_percent"` // time the device had I/O in flight
	IntervalS      float64 `xmlrpc:"interval_s"`
}

// All is what stats.all returns: every figure in one call.
type All struct {
	Time    time.Time `xmlrpc:"time"`
	UptimeS float64   `xmlrpc:"uptime_s"`
	CPU     CPU       `xmlrpc:"cpu"`
	Memory  Memory    `xmlrpc:"memory"`
	Load    Load      `xmlrpc:"load"`
	Disk    []Disk    `xmlrpc:"disk"`
	Net     []Net     `xmlrpc:"net"`
}

func (m *Module) proc(name string) string {
	root := m.Proc
	if root == "" {
		root = DefaultProc
	}
	return filepath.Join(root, name)
}

func (m *Module) now() time.Time {
	if m.Clock != nil {
		return m.Clock()
	}
	return time.Now()
}

// read parses one /proc file with parse, turning failures into faults.
func read[T any](m *Module, name string, parse func(io.Reader) (T, error)) (T, error) {
	var zero T
	path := m.proc(name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return zero, gofunc.Errorf(gofunc.CodeUnavailable, "%s is missing (is /proc mounted?)", path)
	}
	if err != nil {
		return zero, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", path, err)
	}
	defer f.Close()
	// Read it whole first: /proc files are generated on read, and a
	// consistent snapshot needs one pass.
	b, err := io.ReadAll(io.LimitReader(f, maxFile))
	if err != nil {
		return zero, gofunc.Errorf(gofunc.CodeModule, "read %s: %v", path, err)
	}
	v, err := parse(bytes.NewReader(b))
	if err != nil {
		return zero, gofunc.Errorf(gofunc.CodeModule, "parse %s: %v", path, err)
	}
	return v, nil
}

// CPU returns the CPU times since boot and their shares since the
// previous reading.
func (m *Module) CPU(ctx context.Context) (CPU, error) {
	st, err := read(m, "stat", parseStat)
	if err != nil {
		return CPU{}, err
	}
	m.mu.Lock()
	prev := m.prevCPU
	m.prevCPU = &cpuReading{times: st.all, stat: st}
	m.mu.Unlock()
	base := cpuTimes{}
	if prev != nil && prev.times.total() < st.all.total() {
		base = prev.times
	}
	t := st.all
	d := cpuTimes{t.user - base.user, t.nice - base.nice, t.system - base.system, t.idle - base.idle,
		t.iowait - base.iowait, t.irq - base.irq, t.softirq - base.softirq, t.steal - base.steal}
	pct := func(x float64) float64 { return percent(x, d.total()) }
	c := CPU{
		CPUs: max(st.cpus, 1), UserS: round(t.user + t.nice), SystemS: round(t.system), IdleS: round(t.idle),
		IOWaitS: round(t.iowait), IRQS: round(t.irq + t.softirq), StealS: round(t.steal),
		UserPercent: pct(d.user + d.nice), SystemPercent: pct(d.system), IdlePercent: pct(d.idle),
		IOWaitPercent: pct(d.iowait), IRQPercent: pct(d.irq + d.softirq), StealPercent: pct(d.steal),
		BusyPercent:   pct(d.total() - d.idle - d.iowait),
		ContextSwitch: clamp(st.ctxt), Interrupts: clamp(st.intr), Forks: clamp(st.forks),
		ProcsRunning: clamp(st.procsRunning), ProcsBlocked: clamp(st.procsBlocked),
		IntervalS: round(d.total() / float64(max(st.cpus, 1))), SinceBoot: base == cpuTimes{},
	}
	return c, nil
}

// Memory returns the memory and swap figures of /proc/meminfo.
func (m *Module) Memory(ctx context.Context) (Memory, error) {
	mi, err := read(m, "meminfo", parseMeminfo)
	if err != nil {
		return Memory{}, err
	}
	total := mi["MemTotal"]
	avail, ok := mi["MemAvailable"]
	if !ok { // kernels before 3.14
		avail = mi["MemFree"] + mi["Buffers"] + mi["Cached"]
	}
	avail = min(avail, total)
	swapFree := min(mi["SwapFree"], mi["SwapTotal"])
	return Memory{
		Total: clamp(total), Available: clamp(avail), Used: clamp(total - avail),
		UsedPercent: percent(float64(total-avail), float64(total)),
		Free:        clamp(mi["MemFree"]), Buffers: clamp(mi["Buffers"]), Cached: clamp(mi["Cached"]),
		SwapTotal: clamp(mi["SwapTotal"]), SwapFree: clamp(swapFree), SwapUsed: clamp(mi["SwapTotal"] - swapFree),
		SwapPercent: percent(float64(mi["SwapTotal"]-swapFree), float64(mi["SwapTotal"])),
	}, nil
}

// Load returns the load averages, the CPU count and the uptime.
func (m *Module) Load(ctx context.Context) (Load, error) {
	la, err := read(m, "loadavg", parseLoadavg)
	if err != nil {
		return Load{}, err
	}
	up, err := read(m, "uptime", parseUptime)
	if err != nil {
		return Load{}, err
	}
	st, err := read(m, "stat", parseStat)
	if err != nil {
		return Load{}, err
	}
	return Load{Load1: la.load1, Load5: la.load5, Load15: la.load15, CPUs: max(st.cpus, 1),
		Running: clamp(la.running), Threads: clamp(la.procs), UptimeS: round(up)}, nil
}

// Net returns every network interface's counters and rates.
func (m *Module) Net(ctx context.Context) ([]Net, error) {
	counters, err := read(m, "net/dev", parseNetDev)
	if err != nil {
		return nil, err
	}
	up, err := read(m, "uptime", parseUptime)
	if err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	prev := m.prevNet
	m.prevNet = make(map[string]netReading, len(counters))
	for _, c := range counters {
		m.prevNet[c.name] = netReading{at: now, c: c}
	}
	m.mu.Unlock()
	out := make([]Net, 0, len(counters))
	for _, c := range counters {
		base, span := netCounters{}, up
		if p, ok := prev[c.name]; ok && now.After(p.at) && c.rxBytes >= p.c.rxBytes && c.txBytes >= p.c.txBytes &&
			c.rxPackets >= p.c.rxPackets && c.txPackets >= p.c.txPackets {
			base, span = p.c, now.Sub(p.at).Seconds()
		}
		out = append(out, Net{
			Interface: c.name, RxBytes: clamp(c.rxBytes), RxPackets: clamp(c.rxPackets), RxErrors: clamp(c.rxErrors),
			RxDropped: clamp(c.rxDrops), TxBytes: clamp(c.txBytes), TxPackets: clamp(c.txPackets),
			TxErrors: clamp(c.txErrors), TxDropped: clamp(c.txDrops),
			RxBytesPerS: rate(c.rxBytes-base.rxBytes, span), TxBytesPerS: rate(c.txBytes-base.txBytes, span),
			RxPacketsPerS: rate(c.rxPackets-base.rxPackets, span), TxPacketsPerS: rate(c.txPackets-base.txPackets, span),
			IntervalS: round(span),
		})
	}
	return out, nil
}

// skipFstypes hold no data that fills up (read-only images, the device
// nodes' filesystem) and would only crowd the fullest-disk column.
var skipFstypes = map[string]bool{"squashfs": true, "iso9660": true, "udf": true, "devtmpfs": true}

// Disk returns the usage and I/O of each mounted filesystem with
// storage (filesystems reporting no blocks, such as proc and sysfs, and
// read-only images are left out), or of the one mounted at mountpoint,
// which must be one of those: anything else is CodeBadArgs.
func (m *Module) Disk(ctx context.Context, mountpoint string) ([]Disk, error) {
	if mountpoint != "" {
		if err := checkMountpoint(mountpoint); err != nil {
			return nil, err
		}
	}
	mounts, err := m.mounts()
	if err != nil {
		return nil, err
	}
	if mountpoint != "" {
		i := slices.IndexFunc(mounts, func(mt mountinfo.Mount) bool { return mt.Mountpoint == mountpoint })
		if i < 0 {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%q is not a mountpoint of this host (stats.disk() lists them)", mountpoint)
		}
		mounts = mounts[i : i+1]
	}
	counters, err := read(m, "diskstats", parseDiskstats)
	if err != nil && mountpoint == "" {
		counters = nil // containers may hide it; usage alone still helps
	} else if err != nil {
		return nil, err
	}
	byDev := make(map[string]diskCounters, len(counters))
	for _, c := range counters {
		byDev[c.majorMinor] = c
	}
	up, err := read(m, "uptime", parseUptime)
	if err != nil {
		return nil, err
	}
	now := m.now()
	m.mu.Lock()
	prev := m.prevIO
	m.prevIO = make(map[string]ioReading, len(byDev))
	if mountpoint != "" {
		maps.Copy(m.prevIO, prev) // one disk read: keep the others' readings
	}
	for _, c := range byDev {
		m.prevIO[c.majorMinor] = ioReading{at: now, c: c}
	}
	m.mu.Unlock()

	out := []Disk{}
	for _, mt := range mounts {
		if err := ctx.Err(); err != nil {
			return nil, gofunc.Errorf(gofunc.CodeTimeout, "stats.disk: %v", err)
		}
		d, ok := statfs(mt)
		if !ok {
			if mountpoint != "" {
				return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%q holds no storage (%s)", mountpoint, mt.Fstype)
			}
			continue
		}
		if c, ok := byDev[mt.MajorMinor]; ok {
			base, span := diskCounters{}, up
			if p, ok := prev[mt.MajorMinor]; ok && now.After(p.at) && c.readBytes >= p.c.readBytes && c.written >= p.c.written && c.ioSeconds >= p.c.ioSeconds {
				base, span = p.c, now.Sub(p.at).Seconds()
			}
			d.ReadBytes, d.WrittenBytes = clamp(c.readBytes), clamp(c.written)
			d.ReadBytesPerS, d.WriteBytesPerS = rate(c.readBytes-base.readBytes, span), rate(c.written-base.written, span)
			d.BusyPercent = min(percent(c.ioSeconds-base.ioSeconds, span), 100)
			d.IntervalS = round(span)
		}
		out = append(out, d)
	}
	return out, nil
}

// checkMountpoint refuses what cannot be a mountpoint before any lookup.
func checkMountpoint(p string) error {
	switch {
	case len(p) > maxPathLen:
		return gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint is longer than %d bytes", maxPathLen)
	case !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q holds control characters or invalid UTF-8", p)
	case !filepath.IsAbs(p) || filepath.Clean(p) != p:
		return gofunc.Errorf(gofunc.CodeBadArgs, "mountpoint %q is not a clean absolute path", p)
	}
	return nil
}

// mounts reads the mount table, keeping of mounts stacked on one
// mountpoint only the last (the visible one), in table order.
func (m *Module) mounts() ([]mountinfo.Mount, error) {
	path := m.MountInfo
	if path == "" {
		path = m.proc("self/mountinfo")
	}
	all, err := mountinfo.Read(context.Background(), path, "stats.disk")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(mountinfo.Visible(all), func(mt mountinfo.Mount) bool { return skipFstypes[mt.Fstype] }), nil
}

// statfs returns a mount's usage; false when it has no storage or
// cannot be read (gone since the table was read, or not ours to see).
func statfs(mt mountinfo.Mount) (Disk, bool) {
	var s unix.Statfs_t
	if err := unix.Statfs(mt.Mountpoint, &s); err != nil || s.Blocks == 0 {
		return Disk{}, false
	}
	bs := uint64(s.Bsize)
	total, free, avail := s.Blocks*bs, s.Bfree*bs, s.Bavail*bs
	used := total - free
	inodesUsed := s.Files - min(s.Ffree, s.Files)
	d := Disk{Usage: diskusage.Usage{
		Mountpoint: mt.Mountpoint, Device: mt.Device, Fstype: mt.Fstype,
		Total: clamp(total), Used: clamp(used), Free: clamp(avail),
		// As df: used against what users can fill (used + available).
		UsedPercent: percent(float64(used), float64(used+avail)),
		InodesTotal: clamp(s.Files), InodesUsed: clamp(inodesUsed), InodesFree: clamp(min(s.Ffree, s.Files)),
		InodesUsedPercent: percent(float64(inodesUsed), float64(s.Files)),
	}}
	return d, true
}

// All returns every figure at once.
func (m *Module) All(ctx context.Context) (All, error) {
	var a All
	var err error
	a.Time = m.now().UTC()
	if a.CPU, err = m.CPU(ctx); err != nil {
		return All{}, err
	}
	if a.Memory, err = m.Memory(ctx); err != nil {
		return All{}, err
	}
	if a.Load, err = m.Load(ctx); err != nil {
		return All{}, err
	}
	a.UptimeS = a.Load.UptimeS
	if a.Disk, err = m.Disk(ctx, ""); err != nil {
		return All{}, err
	}
	if a.Net, err = m.Net(ctx); err != nil {
		return All{}, err
	}
	return a, nil
}

// percent returns part/whole*100 rounded to two decimals; 0 for an
// empty whole.
func percent(part, whole float64) float64 {
	if whole <= 0 || part <= 0 {
		return 0
	}
	return round(part / whole * 100)
}

// rate returns delta per second over span seconds.
func rate(delta uint64, span float64) float64 {
	if span <= 0 {
		return 0
	}
	return round(float64(delta) / span)
}

// round rounds to two decimals; NaN and infinities become 0 (XML-RPC
// has neither).
func round(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*100) / 100
}

// clamp converts a counter for the wire (XML-RPC integers are signed).
func clamp(u uint64) int64 { return int64(min(u, math.MaxInt64)) }

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Host statistics from /proc and statfs: counters since boot and rates since the previous reading.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"CPU": {Description: "CPU seconds since boot and their shares (percent of all CPUs) since the previous reading: " +
				"{cpus, user_s, system_s, idle_s, iowait_s, irq_s, steal_s, user_percent, system_percent, idle_percent, " +
				"iowait_percent, irq_percent, steal_percent, busy_percent, context_switches, interrupts, forks, " +
				"procs_running, procs_blocked, interval_s, since_boot}"},
			"Memory": {Description: "Memory and swap in bytes: {total, available, used, used_percent, free, buffers, cached, " +
				"swap_total, swap_free, swap_used, swap_used_percent}"},
			"Load": {Description: "Load averages, CPUs and uptime: {load1, load5, load15, cpus, running, threads, uptime_s}"},
			"Net": {Description: "Per interface: [{interface, rx_bytes, rx_packets, rx_errors, rx_dropped, tx_bytes, tx_packets, " +
				"tx_errors, tx_dropped, rx_bytes_per_s, tx_bytes_per_s, rx_packets_per_s, tx_packets_per_s, interval_s}]"},
			"Disk": {
				Description: "Per mounted filesystem with storage: [{mountpoint, device, fstype, total, used, free, used_percent, " +
					"inodes_total, inodes_used, inodes_free, inodes_used_percent, read_bytes, written_bytes, read_bytes_per_s, " +
					"write_bytes_per_s, busy_percent, interval_s}]",
				Args: []gofunc.ArgDoc{{Name: "mountpoint", Type: "string", Optional: true, Default: "",
					Description: "one of the host's mountpoints; empty: every filesystem"}},
			},
			"All": {Description: "cpu, memory, load, disk and net at once: {time, uptime_s, cpu, memory, load, disk, net}"},
		},
	}
}

// String shows a Disk for people: "/ 42.5% of 20.0 GiB".
func (d Disk) String() string {
	return fmt.Sprintf("%s %.1f%% of %.1f GiB", d.Mountpoint, d.UsedPercent, float64(d.Total)/(1<<30))
}
