// Command gofunc-bench measures the overlord's fan-out: ping to N minions over
// real mutual TLS on loopback, on new connections (cold) and reused ones
// (warm), and command.run of `uname -r`, for N = 10, 100, 1000 by
// default. See README.md for the method and the figures.
//
//	go run ./internal/cmd/gofunc-bench      # all sizes, 5 runs each
//	go run ./internal/cmd/gofunc-bench -n 1000 -runs 10 -cpuprofile cold.prof -profile cold
//
// The minions run in a child process (this program started again with
// -child), so that the overlord's memory and CPU can be measured on
// their own.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules"
	"github.com/gofunc/gofunc/overlord"
)

func main() {
	var o options
	flag.StringVar(&o.sizes, "n", "10,100,1000", "comma-separated fleet sizes")
	flag.IntVar(&o.runs, "runs", 5, "measured runs per figure")
	flag.IntVar(&o.forks, "forks", 0, "overlord fan-out limit; 0 means the default (256)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the -profile phase (largest N) to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile after the warm phase (largest N) to this file")
	flag.StringVar(&o.profile, "profile", "warm", "phase to CPU-profile: cold, warm or run")
	flag.StringVar(&o.workDir, "dir", "", "work directory (CA, identities, minion audit logs); default a new one in /dev/shm or the temp dir")
	flag.BoolVar(&o.child, "child", false, "internal: run the minions")
	flag.IntVar(&o.childN, "child-n", 0, "internal: number of minions to run")
	flag.Parse()
	raiseFileLimit()
	var err error
	if o.child {
		err = runChild(o.workDir, o.childN)
	} else {
		err = runParent(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	sizes                           string
	runs, forks                     int
	cpuProfile, memProfile, profile string
	workDir                         string
	child                           bool
	childN                          int
}

// raiseFileLimit lifts the soft limit on open files to the hard one:
// 1000 minions are 1000 listeners, connections and audit logs.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// minionAddr gives minion i (from 0) its own loopback address:
// 127.0.1.2 ... 127.0.1.251, 127.0.2.2 ...
func minionAddr(i int) net.IP {
	return net.IPv4(127, 0, byte(1+i/250), byte(2+i%250))
}

// fleetInfo is what the child tells the parent once its minions listen.
type fleetInfo struct {
	Minions []overlord.Minion `json:"minions"`
}

// runChild creates a CA, N minion identities and an overlord identity
// (in dir/admin), starts the minions, prints the fleet on stdout and
// serves until stdin closes.
func runChild(dir string, n int) error {
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		return err
	}
	admin, err := authority.Issue(gofunc.RoleOverlord, "bench", ca.IssueOptions{})
	if err != nil {
		return err
	}
	if err := admin.Save(filepath.Join(dir, "admin")); err != nil {
		return err
	}
	var info fleetInfo
	var servers []*minion.Server
	var trails []*audit.Log
	for i := range n {
		ip := minionAddr(i)
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
		if err != nil {
			return fmt.Errorf("minion %d: %w", i, err)
		}
		name := fmt.Sprintf("m%04d.bench", i)
		id, err := authority.Issue(gofunc.RoleMinion, name, ca.IssueOptions{IPs: []net.IP{ip}, Addr: ln.Addr().String()})
		if err != nil {
			return err
		}
		trail, err := audit.Open(filepath.Join(dir, "minions", name+".log"), audit.Config{})
		if err != nil {
			return err
		}
		srv := &minion.Server{Identity: id, Audit: trail}
		if err := modules.Register(srv, modules.Config{}); err != nil {
			return err
		}
		go func() { _ = srv.Serve(ln) }()
		servers, trails = append(servers, srv), append(trails, trail)
		info.Minions = append(info.Minions, overlord.Minion{Name: name, Addr: ln.Addr().String()})
	}
	if err := json.NewEncoder(os.Stdout).Encode(info); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent is done
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, srv := range servers {
		_ = srv.Shutdown(ctx)
		trails[i].Close()
	}
	return nil
}

// child is a running minion process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	dir   string
	info  fleetInfo
}

func startChild(dir string, n int) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "-child", "-child-n", strconv.Itoa(n), "-dir", dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin, dir: dir}
	if err := json.NewDecoder(bufio.NewReader(stdout)).Decode(&c.info); err != nil {
		c.stop()
		return nil, fmt.Errorf("minion process: %w", err)
	}
	return c, nil
}

func (c *child) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

func runParent(o options) error {
	var sizes []int
	for s := range strings.SplitSeq(o.sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 250*250 {
			return fmt.Errorf("-n: bad size %q", s)
		}
		sizes = append(sizes, n)
	}
	base := o.workDir
	if base == "" {
		parent := os.TempDir()
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm" // minion audit logs fsync every call: keep that off the disk
		}
		dir, err := os.MkdirTemp(parent, "gofunc-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		base = dir
	}
	fmt.Printf("gofunc overlord bench: %s, GOMAXPROCS=%d, %d CPUs, runs=%d\n", runtime.Version(),
		runtime.GOMAXPROCS(0), runtime.NumCPU(), o.runs)
	fmt.Printf("%-6s %-22s %10s %10s %10s %12s %12s %12s\n", "N", "phase", "p50", "p99", "max", "host p50", "host p99", "overlord CPU")
	largest := slices.Max(sizes)
	for _, n := range sizes {
		if err := benchSize(o, filepath.Join(base, fmt.Sprintf("n%d", n)), n, n == largest); err != nil {
			return fmt.Errorf("fleet of %d: %w", n, err)
		}
	}
	return nil
}

