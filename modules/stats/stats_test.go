package stats

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

// fixture is a copy of testdata/proc that a test can change, and a mount
// table naming real directories: a temporary directory as an ext4 on
// sda1, /dev/shm (a real tmpfs) when the host has it, and /proc.
type fixture struct {
	t     *testing.T
	proc  string
	mnt   string
	now   time.Time
	mu    sync.Mutex
	stats *Module
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, proc: t.TempDir(), mnt: t.TempDir(), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if err := os.CopyFS(f.proc, os.DirFS("testdata/proc")); err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("21 1 8:1 / %s rw,relatime - ext4 /dev/sda1 rw\n", f.mnt)
	if _, err := os.Stat("/dev/shm"); err == nil {
		table += "22 1 0:25 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw\n"
	}
	table += "23 1 0:5 / /proc rw - proc proc rw\n"
	os.MkdirAll(filepath.Join(f.proc, "self"), 0o755)
	f.write("self/mountinfo", table)
	f.stats = &Module{Proc: f.proc, Clock: f.clock}
	return f
}

func (f *fixture) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.proc, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func TestCPURatesAgainstThePreviousReading(t *testing.T) {
	f := newFixture(t)
	c, err := f.stats.CPU(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Since boot: 950 s of CPU time over 2 CPUs.
	want := CPU{CPUs: 2, UserS: 105, SystemS: 30, IdleS: 800, IOWaitS: 10, IRQS: 5, UserPercent: 11.05,
		SystemPercent: 3.16, IdlePercent: 84.21, IOWaitPercent: 1.05, IRQPercent: 0.53, BusyPercent: 14.74,
		ContextSwitch: 987654, Interrupts: 123456, Forks: 4242, ProcsRunning: 3, ProcsBlocked: 1, IntervalS: 475, SinceBoot: true}
	if c != want {
		t.Fatalf("first reading\n got %+v\nwant %+v", c, want)
	}
	// 10 s later on 2 CPUs: 2000 ticks, half user, half idle.
	f.write("stat", strings.Replace(readFile(t, "testdata/proc/stat"), "cpu  10000 500 3000 80000", "cpu  11000 500 3000 81000", 1))
	c, err = f.stats.CPU(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if c.UserPercent != 50 || c.IdlePercent != 50 || c.BusyPercent != 50 || c.IntervalS != 10 || c.SinceBoot || c.UserS != 115 {
		t.Errorf("second reading %+v", c)
	}
	// Nothing elapsed (or counters went back, as after a restore): shares
	// since boot again rather than a division by zero.
	c, _ = f.stats.CPU(t.Context())
	if !c.SinceBoot || c.IntervalS != 485 {
		t.Errorf("third reading %+v", c)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMemoryAndLoad(t *testing.T) {
	f := newFixture(t)
	m, err := f.stats.Memory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	const kB = 1024
	want := Memory{Total: 8000000 * kB, Available: 6000000 * kB, Used: 2000000 * kB, UsedPercent: 25, Free: 1000000 * kB,
		Buffers: 200000 * kB, Cached: 3000000 * kB, SwapTotal: 2000000 * kB, SwapFree: 1500000 * kB, SwapUsed: 500000 * kB, SwapPercent: 25}
	if m != want {
		t.Errorf("Memory\n got %+v\nwant %+v", m, want)
	}
	// A kernel without MemAvailable: free + buffers + cache.
	f.write("meminfo", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 100 kB\nCached: 300 kB\n")
	if m, _ := f.stats.Memory(t.Context()); m.Available != 500*kB || m.UsedPercent != 50 || m.SwapPercent != 0 {
		t.Errorf("old kernel: %+v", m)
	}
	l, err := f.stats.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if l != (Load{Load1: 0.5, Load5: 1.25, Load15: 2, CPUs: 2, Running: 3, Threads: 412, UptimeS: 1000}) {
		t.Errorf("Load %+v", l)
	}
}

func TestNetRates(t *testing.T) {
	f := newFixture(t)
	n, err := f.stats.Net(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(n) != 2 || n[1].Interface != "eth0" || n[1].RxBytes != 2000000 || n[1].RxBytesPerS != 2000 ||
		n[1].TxDropped != 4 || n[1].RxErrors != 1 || n[1].IntervalS != 1000 {
		t.Fatalf("first reading %+v", n)
	}
	dev := readFile(t, "testdata/proc/net/dev")
	f.write("net/dev", strings.Replace(dev, "eth0: 2000000   10000", "eth0: 2010000   10100", 1))
	f.advance(10 * time.Second)
	n, _ = f.stats.Net(t.Context())
	if n[1].RxBytesPerS != 1000 || n[1].RxPacketsPerS != 10 || n[1].TxBytesPerS != 0 || n[1].IntervalS != 10 {
		t.Errorf("10 s later %+v", n[1])
	}
	// Counters reset (the interface was re-created): rates since boot.
	f.write("net/dev", strings.Replace(dev, "eth0: 2000000   10000", "eth0:    5000      10", 1))
	f.advance(10 * time.Second)
	n, _ = f.stats.Net(t.Context())
	if n[1].RxBytesPerS != 5 || n[1].IntervalS != 1000 {
		t.Errorf("after a reset %+v", n[1])
	}
}

func TestDisk(t *testing.T) {
	f := newFixture(t)
	disks, err := f.stats.Disk(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	var mnt *Disk
	for i, d := range disks {
		if d.Mountpoint == "/proc" {
			t.Errorf("pseudo filesystem listed: %+v", d)
		}
		if d.Mountpoint == f.mnt {
			mnt = &disks[i]
		}
		if d.Total <= 0 || d.UsedPercent < 0 || d.UsedPercent > 100 {
			t.Errorf("implausible usage %+v", d)
		}
	}
	if mnt == nil || mnt.Fstype != "ext4" || mnt.Device != "/dev/sda1" {
		t.Fatalf("temporary mount missing from %+v", disks)
	}
	if mnt.ReadBytes != 180000*512 || mnt.WrittenBytes != 380000*512 || mnt.ReadBytesPerS != 92160 || mnt.BusyPercent != 0.14 {
		t.Errorf("sda1 I/O %+v", *mnt)
	}
	if _, err := os.Stat("/dev/shm"); err == nil && len(disks) != 2 {
		t.Errorf("want the temporary mount and /dev/shm, got %+v", disks)
	}

	// Writing to the real filesystem moves its usage.
	one, err := f.stats.Disk(t.Context(), f.mnt)
	if err != nil || len(one) != 1 || one[0].Mountpoint != f.mnt {
		t.Fatalf("Disk(%s) = %+v, %v", f.mnt, one, err)
	}
	f.write("diskstats", strings.Replace(readFile(t, "testdata/proc/diskstats"), "8       1 sda1 900 10 180000", "8       1 sda1 900 10 200000", 1))
	f.advance(10 * time.Second)
	one, _ = f.stats.Disk(t.Context(), f.mnt)
	if one[0].ReadBytesPerS != 20000*512/10 || one[0].IntervalS != 10 {
		t.Errorf("10 s later %#v", one[0])
	}

	for _, bad := range []string{"/etc/passwd; rm", "/etc/passwd", "relative", f.mnt + "/", f.mnt + "/../x", "/proc",
		"/\x00", "/tmp\n", strings.Repeat("/a", 3000), "/nonexistent"} {
		_, err := f.stats.Disk(t.Context(), bad)
		modtest.WantCode(t, err, gofunc.CodeBadArgs)
	}
}

func TestBrokenProc(t *testing.T) {
	f := newFixture(t)
	f.write("loadavg", "0.5 1.0\n")
	_, err := f.stats.Load(t.Context())
	modtest.WantCode(t, err, gofunc.CodeModule)
	os.Remove(filepath.Join(f.proc, "meminfo"))
	_, err = f.stats.Memory(t.Context())
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
	_, err = f.stats.All(t.Context())
	modtest.WantCode(t, err, gofunc.CodeUnavailable)
}

// TestThisHost reads the real /proc and filesystems.
func TestThisHost(t *testing.T) {
	m := &Module{}
	a, err := m.All(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if a.CPU.CPUs < 1 || a.Memory.Total <= 0 || a.Load.CPUs != a.CPU.CPUs || a.UptimeS <= 0 || len(a.Disk) == 0 || len(a.Net) == 0 {
		t.Errorf("All = %+v", a)
	}
	if !a.CPU.SinceBoot {
		t.Error("first reading not since boot")
	}
	again, err := m.CPU(t.Context())
	if err != nil || (again.SinceBoot && again.IntervalS > a.CPU.IntervalS) {
		t.Errorf("second reading %+v, %v", again, err)
	}
	one, err := m.Disk(t.Context(), a.Disk[0].Mountpoint)
	if err != nil || len(one) != 1 {
		t.Errorf("Disk(%s) = %+v, %v", a.Disk[0].Mountpoint, one, err)
	}
}

func fuzzParser[T any](f *testing.F, parse func(io.Reader) (T, error), seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := parse(strings.NewReader(s))
		modtest.WantErrorAs[*ParseError](t, err)
	})
}

func FuzzParseStat(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/stat", "/proc/stat")
	fuzzParser(f, parseStat, "cpu 1 2 3 4\n", "cpu0 1 2 3 4\n")
}

func FuzzParseMeminfo(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/meminfo", "/proc/meminfo")
	fuzzParser(f, parseMeminfo, "MemTotal: 1 kB\n")
}

func FuzzParseLoadavg(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/loadavg", "/proc/loadavg")
	fuzzParser(f, parseLoadavg, "1 2 3 4/5 6\n")
}

func FuzzParseUptime(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/uptime", "/proc/uptime")
	fuzzParser(f, parseUptime, "1.5 2.5\n")
}

func FuzzParseNetDev(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/net/dev", "/proc/net/dev")
	fuzzParser(f, parseNetDev, "a|b\nc|d\nx: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
}

func FuzzParseDiskstats(f *testing.F) {
	modtest.AddSeeds(f, "testdata/proc/diskstats", "/proc/diskstats")
	fuzzParser(f, parseDiskstats, "1 2 x 1 2 3 4 5 6 7 8 9 10 11\n")
}
