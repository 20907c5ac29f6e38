package modtest

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Exchange plays the local attacker of the path-race tests: in a
// goroutine it swaps the directory entries a and b, of any type (a
// regular file and a symbolic link, a directory and a link to another),
// over and over with renameat2(RENAME_EXCHANGE), until the returned stop
// function is called. Each swap is atomic, so a module that checks a
// path and then acts on it may see one entry at the check and the other
// at the act. stop waits for the goroutine and returns the number of
// swaps; it is also called when the test ends. Exchange fails the test,
// under CI, or skips it loudly when the file system cannot exchange.
func Exchange(t testing.TB, a, b string) (stop func() int) {
	t.Helper()
	if err := exchange(a, b); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
			Need(t, "renameat2(RENAME_EXCHANGE)", err)
		}
		t.Fatalf("exchange %s and %s: %v", a, b, err)
	}
	var (
		done  atomic.Bool
		swaps atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			if exchange(a, b) == nil {
				swaps.Add(1)
			}
		}
	}()
	stop = func() int {
		once.Do(func() {
			done.Store(true)
			wg.Wait()
		})
		return int(swaps.Load())
	}
	t.Cleanup(func() { stop() })
	return stop
}

func exchange(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}

// Need stops a test that needs something this host lacks (what, and err
// saying why): it skips loudly, except under CI (CI=true), whose .ci/run
// installs what the tests need, where it fails. err nil does nothing.
func Need(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing under CI (.ci/run installs it): %v", what, err)
	}
	t.Skipf("SKIPPED: %s is missing: %v", what, err)
}

// Repeat calls try until it returns false (the race was won: the test
// has failed), n times, or for d, whichever comes first, and returns the
// number of calls. It bounds a race test in time and iterations on a
// loaded machine, and ends it early once the attacker has won.
func Repeat(n int, d time.Duration, try func() bool) int {
	deadline := time.Now().Add(d)
	i := 0
	for i < n && time.Now().Before(deadline) {
		i++
		if !try() {
			break
		}
	}
	return i
}
