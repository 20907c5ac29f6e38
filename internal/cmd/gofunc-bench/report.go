package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// report prints one fleet size's figures.
func report(r *sizeResult) {
	fmt.Printf("\nN=%d: fleet set up in %s (CPU %s, %d minion processes); load average %.2f at the start, %.2f at the end\n",
		r.n, short(r.setup), short(r.setupCPU), r.shards, r.loadStart, r.loadEnd)
	if r.connect > 0 {
		fmt.Printf("  minions connected to the broker in %s (all dialling at once, once set up)\n", short(r.connect))
	}
	if r.floorConnect > 0 {
		fmt.Printf("  floor: minions connected to the bare broker in %s (all dialling at once, after gofunc's)\n", short(r.floorConnect))
	}
	fmt.Printf("  %-22s %10s %10s %6s %10s %10s %10s %12s %10s %7s  %s\n", "phase", "floor p50", "gofunc p50", "ratio",
		"gofunc p99", "host p50", "host p99", "overlord CPU", "floor CPU", "failed", "new conns per run")
	for _, p := range r.phases {
		ratio := "-"
		if len(p.floor) > 0 {
			ratio = fmt.Sprintf("%.2f", p.ratio())
		}
		fmt.Printf("  %-22s %10s %10s %6s %10s %10s %10s %12s %10s %7s  %s\n", p.name, short(pct(p.floor, 50)),
			short(pct(p.gofunc, 50)), ratio, short(pct(p.gofunc, 99)), short(pct(p.hosts, 50)), short(pct(p.hosts, 99)),
			short(p.gofuncCPU), short(p.floorCPU), fmt.Sprintf("%d/%d", p.gofuncFailed, p.floorFailed), counts(p.newConns))
	}
	for _, p := range r.phases {
		if len(p.gofunc) == 0 || p.name == "resolve" {
			continue
		}
		cpuLine(r, p.name+", CPU per host and run: overlord", p.gofuncCPU, p.minionsCPU, p.sharedCPU, r.sharedPeak > 0,
			uint64(r.n*len(p.gofunc)), p.verified, p.memoised, p.gofuncIO)
		if len(p.floor) > 0 {
			cpuLine(r, p.name+", floor CPU per host and run: client", p.floorCPU, p.floorMinionsCPU, p.floorSharedCPU, r.floorPeak > 0,
				uint64(r.n*len(p.floor)), p.floorVerified, p.floorMemoised, p.floorIO)
		}
	}
	m := r.overlord
	fmt.Printf("  overlord: heap in use %.1f MiB, stacks %.1f MiB, Go sys %.1f MiB, RSS %.1f MiB, peak RSS %.1f MiB, %d goroutines",
		mib(m.HeapInuse), mib(m.StackInuse), mib(m.Sys), m.RSS/1024, m.Peak/1024, m.Goroutines)
	if r.overlordAuditRecord > 0 {
		fmt.Printf(", audit log %.1f KiB per call", float64(r.overlordAuditRecord)/1024)
	}
	fmt.Println()
	fmt.Printf("  floor client: RSS %.1f MiB, peak RSS %.1f MiB; minions' processes: RSS %.1f MiB, peak RSS %.1f MiB\n",
		r.floorMem.RSS/1024, r.floorMem.Peak/1024, r.minionsMem.RSS/1024, r.minionsMem.Peak/1024)
	if r.sharedPeak > 0 {
		fmt.Printf("  broker process: peak RSS %.1f MiB\n", r.sharedPeak/1024)
	}
	if r.floorPeak > 0 {
		fmt.Printf("  floor broker process (bare nats-server): peak RSS %.1f MiB\n", r.floorPeak/1024)
	}
	if rs := r.restart; rs.rounds > 0 {
		fmt.Printf("  broker restarted (down %s): all %d minions answering again %s after it took connections (%d ping rounds)\n",
			short(rs.down), r.n, short(rs.back), rs.rounds)
	}
	d := r.minionsDoor
	fmt.Printf("  minions' door: %d handshakes failed, %d evicted, %d connections refused, %d calls refused busy\n",
		d.HandshakesFailed, d.HandshakesEvicted, d.ConnsRefused, d.Busy)
}

