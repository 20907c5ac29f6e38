package events

import (
	"testing"
)

// BenchmarkEmit: one durable (fsynced) event per op.
func BenchmarkEmit(b *testing.B) {
	j, err := Open(b.TempDir(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	d := &NagiosState{Plugin: "check_disk", State: "OK", Output: "DISK OK - free space: / 3326 MB (56%)", Perfdata: []Perf{{Label: "/", Value: 2643, UOM: "MB", Warn: "5948", Crit: "5958", Min: "0", Max: "5968"}}}
	for b.Loop() {
		if _, err := j.Emit("disk root", d); err != nil {
			b.Fatal(err)
		}
	}
}

// fullJournal writes n events into a new journal and closes it.
func fullJournal(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	j, err := Open(dir, Config{MaxEvents: n})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	d := &ThresholdState{Metric: "load", Value: 1.5, Level: LevelOK, Warn: 3, Crit: 4, Hysteresis: 0.2}
	items := make([]item, 100)
	for i := range items {
		items[i] = item{source: "load", data: d}
	}
	for written := 0; written < n; written += len(items) {
		if _, err := j.write(items); err != nil { // 100 per fsync: only to build the fixture fast
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkOpen: opening (reading and checking every line of) a full
// journal of the default size.
func BenchmarkOpen(b *testing.B) {
	dir := fullJournal(b, DefaultMaxEvents)
	for b.Loop() {
		j, err := Open(dir, Config{})
		if err != nil {
			b.Fatal(err)
		}
		j.Close()
	}
}

// BenchmarkSinceAndReceive: a consumer reading a full journal, 1,000
// events per batch, checking every hash and the chain.
func BenchmarkSinceAndReceive(b *testing.B) {
	j, err := Open(fullJournal(b, DefaultMaxEvents), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	for b.Loop() {
		tr := NewTracker(nil)
		for {
			batch, err := j.Since(tr.Request("m", MaxLimit, 0))
			if err != nil {
				b.Fatal(err)
			}
			if evs, _ := tr.Accept("m", batch); len(evs) == 0 {
				break
			}
		}
	}
}
