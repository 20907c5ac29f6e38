package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBenchEndToEnd builds the bench and runs it on two small fleets
// with the growth table: the minions' processes, the floor's client and
// the overlord all start, every phase completes on every host (a failed
// host is an error), and the report and the table carry every figure.
// It asserts what was measured, never how fast.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "gofunc-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-n", "3,7", "-runs", "2", "-growth", "-dir", t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"N=3:", "N=7:", "transport direct", "| ping cold |", "| ping warm |", "| overlord RSS |", "| per host, N=7 |", "minions' door: 0 handshakes failed, 0 evicted, 0 connections refused, 0 calls refused busy", "| hosts failed, gofunc/floor (all runs, all phases) | 0/0 | 0/0 |"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// A cold run opens a connection per host; a warm run reuses them
	// all (Observation.NewConnection).
	for _, want := range []string{`(?m)^  ping cold .* 0/0  3,3$`, `(?m)^  ping cold .* 0/0  7,7$`, `(?m)^  ping warm .* 0/0  0,0$`} {
		if got := regexp.MustCompile(want).FindAllString(text, -1); len(got) == 0 {
			t.Errorf("no line matches %s:\n%s", want, text)
		}
	}
	if got := regexp.MustCompile(`(?m)^  ping warm .*  0,0$`).FindAllString(text, -1); len(got) != 2 {
		t.Errorf("want both warm phases to open no connection, got %q\n%s", got, text)
	}
	// Both cold and warm have a floor and a ratio beside gofunc.
	for _, phase := range []string{"ping cold", "ping warm"} {
		re := regexp.MustCompile(`(?m)^  ` + phase + `\s+\S+\s+\S+\s+[0-9]+\.[0-9]{2}\s`)
		if got := re.FindAllString(text, -1); len(got) != 2 {
			t.Errorf("%s: want a floor, gofunc and ratio at both sizes, got %q\n%s", phase, got, text)
		}
	}
}

// TestBenchOverBroker runs the bench with -transport broker on a small
// fleet: the broker process starts, the minions' connections are timed,
// every phase completes on every host, the broker's peak RSS is
// reported, and after the broker restarts every minion answers again;
// the signed broker floor (a bare nats-server) runs beside the pings
// with no failed host, and its figures are printed.
func TestBenchOverBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "gofunc-bench")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-n", "4", "-runs", "1", "-transport", "broker", "-dir", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	text := string(out)
	for _, re := range []string{`transport broker`, `minions connected to the broker in \S+`, `broker process: peak RSS [1-9]`,
		`broker restarted \(down \S+\): all 4 minions answering again \S+ after it took connections`,
		`(?m)^  ping warm .* 0/0  \S+$`, `(?m)^  command.run uname -r .* 0/0  \S+$`,
		`ping warm, CPU per host and run: overlord \d+ µs, minions' processes \d+ µs, broker \d+ µs, total \d+ µs; call signatures verified per call in the minions' processes [0-9.]+ \([0-9.]+ from the shared memo\)`,
		// The signed broker floor, run by run beside gofunc: its p50
		// and the ratio on the cold and warm lines (no failed host,
		// gofunc's or the floor's: 0/0), its CPU split, its broker.
		`floor: minions connected to the bare broker in \S+`, `floor broker process \(bare nats-server\): peak RSS [1-9]`,
		`(?m)^  ping cold\s+[0-9.]+(µs|ms|s)\s+[0-9.]+(µs|ms|s)\s+[0-9]+\.[0-9]{2}\s.* 0/0  \S+$`,
		`(?m)^  ping warm\s+[0-9.]+(µs|ms|s)\s+[0-9.]+(µs|ms|s)\s+[0-9]+\.[0-9]{2}\s.* 0/0  \S+$`,
		`ping warm, floor CPU per host and run: client \d+ µs, minions' processes \d+ µs, broker \d+ µs, total \d+ µs; call signatures verified per call in the minions' processes [0-9.]+ \([0-9.]+ from the shared memo\); read/write syscalls per call: [0-9.]+/[0-9.]+, [0-9.]+/[0-9.]+, [0-9.]+/[0-9.]+`} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("output lacks %s:\n%s", re, text)
		}
	}
}

// TestBenchSingle runs -single briefly: one minion process, its audit
// log fsynced, callers through one Client; every figure is printed,
// no call fails and the measured run opens no connection (the warm-up
// opened them all).
func TestBenchSingle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the bench")
	}
	bin := filepath.Join(t.TempDir(), "gofunc-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-single", "-callers", "4", "-runs", "1", "-duration", "300ms", "-dir", t.TempDir()).CombinedOutput()
	if err != nil {
		t.Fatalf("bench -single: %v\n%s", err, out)
	}
	text := string(out)
	// run, calls/s, calls, client µs, minion µs, fsyncs/s, records/sync, p50, p99, new conns, failed
	row := regexp.MustCompile(`(?m)^\s+1\s+([0-9]+)\s+([0-9]+)\s+[0-9.]+\s+[0-9.]+\s+([0-9]+)\s+[0-9.]+\s+\S+\s+\S+\s+0\s+0$`)
	m := row.FindStringSubmatch(text)
	if m == nil || m[1] == "0" || m[2] == "0" || m[3] == "0" {
		t.Fatalf("want a run with calls, fsyncs, no new connection and no failure:\n%s", text)
	}
	floor := regexp.MustCompile(`(?m)^\s+floor p50\s+([0-9]+) calls/s; CPU per call: client [0-9.]+ µs, server [0-9.]+ µs`)
	if m := floor.FindStringSubmatch(text); m == nil || m[1] == "0" {
		t.Errorf("want the floor's calls/s and CPU per call:\n%s", text)
	}
	durable := regexp.MustCompile(`(?m)^\s+durable floor p50\s+([0-9]+) calls/s; CPU per call: client [0-9.]+ µs, server [0-9.]+ µs; ([0-9]+) fsyncs/s`)
	if m := durable.FindStringSubmatch(text); m == nil || m[1] == "0" || m[2] == "0" {
		t.Errorf("want the durable floor's calls/s and fsyncs/s:\n%s", text)
	}
	for _, want := range []string{"4 callers", "fsynced", "calls/s; CPU per call: client", "load average"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
}

func TestBenchRefusesUnknownTransport(t *testing.T) {
	if _, err := lookupTransport("carrier-pigeon"); err == nil || !strings.Contains(err.Error(), "direct") {
		t.Fatalf("lookupTransport(carrier-pigeon) = %v, want an error naming the choices", err)
	}
}

func TestShardRangeCoversEveryMinionOnce(t *testing.T) {
	for _, n := range []int{1, 7, 1000, 5003} {
		for _, shards := range []int{1, 2, 3, 7} {
			next := 0
			for k := range shards {
				from, to := shardRange(n, k, shards)
				if from != next || to < from {
					t.Fatalf("n=%d shards=%d: shard %d is [%d,%d), want it to start at %d", n, shards, k, from, to, next)
				}
				next = to
			}
			if next != n {
				t.Fatalf("n=%d shards=%d: shards end at %d", n, shards, next)
			}
		}
	}
}

func TestMinionAddrsAreDistinctLoopback(t *testing.T) {
	seen := map[string]bool{}
	for i := range 20000 {
		ip := minionAddr(i)
		if !ip.IsLoopback() || seen[ip.String()] {
			t.Fatalf("minion %d: address %s is not a new loopback address", i, ip)
		}
		seen[ip.String()] = true
	}
}
