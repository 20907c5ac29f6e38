package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// File descriptors each process needs, with room for connections being
// replaced (a cold run's new connections may open before the last
// run's are gone) and the runtime's own.
//
// The minions' process holds, per minion: its listener, its audit log
// and the log's lock file, its connection from the overlord, and the
// floor server's listener and connection: 6, and 2 more while cold runs
// replace connections. A client (the overlord, the floor's) holds one
// connection per minion, two while connections are replaced.
func minionsFiles(n int) uint64 { return uint64(8*n + 1024) }
func clientFiles(n int) uint64  { return uint64(2*n + 1024) }

// shardsFor is how many processes the minions of a fleet of n need so
// that each stays within the hard open-file limit (which only a
// privileged process can raise). Real minions are one per machine.
func shardsFor(n int) int {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Max >= minionsFiles(n) {
		return 1
	}
	per := max(1, (int(lim.Max)-1024)/8)
	return (n + per - 1) / per
}

// raiseFileLimit lifts RLIMIT_NOFILE to at least need: the soft limit
// up to the hard one, and the hard one too when the process may
// (root, or CAP_SYS_RESOURCE; up to fs.nr_open). The bench is one
// process holding thousands of minions, which no real minion is; an
// overlord needs one descriptor per minion it keeps a connection to.
func raiseFileLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	if lim.Max < need {
		raised := syscall.Rlimit{Cur: need, Max: need}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return nil
		}
	}
	lim.Cur = min(lim.Max, max(lim.Cur, need))
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-file limit to %d: %w", lim.Cur, err)
	}
	if lim.Cur < need {
		return fmt.Errorf("this fleet needs %d open files in one process and the hard limit is %d: "+
			"run as root, or raise it (ulimit -Hn %d; fs.nr_open must allow it)", need, lim.Max, need)
	}
	return nil
}

// cpuTime is the CPU (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memory is a process's memory after a garbage collection.
type memory struct {
	HeapInuse  uint64  `json:"heap_inuse"`
	StackInuse uint64  `json:"stack_inuse"`
	Sys        uint64  `json:"sys"`
	RSS        float64 `json:"rss_kib"`  // VmRSS
	Peak       float64 `json:"peak_kib"` // VmHWM
	Goroutines int     `json:"goroutines"`
}

func readMemory() memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{HeapInuse: ms.HeapInuse, StackInuse: ms.StackInuse, Sys: ms.Sys,
		RSS: procStatus("VmRSS"), Peak: procStatus("VmHWM"), Goroutines: runtime.NumGoroutine()}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// procStatus reads a kB figure from /proc/self/status.
func procStatus(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				v, _ := strconv.ParseFloat(f[0], 64)
				return v
			}
		}
	}
	return 0
}

// ioCount is a process's read and write system calls so far
// (/proc/PID/io syscr and syscw: every read(2)/write(2)-like call,
// sockets and files alike).
type ioCount struct {
	R uint64 `json:"syscr"`
	W uint64 `json:"syscw"`
}

func (a ioCount) sub(b ioCount) ioCount { return ioCount{a.R - b.R, a.W - b.W} }
func (a ioCount) add(b ioCount) ioCount { return ioCount{a.R + b.R, a.W + b.W} }

// procIO reads /proc/PID/io ("self" for this process); zero when it
// cannot.
func procIO(pid string) ioCount {
	var c ioCount
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return c
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		switch k {
		case "syscr":
			c.R = n
		case "syscw":
			c.W = n
		}
	}
	return c
}

// loadAvg is the 1-minute load average, from /proc/loadavg.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// median of xs (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// short formats d with 3 significant digits or so.
func short(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d >= time.Second:
		return fmt.Sprintf("%.3fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// profileOnSignal makes a minions' process profile its CPU between a
// SIGUSR1 and the next SIGUSR2 (the parent's profiled phase), into path
// (overwritten by each start). stop ends the watch.
func profileOnSignal(path string) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var f *os.File
		end := func() {
			if f != nil {
				pprof.StopCPUProfile()
				f.Close()
				f = nil
			}
		}
		defer end()
		for {
			select {
			case <-done:
				return
			case s := <-sigs:
				if s == syscall.SIGUSR2 {
					end()
					continue
				}
				end()
				var err error
				if f, err = os.Create(path); err != nil {
					fmt.Fprintln(os.Stderr, "bench: minions' profile:", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					f = nil
				}
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
		<-finished
	}
}
