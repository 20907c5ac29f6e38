package ca

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc/audit"
)

// BenchmarkEnroll50k enrolls a fleet of 50,000 minions into one CA, in
// process, the way a fleet's first boot does: 64 minions at a time,
// each request autosigned, with the certmaster's shared audit log
// (DIR/audit.log) fsynced like the daemon's. It reports the signature
// rate over the 1,000 signatures before the CA holds 1k, 10k and 50k
// certificates, so a cost that grows with the index shows as a falling
// rate. Run it alone (it takes a minute or two):
//
//	go test -run '^$' -bench Enroll50k -benchtime 1x ./ca/
//
// GOFUNC_BENCH_FLEET=N changes the fleet size (the marks scale with it).
func BenchmarkEnroll50k(b *testing.B) {
	fleet := 50000
	if n := envInt("GOFUNC_BENCH_FLEET"); n > 0 {
		fleet = n
	}
	const window, workers = 1000, 64
	// A few more than the fleet, so that the last mark is measured while
	// every worker is still busy (the tail of a run has fewer).
	total := fleet + 2*workers
	csrs := make([][]byte, total)
	for i := range csrs {
		key, err := newKey()
		if err != nil {
			b.Fatal(err)
		}
		if csrs[i], err = makeCSR(key, fmt.Sprintf("m%06d.fleet.example", i)); err != nil {
			b.Fatal(err)
		}
	}
	marks := []int{fleet / 50, fleet / 5, fleet}

	for b.Loop() {
		dir := b.TempDir()
		a, err := Init(Config{Dir: dir, Audit: &audit.Shared{Path: filepath.Join(dir, "audit.log")}})
		if err != nil {
			b.Fatal(err)
		}
		done := make([]time.Time, total) // when the i-th signature completed
		var next, count atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= total {
						return
					}
					res, err := a.Submit(context.Background(), Request{CSR: csrs[i], Source: "192.0.2.1:4000"}, "*")
					if err != nil || res.Status != StatusSigned {
						b.Errorf("submit %d: %v %v", i, res.Status, err)
						return
					}
					done[count.Add(1)-1] = time.Now()
				}
			})
		}
		wg.Wait()
		for _, m := range marks {
			lo := max(m-1-window, 0)
			rate := float64(m-1-lo) / done[m-1].Sub(done[lo]).Seconds()
			b.ReportMetric(rate, fmt.Sprintf("sig/s@%dk", m/1000))
		}
		b.ReportMetric(float64(fleet-1)/done[fleet-1].Sub(done[0]).Seconds(), "sig/s")
	}
}

func envInt(name string) int {
	var n int
	fmt.Sscan(os.Getenv(name), &n)
	return n
}
