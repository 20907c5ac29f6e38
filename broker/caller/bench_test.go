package caller_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/fleettest"
)

// cpuTime is the CPU (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkPingOverBroker is a warm test.ping to 32 minions through a
// real broker, all three parties in this process: what one fan-out
// costs them together (ns/op, and the CPU per host), with the process's
// memo of call signatures (broker.SetCallVerifyMemo: the group's one
// signature verified once) and without (each minion verifies it, as on
// its own machine).
//
//	TMPDIR=/dev/shm go test -run '^$' -bench PingOverBroker -count 5 ./broker/caller/
func BenchmarkPingOverBroker(b *testing.B) {
	e := newEnv(b, fleettest.Config{Minions: 32, Subnet: "127.0.48"})
	c := e.client(e.f.Admin())
	defer broker.SetCallVerifyMemo(true)
	for _, tc := range []struct {
		name string
		memo bool
	}{{"memo", true}, {"no-memo", false}} {
		broker.SetCallVerifyMemo(tc.memo)
		b.Run(tc.name, func(b *testing.B) {
			cpu0 := cpuTime()
			verified0, _ := broker.CallVerifyStats()
			for b.Loop() {
				if _, err := c.Targets("*").Call(b.Context(), "test", "ping"); err != nil {
					b.Fatal(err)
				}
			}
			hosts := float64(b.N * len(e.f.Minions()))
			verified, _ := broker.CallVerifyStats()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/hosts, "cpu-µs/host")
			b.ReportMetric(float64(verified-verified0)/hosts, "verifies/host")
		})
	}
}
