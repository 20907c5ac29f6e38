package stats

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc/internal/lineparse"
)

// Limits of the /proc parsers.
const (
	// maxLine bounds one line: /proc/stat's "intr" line has a number
	// per interrupt, thousands on a large machine.
	maxLine = 1 << 20
	// maxEntries bounds the CPUs, interfaces and block devices parsed.
	maxEntries = 65536
)

// ErrMalformed is wrapped by the *ParseError of a /proc file that is not
// in the kernel's format.
var ErrMalformed = errors.New("malformed /proc data")

// ParseError reports the line (1-based) where parsing stopped.
type ParseError = lineparse.Error

// userHZ is the unit of /proc/stat's times: USER_HZ, fixed at 100 by
// the kernel's ABI on every architecture.
const userHZ = 100

// cpuTimes are /proc/stat's cumulative CPU times, in seconds.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal float64
}

func (c cpuTimes) total() float64 {
	return c.user + c.nice + c.system + c.idle + c.iowait + c.irq + c.softirq + c.steal
}

// procStat is what parseStat reads from /proc/stat.
type procStat struct {
	all          cpuTimes
	cpus         int
	ctxt         uint64 // context switches since boot
	intr         uint64 // interrupts since boot
	forks        uint64 // processes created since boot
	procsRunning uint64
	procsBlocked uint64
}

// parseStat parses /proc/stat (proc(5)): the "cpu" line, one "cpuN" line
// per CPU, and the counters; other lines are skipped.
func parseStat(r io.Reader) (procStat, error) {
	var s procStat
	seenAll := false
	err := lineparse.Lines(r, maxLine, func(line string) error {
		key, rest, _ := strings.Cut(line, " ")
		switch {
		case key == "cpu":
			t, err := parseCPUTimes(rest)
			if err != nil {
				return err
			}
			s.all, seenAll = t, true
		case strings.HasPrefix(key, "cpu"):
			if _, err := strconv.ParseUint(key[3:], 10, 32); err != nil {
				return fmt.Errorf("%w: %q", ErrMalformed, key)
			}
			if s.cpus == maxEntries {
				return fmt.Errorf("%w: more than %d CPUs", ErrMalformed, maxEntries)
			}
			s.cpus++
		case key == "ctxt", key == "intr", key == "processes", key == "procs_running", key == "procs_blocked":
			first, _, _ := strings.Cut(strings.TrimSpace(rest), " ")
			n, err := strconv.ParseUint(first, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %s %q", ErrMalformed, key, first)
			}
			switch key {
			case "ctxt":
				s.ctxt = n
			case "intr":
				s.intr = n
			case "processes":
				s.forks = n
			case "procs_running":
				s.procsRunning = n
			default:
				s.procsBlocked = n
			}
		}
		return nil
	})
	if err != nil {
		return procStat{}, err
	}
	if !seenAll {
		return procStat{}, &ParseError{Line: 1, Err: fmt.Errorf("%w: no cpu line", ErrMalformed)}
	}
	return s, nil
}

// parseCPUTimes reads "user nice system idle iowait irq softirq steal
// guest guest_nice" (kernels before 2.6.33 print fewer; guest time is
// already in user and nice).
func parseCPUTimes(s string) (cpuTimes, error) {
	f := strings.Fields(s)
	if len(f) < 4 || len(f) > 10 {
		return cpuTimes{}, fmt.Errorf("%w: %d cpu fields", ErrMalformed, len(f))
	}
	var v [8]float64
	for i := range min(len(f), 8) {
		n, err := strconv.ParseUint(f[i], 10, 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("%w: cpu field %q", ErrMalformed, f[i])
		}
		v[i] = float64(n) / userHZ
	}
	for _, x := range f[min(len(f), 8):] {
		if _, err := strconv.ParseUint(x, 10, 64); err != nil {
			return cpuTimes{}, fmt.Errorf("%w: cpu field %q", ErrMalformed, x)
		}
	}
	return cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}, nil
}

// parseMeminfo parses /proc/meminfo into bytes by key ("MemTotal").
func parseMeminfo(r io.Reader) (map[string]uint64, error) {
	m := map[string]uint64{}
	err := lineparse.Lines(r, maxLine, func(line string) error {
		if strings.TrimSpace(line) == "" {
			return nil
		}
		key, rest, ok := strings.Cut(line, ":")
		f := strings.Fields(rest)
		if !ok || key == "" || strings.ContainsAny(key, " \t") || len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return fmt.Errorf("%w: %q", ErrMalformed, line)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return fmt.Errorf("%w: %s %q", ErrMalformed, key, f[0])
		}
		if len(f) == 2 {
			if n > 1<<53 {
				return fmt.Errorf("%w: %s %d kB", ErrMalformed, key, n)
			}
			n *= 1024
		}
		if len(m) == maxEntries {
			return fmt.Errorf("%w: too many lines", ErrMalformed)
		}
		m[key] = n
		return nil
	})
	if err != nil {
		return nil, err
	}
	if _, ok := m["MemTotal"]; !ok {
		return nil, &ParseError{Line: 1, Err: fmt.Errorf("%w: no MemTotal", ErrMalformed)}
	}
	return m, nil
}

// loadavg is /proc/loadavg: "0.20 0.18 0.12 1/80 11206".
type loadavg struct {
	load1, load5, load15 float64
	running, procs       uint64
}