func benchSize(o options, dir string, n int, profile bool) error {
	ch, err := startChild(dir, n)
	if err != nil {
		return err
	}
	defer ch.stop()
	id, err := identity.Load(filepath.Join(dir, "admin"))
	if err != nil {
		return err
	}
	newClient := func() *overlord.Client {
		opts := []overlord.Option{overlord.WithIdentity(id), overlord.WithMinions(overlord.Static(ch.info.Minions)),
			overlord.WithHostTimeout(30 * time.Second)}
		if o.forks > 0 {
			opts = append(opts, overlord.WithForks(o.forks))
		}
		return overlord.New(opts...)
	}
	ctx := context.Background()
	var stopProfile func()
	startProfile := func(phase string) {
		if profile && o.cpuProfile != "" && o.profile == phase {
			f, err := os.Create(o.cpuProfile)
			if err == nil && pprof.StartCPUProfile(f) == nil {
				stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			}
		}
	}
	endProfile := func() {
		if stopProfile != nil {
			stopProfile()
			stopProfile = nil
		}
	}

	// Cold: a new client each run, so every call opens a new connection
	// with a full TLS handshake (no session to resume).
	var cold, coldHosts []time.Duration
	cpu0 := cpuTime()
	startProfile("cold")
	for range o.runs {
		c := newClient()
		d, hosts, err := fanout(ctx, c, "test", "ping")
		c.Close()
		if err != nil {
			return fmt.Errorf("cold ping: %w", err)
		}
		cold, coldHosts = append(cold, d), append(coldHosts, hosts...)
	}
	endProfile()
	report(n, "ping cold", cold, coldHosts, (cpuTime()-cpu0)/time.Duration(o.runs))

	// Warm: one client, connections opened once and reused.
	c := newClient()
	defer c.Close()
	if _, _, err := fanout(ctx, c, "test", "ping"); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	var warm, warmHosts []time.Duration
	cpu0 = cpuTime()
	startProfile("warm")
	for range o.runs {
		d, hosts, err := fanout(ctx, c, "test", "ping")
		if err != nil {
			return fmt.Errorf("warm ping: %w", err)
		}
		warm, warmHosts = append(warm, d), append(warmHosts, hosts...)
	}
	endProfile()
	report(n, "ping warm", warm, warmHosts, (cpuTime()-cpu0)/time.Duration(o.runs))

	var runs, runHosts []time.Duration
	cpu0 = cpuTime()
	startProfile("run")
	for range o.runs {
		d, hosts, err := fanout(ctx, c, "command", "run", []string{"uname", "-r"})
		if err != nil {
			return fmt.Errorf("command.run: %w", err)
		}
		runs, runHosts = append(runs, d), append(runHosts, hosts...)
	}
	endProfile()
	report(n, "command.run uname -r", runs, runHosts, (cpuTime()-cpu0)/time.Duration(o.runs))

	// The overlord's memory, with N connections open: this process holds
	// no minion, so all of it is the overlord's.
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss, hwm := procStatus("VmRSS"), procStatus("VmHWM")
	fmt.Printf("%-6d %-22s heap in use %.1f MiB, stacks %.1f MiB, Go sys %.1f MiB, RSS %.1f MiB, peak RSS %.1f MiB\n",
		n, "overlord memory", mib(ms.HeapInuse), mib(ms.StackInuse), mib(ms.Sys), rss/1024, hwm/1024)
	if profile && o.memProfile != "" {
		if f, err := os.Create(o.memProfile); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	return nil
}

// fanout makes one call to every minion and returns its wall time and
// each host's duration; any failed host is an error.
func fanout(ctx context.Context, c *overlord.Client, module, method string, args ...any) (time.Duration, []time.Duration, error) {
	start := time.Now()
	res, err := c.Targets("*").Call(ctx, module, method, args...)
	d := time.Since(start)
	if err != nil {
		return d, nil, err
	}
	hosts := make([]time.Duration, 0, len(res))
	for _, r := range res {
		hosts = append(hosts, r.Duration)
	}
	return d, hosts, nil
}

func report(n int, phase string, runs, hosts []time.Duration, cpu time.Duration) {
	fmt.Printf("%-6d %-22s %10s %10s %10s %12s %12s %12s\n", n, phase, pct(runs, 50), pct(runs, 99), pct(runs, 100),
		pct(hosts, 50), pct(hosts, 99), cpu.Round(100*time.Microsecond))
}

// cpuTime is the CPU (user + system) this process has used: the
// overlord's alone, since the minions run in the child.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	i = max(0, min(i, len(s)-1))
	return s[i].Round(100 * time.Microsecond).String()
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
