package modtest

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func readProc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("SKIPPED: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func TestChurnMovesCounters(t *testing.T) {
	pid := readProc(t, "/proc/sys/kernel/ns_last_pid")
	start := time.Now()
	Churn(t)
	if readProc(t, "/proc/sys/kernel/ns_last_pid") == pid {
		t.Error("Churn started no process: kernel.ns_last_pid did not move")
	}
	if time.Now().Unix() == start.Unix() {
		t.Error("Churn returned within the second it started")
	}
}

// checkStable runs CheckStable on a recorder wrapping t (for its
// TempDir, Cleanup and Context) and returns the failures it reported.
func checkStable[T any](t *testing.T, inventory func(context.Context) (T, error)) []string {
	r := &recorder{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { CheckStable(r, inventory) })
	wg.Wait()
	return r.errs
}

func TestCheckStable(t *testing.T) {
	live := func(context.Context) (map[string]string, error) {
		b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
		return map[string]string{"kernel.ns_last_pid": string(b)}, err
	}
	if errs := checkStable(t, live); len(errs) != 1 || !strings.Contains(errs[0], "ns_last_pid") {
		t.Errorf("CheckStable(a live counter) reported %q, want one failure naming it", errs)
	}
	constant := func(context.Context) ([]string, error) { return []string{"config"}, nil }
	if errs := checkStable(t, constant); len(errs) != 0 {
		t.Errorf("CheckStable(a constant) reported %q", errs)
	}
	broken := func(context.Context) (int, error) { return 0, os.ErrPermission }
	if errs := checkStable(t, broken); len(errs) != 1 || !strings.Contains(errs[0], "first inventory") {
		t.Errorf("CheckStable(a failing inventory) reported %q", errs)
	}
}
