package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// -single: one minion, many calls (issue 16, goal 4). One real minion
// runs in a process of its own with its audit log on the disk (the
// temp dir unless -dir says otherwise: every call's start record is
// fsynced before the method runs, shared by concurrent calls), and
// -callers goroutines of this process call test.ping on it in a loop
// through one overlord Client (the direct transport: kept-alive mutual
// TLS connections, one per caller). The overlord keeps no audit log of
// its own here, so that its disk is not measured in the minion's place.

// singleRun is one measured run of -single.
type singleRun struct {
	wall, clientCPU, minionCPU time.Duration
	calls, newConns            int64
	failed                     int64
	minion                     minionsReport // the minion's counters over the run
	records, commits           uint64        // made durable over the run, and the fsyncs (syncCounts)
	latencies                  []time.Duration
}

func (r singleRun) rate() float64 { return float64(r.calls) / r.wall.Seconds() }

// perCall is d per call, in µs.
func (r singleRun) perCall(d time.Duration) float64 {
	if r.calls == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(r.calls)
}

func runSingle(o options) error {
	dir := o.workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "gofunc-bench-single-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	var info fleetInfo
	setup, err := startProcess(childArgs("setup", dir, 1), &info)
	if err != nil {
		return err
	}
	if err := setup.stop(nil); err != nil {
		return err
	}
	var fleet fleetInfo
	args := childArgs("minions", dir, 1, "-transport", "direct", "-durable-floor")
	if o.cpuProfile != "" {
		args = append(args, "-cpuprofile", o.cpuProfile+".minions0")
	}
	m, err := startProcess(args, &fleet)
	if err != nil {
		return err
	}
	var final minionsReport
	defer func() { _ = m.stop(&final) }()
	id, err := identity.Load(filepath.Join(dir, "admin"))
	if err != nil {
		return err
	}
	s := &single{o: o, minions: m, host: fleet.Minions[0].Name}
	s.c = overlord.New(overlord.WithIdentity(id), overlord.WithMinions(overlord.Static(fleet.Minions)),
		overlord.WithHostTimeout(30*time.Second), overlord.WithObserver(s.observe))
	defer s.c.Close()

	fmt.Printf("gofunc-bench -single: %s, GOMAXPROCS=%d, %d CPUs, %d callers, %d runs of %s, test.ping on one minion\n",
		runtime.Version(), runtime.GOMAXPROCS(0), runtime.NumCPU(), o.callers, o.runs, o.duration)
	fmt.Printf("minion audit log in %s (%s), fsynced; the overlord keeps no audit log\n", filepath.Join(dir, "minions"), fsType(dir))
	load0 := loadAvg()
	gofunc := func() func() error {
		sel := s.c.Targets(s.host)
		// The call's own context outlives the run's end, so that a
		// call in flight then is finished, not cut off.
		return func() error { _, err := sel.Call(context.Background(), "test", "ping"); return err }
	}
	if _, err := s.run(time.Second, gofunc); err != nil { // warm-up: every caller's connection open
		return fmt.Errorf("warm-up: %w", err)
	}
	if o.cpuProfile != "" {
		// The measured runs, in both processes: this one's (the
		// callers, the overlord) and PATH.minions0 (the minion).
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		_ = m.cmd.Process.Signal(syscall.SIGUSR1)
		defer func() { pprof.StopCPUProfile(); f.Close(); _ = m.cmd.Process.Signal(syscall.SIGUSR2) }()
	}
	if err := s.measure("", "minion", gofunc, load0, auditCounts); err != nil {
		return err
	}
	if !o.singleFloor {
		return nil
	}
	// The floor: the same callers against the bare HTTPS server that
	// runs in the minion's process with the minion's certificate.
	fc := &floorClient{admin: id, addrs: map[string]string{}}
	for _, f := range fleet.Floor {
		fc.addrs[f.Name] = f.Addr
	}
	tr := fc.newTransport()
	tr.MaxIdleConnsPerHost = o.callers
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	floor := func() func() error { return func() error { return fc.call(client, s.host) } }
	fmt.Printf("floor: the same callers against a bare HTTPS server in the minion's process (net/http and TLS 1.3 mutual auth on both ends; no XML-RPC, ACL or audit)\n")
	load0 = loadAvg()
	if _, err := s.run(time.Second, floor); err != nil {
		return fmt.Errorf("floor warm-up: %w", err)
	}
	if err := s.measure("floor ", "server", floor, load0, floorCounts); err != nil {
		return err
	}
	// The durable floor: the same again, the server's handler first
	// making one line per call durable in a file beside the minion's
	// audit log (group commit). What it cannot reach, no write-ahead
	// log on this disk can.
	durable := func() func() error { return func() error { return fc.callPath(client, s.host, durablePath) } }
	fmt.Printf("durable floor: the same bare server, each call first appending a line to %s and waiting for its fsync (group commit, as the audit log; no hash chain, encoding or rotation)\n",
		filepath.Join(dir, "minions", s.host, "floor.log"))
	load0 = loadAvg()
	if _, err := s.run(time.Second, durable); err != nil {
		return fmt.Errorf("durable floor warm-up: %w", err)
	}
	return s.measure("durable floor ", "server", durable, load0, floorCounts)
}