func parseLoadavg(r io.Reader) (loadavg, error) {
	var l loadavg
	lines := 0
	err := lineparse.Lines(r, 4096, func(line string) error {
		if lines++; lines > 1 {
			return fmt.Errorf("%w: more than one line", ErrMalformed)
		}
		f := strings.Fields(line)
		if len(f) != 5 {
			return fmt.Errorf("%w: %d fields", ErrMalformed, len(f))
		}
		loads := []*float64{&l.load1, &l.load5, &l.load15}
		for i, p := range loads {
			v, err := parseNonNegative(f[i])
			if err != nil {
				return err
			}
			*p = v
		}
		run, procs, ok := strings.Cut(f[3], "/")
		var err1, err2 error
		l.running, err1 = strconv.ParseUint(run, 10, 64)
		l.procs, err2 = strconv.ParseUint(procs, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("%w: %q is not running/total", ErrMalformed, f[3])
		}
		return nil
	})
	if err == nil && lines == 0 {
		err = &ParseError{Line: 1, Err: fmt.Errorf("%w: empty", ErrMalformed)}
	}
	return l, err
}

// parseUptime parses /proc/uptime: "350735.47 234388.90" (seconds since
// boot, idle seconds of all CPUs) and returns the first.
func parseUptime(r io.Reader) (float64, error) {
	var up float64
	lines := 0
	err := lineparse.Lines(r, 4096, func(line string) error {
		if lines++; lines > 1 {
			return fmt.Errorf("%w: more than one line", ErrMalformed)
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("%w: %d fields", ErrMalformed, len(f))
		}
		var err error
		if up, err = parseNonNegative(f[0]); err != nil {
			return err
		}
		_, err = parseNonNegative(f[1])
		return err
	})
	if err == nil && lines == 0 {
		err = &ParseError{Line: 1, Err: fmt.Errorf("%w: empty", ErrMalformed)}
	}
	return up, err
}

// parseNonNegative parses a finite number >= 0 as the kernel prints it.
func parseNonNegative(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 1e15 || strings.ContainsAny(s, "eEnNiIxXpP_") {
		return 0, fmt.Errorf("%w: %q is not a number", ErrMalformed, s)
	}
	return v, nil
}

// netCounters are one interface's counters in /proc/net/dev.
type netCounters struct {
	name                                  string
	rxBytes, rxPackets, rxErrors, rxDrops uint64
	txBytes, txPackets, txErrors, txDrops uint64
}

// parseNetDev parses /proc/net/dev: two header lines, then
// "  eth0: rxbytes packets errs drop fifo frame compressed multicast
// txbytes packets errs drop fifo colls carrier compressed".
func parseNetDev(r io.Reader) ([]netCounters, error) {
	var out []netCounters
	n := 0
	err := lineparse.Lines(r, maxLine, func(line string) error {
		if n++; n <= 2 {
			if !strings.Contains(line, "|") {
				return fmt.Errorf("%w: header %q", ErrMalformed, line)
			}
			return nil
		}
		if strings.TrimSpace(line) == "" {
			return nil
		}
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if !ok || name == "" || strings.ContainsAny(name, " \t") || len(name) > 64 || len(f) != 16 {
			return fmt.Errorf("%w: %q", ErrMalformed, line)
		}
		var v [16]uint64
		for i, s := range f {
			var err error
			if v[i], err = strconv.ParseUint(s, 10, 64); err != nil {
				return fmt.Errorf("%w: %s counter %q", ErrMalformed, name, s)
			}
		}
		if len(out) == maxEntries {
			return fmt.Errorf("%w: more than %d interfaces", ErrMalformed, maxEntries)
		}
		out = append(out, netCounters{name: name, rxBytes: v[0], rxPackets: v[1], rxErrors: v[2], rxDrops: v[3],
			txBytes: v[8], txPackets: v[9], txErrors: v[10], txDrops: v[11]})
		return nil
	})
	if err == nil && n < 2 {
		err = &ParseError{Line: n + 1, Err: fmt.Errorf("%w: no header", ErrMalformed)}
	}
	return out, err
}

// diskCounters are one block device's counters in /proc/diskstats.
type diskCounters struct {
	majorMinor         string // "8:1"
	name               string
	reads, writes      uint64 // completed I/Os
	readBytes, written uint64 // sectors * 512
	ioSeconds          float64
}

// parseDiskstats parses /proc/diskstats: "major minor name" and 11, 15
// or 17 counters (see the kernel's iostats documentation).
func parseDiskstats(r io.Reader) ([]diskCounters, error) {
	var out []diskCounters
	err := lineparse.Lines(r, maxLine, func(line string) error {
		f := strings.Fields(line)
		if len(f) == 0 {
			return nil
		}
		if len(f) != 14 && len(f) != 18 && len(f) != 20 {
			return fmt.Errorf("%w: %d fields", ErrMalformed, len(f))
		}
		var v [17]uint64
		for i, s := range append([]string{f[0], f[1]}, f[3:]...) {
			n, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: %q", ErrMalformed, s)
			}
			if i < len(v) {
				v[i] = n
			}
		}
		if v[0] > 1<<32 || v[1] > 1<<32 || len(f[2]) > 64 {
			return fmt.Errorf("%w: device %q", ErrMalformed, f[2])
		}
		if len(out) == maxEntries {
			return fmt.Errorf("%w: more than %d devices", ErrMalformed, maxEntries)
		}
		// v[2:] are the counters: reads, merged, sectors read, ms
		// reading, writes, merged, sectors written, ms writing, in
		// flight, ms doing I/O, ...
		out = append(out, diskCounters{
			majorMinor: f[0] + ":" + f[1], name: f[2],
			reads: v[2], readBytes: v[4] * 512, writes: v[6], written: v[8] * 512,
			ioSeconds: float64(v[11]) / 1000,
		})
		return nil
	})
	return out, err
}
