package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/gofunc/gofunc/overlord"
)

type statsCmd struct{}

func (statsCmd) Help() string {
	return "CPU % is the busy share of all CPUs since the previous stats reading on that minion (by anyone), or since boot " +
		"on the first; the fullest disk is the mounted filesystem with the highest used %. --json prints stats.all whole.\n\n" +
		examples("func '*' stats", "func '@web' stats --timeout 5s", "func --json '*' stats | jq 'map_values(.value.load.load1)'")
}

// statsRow is the part of stats.all (modules/stats.All) the table shows.
type statsRow struct {
	UptimeS float64 `xmlrpc:"uptime_s"`
	CPU     struct {
		BusyPercent float64 `xmlrpc:"busy_percent"`
	} `xmlrpc:"cpu"`
	Memory struct {
		UsedPercent float64 `xmlrpc:"used_percent"`
	} `xmlrpc:"memory"`
	Load struct {
		Load1  float64 `xmlrpc:"load1"`
		Load5  float64 `xmlrpc:"load5"`
		Load15 float64 `xmlrpc:"load15"`
	} `xmlrpc:"load"`
	Disk []struct {
		Mountpoint  string  `xmlrpc:"mountpoint"`
		UsedPercent float64 `xmlrpc:"used_percent"`
	} `xmlrpc:"disk"`
}

// stats shows stats.all as a table, one row per host, failed hosts
// with their problem; --json, --jsonl and --yaml print the call's
// results as `call stats all` would.
func (e *env) stats() int {
	if e.cli.JSON || e.cli.JSONL || e.cli.YAML || e.cli.Async {
		return e.call("stats", "all", nil)
	}
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	res, err := sel.Call(e.ctx, "stats", "all")
	e.cm.reportDropped(e.cli.Spec.Spec)
	if res == nil {
		return e.failure(err)
	}
	x := e.explainer(c)
	outcomes := writeStatsTable(e.stdout, res, x)
	if !e.cli.Quiet {
		fmt.Fprintln(e.stderr, summaryLine(outcomes))
	}
	if e.ctx.Err() != nil {
		return exitInterrupted
	}
	return callExit(outcomes)
}

// writeStatsTable prints the table, then the hosts that failed with
// their problem, and returns each host's outcome.
func writeStatsTable(w io.Writer, res overlord.Results, x explainer) []hostOutcome {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "HOST\tLOAD1\tLOAD5\tLOAD15\tCPU%\tMEM%\tDISK%\tMOUNT\tUPTIME\t")
	var outcomes, failed []hostOutcome
	for _, h := range res.Hosts() {
		r := res[h]
		var s statsRow
		if r.Err == nil {
			if err := r.Decode(&s); err != nil {
				r.Err = &overlord.HostError{Host: h, Op: "stats.all", Err: fmt.Errorf("%w: %v", overlord.ErrProtocol, err)}
			}
		}
		if r.Err != nil {
			failed = append(failed, problemOutcome(r, x))
			continue
		}
		outcomes = append(outcomes, hostOutcome{host: h, ok: true, class: "ok"})
		disk, mount := "-", "-"
		fullest := -1.0
		for _, d := range s.Disk {
			if d.UsedPercent > fullest {
				fullest, mount = d.UsedPercent, d.Mountpoint
				disk = fmt.Sprintf("%.0f", d.UsedPercent)
			}
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.0f\t%.0f\t%s\t%s\t%s\t\n", h, s.Load.Load1, s.Load.Load5, s.Load.Load15,
			s.CPU.BusyPercent, s.Memory.UsedPercent, disk, mount, uptime(s.UptimeS))
	}
	tw.Flush()
	for _, o := range failed {
		fmt.Fprintf(w, "%s: %s\n", o.host, o.body)
	}
	return append(outcomes, failed...)
}

// uptime is "12d3h", "5h7m" or "42m".
func uptime(seconds float64) string {
	d := time.Duration(seconds) * time.Second
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dm", int(d.Minutes()))
}
