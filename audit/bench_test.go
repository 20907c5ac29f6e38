package audit

import (
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func benchRecord() Record {
	args, digest := SummarizeArgs([]any{[]any{"systemctl", "restart", "nginx"}}, nil)
	return Record{Kind: KindCallStart, CallID: "0123456789abcdef01234567", Caller: "overlord1", Role: "overlord",
		Serial: "5f3a9c", Remote: "10.0.0.1:51234", Method: "command.run", Args: args, ArgsDigest: digest}
}

// BenchmarkAppend is one goroutine: one write and one fsync per record.
func BenchmarkAppend(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "audit.log"), Config{})
	rec := benchRecord()
	for b.Loop() {
		if _, err := l.Append(rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendParallel is 16 goroutines per CPU sharing fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "audit.log"), Config{})
	rec := benchRecord()
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkCallRecords is the minion's pattern, from 8 goroutines (8
// callers): a start record that must be durable (Append), then an end
// record that is only written (AppendNoSync). ns/op is per call.
func BenchmarkCallRecords(b *testing.B) {
	l := openLog(b, filepath.Join(b.TempDir(), "audit.log"), Config{})
	start, end := benchRecord(), Record{Kind: KindCallEnd, CallID: "0123456789abcdef01234567", Outcome: OutcomeOK}
	b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
	began := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(start); err != nil {
				b.Error(err)
				return
			}
			if _, err := l.AppendNoSync(end); err != nil {
				b.Error(err)
				return
			}
		}
	})
	st := l.Stats()
	b.ReportMetric(float64(b.N)/time.Since(began).Seconds(), "calls/s")
	b.ReportMetric(float64(st.Records)/float64(max(1, st.Commits)), "records/fsync")
}
