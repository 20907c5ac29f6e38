package minion_test

import (
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/minion"
)

// BenchmarkPing measures test.ping calls per second on one minion over
// kept-alive connections, with the audit log on (a start and an end
// record, fsynced, per call; concurrent calls share fsyncs).
func BenchmarkPing(b *testing.B) {
	e := start(b, nil)
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.callKeep(c, "test.ping"); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := e.callKeep(c, "test.ping"); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
}

// BenchmarkBusyRefusal measures the cost of a CodeBusy answer: no audit
// write, so a flood of them stays cheap.
func BenchmarkBusyRefusal(b *testing.B) {
	g := newGate()
	e := start(b, func(s *minion.Server) {
		s.MaxConcurrent = 1
		mustRegister(b, s, "gate", g)
	})
	holder := e.client(gofunc.RoleOverlord, "holder")
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.call(holder, "gate.wait", "hold")
	}()
	<-g.started
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	for b.Loop() {
		if _, err := e.callKeep(c, "test.ping"); err == nil {
			b.Fatal("not refused")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "refusals/s")
	close(g.release)
	<-done
}

// BenchmarkAsync measures starting an async job and reading its result.
func BenchmarkAsync(b *testing.B) {
	e := start(b, func(s *minion.Server) { s.JobDir = b.TempDir() })
	c := e.client(gofunc.RoleOverlord, "admin")
	defer c.CloseIdleConnections()
	for b.Loop() {
		id, err := e.callKeep(c, "async.test.ping")
		if err != nil {
			b.Fatal(err)
		}
		for {
			st, err := e.callKeep(c, "jobs.job_status", id)
			if err != nil {
				b.Fatal(err)
			}
			if st.([]any)[0] != int64(minion.JobRunning) {
				break
			}
		}
	}
}