// syncCounts picks, from a minions' report, the records made durable
// and the fsyncs that did it: the audit log's or the durable floor's.
type syncCounts func(minionsReport) (records, commits uint64)

func auditCounts(r minionsReport) (uint64, uint64) { return r.AuditRecords, r.AuditCommits }
func floorCounts(r minionsReport) (uint64, uint64) { return r.FloorRecords, r.FloorCommits }

// measure makes the -runs measured runs of call and prints them, and
// their medians on a line starting with label+"p50"; server names the
// other process's CPU column.
func (s *single) measure(label, server string, call func() func() error, load0 float64, synced syncCounts) error {
	var runs []singleRun
	fmt.Printf("  %4s %10s %10s %12s %12s %10s %12s %10s %10s %9s %7s\n", "run", "calls/s", "calls", "client µs", server+" µs",
		"fsyncs/s", "records/sync", "call p50", "call p99", "new conns", "failed")
	for i := range s.o.runs {
		r, err := s.run(s.o.duration, call)
		if err != nil {
			return err
		}
		r.records, r.commits = synced(r.minion)
		runs = append(runs, r)
		fmt.Printf("  %4d %10.0f %10d %12.1f %12.1f %10.0f %12.2f %10s %10s %9d %7d\n", i+1, r.rate(), r.calls,
			r.perCall(r.clientCPU), r.perCall(r.minionCPU), float64(r.commits)/r.wall.Seconds(),
			float64(r.records)/float64(max(1, r.commits)), short(pct(r.latencies, 50)),
			short(pct(r.latencies, 99)), r.newConns, r.failed)
	}
	med := func(f func(singleRun) float64) float64 {
		xs := make([]float64, len(runs))
		for i, r := range runs {
			xs[i] = f(r)
		}
		return median(xs)
	}
	fmt.Printf("  %sp50  %10.0f calls/s; CPU per call: client %.1f µs, %s %.1f µs; %.0f fsyncs/s, %.2f records per fsync; load average %.2f at the start, %.2f at the end\n",
		label, med(singleRun.rate), med(func(r singleRun) float64 { return r.perCall(r.clientCPU) }),
		server, med(func(r singleRun) float64 { return r.perCall(r.minionCPU) }),
		med(func(r singleRun) float64 { return float64(r.commits) / r.wall.Seconds() }),
		med(func(r singleRun) float64 { return float64(r.records) / float64(max(1, r.commits)) }), load0, loadAvg())
	return nil
}

// fsType names the file system dir is on, from its statfs magic.
func fsType(dir string) string {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return "file system unknown"
	}
	switch st.Type {
	case 0x01021994:
		return "tmpfs: no disk"
	case 0xef53:
		return "ext4"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	}
	return fmt.Sprintf("file system 0x%x", st.Type)
}

type single struct {
	o        options
	c        *overlord.Client
	minions  *process
	host     string
	newConns atomic.Int64
}

func (s *single) observe(o overlord.Observation) {
	if o.NewConnection {
		s.newConns.Add(1)
	}
}

// counters asks the minion's process for its counters now.
func (s *single) counters() (minionsReport, error) {
	var rep minionsReport
	if _, err := fmt.Fprintln(s.minions.stdin); err != nil {
		return rep, err
	}
	err := s.minions.out.Decode(&rep)
	return rep, err
}

// run has every caller make calls in a loop for d: newCall gives each
// caller its call.
func (s *single) run(d time.Duration, newCall func() func() error) (singleRun, error) {
	var r singleRun
	before, err := s.counters()
	if err != nil {
		return r, err
	}
	conns0, cpu0, start := s.newConns.Load(), cpuTime(), time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var calls, failed atomic.Int64
	lat := make([][]time.Duration, s.o.callers)
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for k := range s.o.callers {
		wg.Go(func() {
			call := newCall()
			for ctx.Err() == nil {
				t0 := time.Now()
				if err := call(); err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
					continue
				}
				lat[k] = append(lat[k], time.Since(t0))
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	r.wall, r.clientCPU = time.Since(start), cpuTime()-cpu0
	r.calls, r.failed, r.newConns = calls.Load(), failed.Load(), s.newConns.Load()-conns0
	after, err := s.counters()
	if err != nil {
		return r, err
	}
	r.minionCPU = after.CPU - before.CPU
	r.minion = minionsReport{Calls: after.Calls - before.Calls, AuditRecords: after.AuditRecords - before.AuditRecords,
		AuditCommits: after.AuditCommits - before.AuditCommits, FloorRecords: after.FloorRecords - before.FloorRecords,
		FloorCommits: after.FloorCommits - before.FloorCommits}
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	if firstErr != nil {
		fmt.Fprintf(os.Stderr, "bench: -single: %d calls failed, the first: %v\n", r.failed, firstErr)
	}
	return r, nil
}
