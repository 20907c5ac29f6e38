// Monitoring is a check runner: it asks many hosts for their load and
// root-disk usage in one fan-out each, prints a summary table, and exits
// with a Nagios status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//
//	go run ./examples/monitoring --dir ~/.gofunc "web*"
//	go run ./examples/monitoring --demo        # against a throwaway fleet
//
// The worst state wins, in Nagios's order of urgency: CRITICAL, then
// WARNING, then UNKNOWN (a host that could not be asked), then OK.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// State is a Nagios service state; its value is the plugin exit code.
type State int

// States.
const (
	OK State = iota
	Warning
	Critical
	Unknown
)

func (s State) String() string { return [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}[s] }

// urgency orders states for "the worst wins".
func (s State) urgency() int { return [...]int{0, 2, 3, 1}[s] }

func worst(a, b State) State {
	if b.urgency() > a.urgency() {
		return b
	}
	return a
}

// Thresholds for the two checks.
type Thresholds struct {
	WarnLoad, CritLoad float64 // 1-minute load per host
	WarnDisk, CritDisk float64 // root file system, percent used
}

// Row is one host's line in the table.
type Row struct {
	Host    string
	Load1   float64
	DiskPct float64
	State   State
	Note    string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, out io.Writer) int {
	fs := flag.NewFlagSet("monitoring", flag.ContinueOnError)
	dir := fs.String("dir", "", "overlord identity directory (default ~/.gofunc)")
	demo := fs.Bool("demo", false, "run against a throwaway fleet of four minions, one of them down")
	th := Thresholds{}
	fs.Float64Var(&th.WarnLoad, "warn-load", 4, "1-minute load that is a WARNING")
	fs.Float64Var(&th.CritLoad, "crit-load", 8, "1-minute load that is CRITICAL")
	fs.Float64Var(&th.WarnDisk, "warn-disk", 80, "root disk percent used that is a WARNING")
	fs.Float64Var(&th.CritDisk, "crit-disk", 95, "root disk percent used that is CRITICAL")
	if err := fs.Parse(args); err != nil {
		return int(Unknown)
	}
	spec := "*"
	if fs.NArg() > 0 {
		spec = fs.Arg(0)
	}
	var client *overlord.Client
	if *demo {
		f, err := fleettest.New(fleettest.Config{Minions: 4})
		if err != nil {
			fmt.Fprintln(out, "UNKNOWN:", err)
			return int(Unknown)
		}
		defer f.Close()
		f.Minions()[3].Down()
		client = f.Client(overlord.WithHostTimeout(3 * time.Second))
	} else {
		opts := []overlord.Option{}
		if *dir != "" {
			opts = append(opts, overlord.WithIdentityDir(*dir))
		}
		client = overlord.New(opts...)
		defer client.Close()
	}
	rows, state, err := check(ctx, client.Targets(spec), th)
	if err != nil {
		fmt.Fprintln(out, "UNKNOWN:", err)
		return int(Unknown)
	}
	report(out, rows, state)
	return int(state)
}

// check runs both fan-outs and judges each host.
func check(ctx context.Context, sel *overlord.Selection, th Thresholds) ([]Row, State, error) {
	loads, err := sel.Call(ctx, "process", "loadavg")
	if loads == nil {
		return nil, Unknown, err
	}
	disks, _ := sel.Call(ctx, "disk", "usage", "/")
	var rows []Row
	overall := OK
	for _, h := range loads.Hosts() {
		row := judge(h, loads[h], disks[h], th)
		overall = worst(overall, row.State)
		rows = append(rows, row)
	}
	return rows, overall, nil
}

func judge(host string, load, disk overlord.Result, th Thresholds) Row {
	row := Row{Host: host}
	var avg []float64
	if err := load.Decode(&avg); err != nil || len(avg) == 0 {
		row.State, row.Note = Unknown, fmt.Sprint("load: ", errText(err, load))
		return row
	}
	var usage []struct {
		UsedPercent float64 `xmlrpc:"used_percent"`
	}
	if err := disk.Decode(&usage); err != nil || len(usage) == 0 {
		row.State, row.Note = Unknown, fmt.Sprint("disk: ", errText(err, disk))
		return row
	}
	row.Load1, row.DiskPct = avg[0], usage[0].UsedPercent
	row.State = worst(level(row.Load1, th.WarnLoad, th.CritLoad), level(row.DiskPct, th.WarnDisk, th.CritDisk))
	return row
}

func level(v, warn, crit float64) State {
	switch {
	case v >= crit:
		return Critical
	case v >= warn:
		return Warning
	}
	return OK
}

func errText(err error, r overlord.Result) string {
	if r.Err != nil {
		return r.Err.Error()
	}
	if err != nil {
		return err.Error()
	}
	return "empty answer"
}

func report(out io.Writer, rows []Row, overall State) {
	counts := map[State]int{}
	for _, r := range rows {
		counts[r.State]++
	}
	fmt.Fprintf(out, "%s - %d hosts: %d ok, %d warning, %d critical, %d unknown\n", overall, len(rows),
		counts[OK], counts[Warning], counts[Critical], counts[Unknown])
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tLOAD1\tDISK%\tSTATE\tNOTE")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.2f\t%.1f\t%s\t%s\n", r.Host, r.Load1, r.DiskPct, r.State, r.Note)
	}
	tw.Flush()
}