// cpuLine prints a phase's CPU per host and run: the caller's process
// (what names it), the minions' processes', the broker's (when there
// is one), their total, and how many call signatures the minions'
// processes verified per call of calls, and the read/write system calls
// per call of each process.
func cpuLine(r *sizeResult, what string, caller, minions, broker time.Duration, hasBroker bool, calls, verified, memoised uint64, io [3]ioCount) {
	per := func(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(r.n)) }
	fmt.Printf("  %s %s, minions' processes %s", what, per(caller), per(minions))
	if hasBroker {
		fmt.Printf(", broker %s", per(broker))
	}
	fmt.Printf(", total %s", per(caller+minions+broker))
	if calls > 0 && verified+memoised > 0 {
		fmt.Printf("; call signatures verified per call in the minions' processes %.3f (%.3f from the shared memo)",
			float64(verified)/float64(calls), float64(memoised)/float64(calls))
	}
	if calls > 0 && io[0].R+io[0].W > 0 {
		rw := func(c ioCount) string {
			return fmt.Sprintf("%.2f/%.2f", float64(c.R)/float64(calls), float64(c.W)/float64(calls))
		}
		fmt.Printf("; read/write syscalls per call: %s, %s", rw(io[0]), rw(io[1]))
		if hasBroker {
			fmt.Printf(", %s", rw(io[2]))
		}
	}
	fmt.Println()
}

// growthTable prints, as Markdown, what each phase costs at each size
// and per host: when every phase grows linearly, the per-host figures
// stay flat (or fall, as fixed costs are shared by more hosts) from the
// smallest fleet to the largest.
func growthTable(w io.Writer, results []*sizeResult) {
	type column struct {
		name  string
		value func(*sizeResult) float64 // seconds or MiB
		unit  string
	}
	p50 := func(name string) func(*sizeResult) float64 {
		return func(r *sizeResult) float64 { return pct(r.phase(name).gofunc, 50).Seconds() }
	}
	cols := []column{
		{"fleet setup (minions' process)", func(r *sizeResult) float64 { return r.setup.Seconds() }, "s"},
		{"resolve \"*\"", p50("resolve"), "s"},
		{"ping cold", p50("ping cold"), "s"},
		{"ping warm", p50("ping warm"), "s"},
		{"command.run", p50("command.run uname -r"), "s"},
		{"overlord RSS", func(r *sizeResult) float64 { return r.overlord.RSS / 1024 }, "MiB"},
		{"overlord peak RSS", func(r *sizeResult) float64 { return r.overlord.Peak / 1024 }, "MiB"},
		{"overlord heap", func(r *sizeResult) float64 { return mib(r.overlord.HeapInuse) }, "MiB"},
		{"minions' processes RSS", func(r *sizeResult) float64 { return r.minionsMem.RSS / 1024 }, "MiB"},
	}
	fmt.Fprintf(w, "\n| phase |")
	for _, r := range results {
		fmt.Fprintf(w, " N=%d |", r.n)
	}
	for _, r := range results {
		fmt.Fprintf(w, " per host, N=%d |", r.n)
	}
	fmt.Fprintf(w, "\n|---|")
	for range 2 * len(results) {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, c := range cols {
		fmt.Fprintf(w, "| %s |", c.name)
		for _, r := range results {
			fmt.Fprintf(w, " %s |", format(c.value(r), c.unit))
		}
		for _, r := range results {
			fmt.Fprintf(w, " %s |", perHost(c.value(r)/float64(r.n), c.unit))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| hosts failed, gofunc/floor (all runs, all phases) |")
	for _, r := range results {
		g, f := 0, 0
		for _, p := range r.phases {
			g, f = g+p.gofuncFailed, f+p.floorFailed
		}
		fmt.Fprintf(w, " %d/%d |", g, f)
	}
	for range results {
		fmt.Fprintf(w, " |")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| load average (start–end) |")
	for _, r := range results {
		fmt.Fprintf(w, " %.1f–%.1f |", r.loadStart, r.loadEnd)
	}
	for range results {
		fmt.Fprintf(w, " |")
	}
	fmt.Fprintln(w)
}

// counts formats per-run counts as "7,0,0"; "-" when there are none.
func counts(ns []int64) string {
	if len(ns) == 0 {
		return "-"
	}
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return strings.Join(parts, ",")
}

func format(v float64, unit string) string {
	if unit == "s" {
		return short(time.Duration(v * float64(time.Second)))
	}
	return fmt.Sprintf("%.1f MiB", v)
}

func perHost(v float64, unit string) string {
	if unit == "s" {
		return fmt.Sprintf("%.1f µs", v*1e6)
	}
	return fmt.Sprintf("%.1f KiB", v*1024)
}
