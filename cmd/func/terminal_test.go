package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// funcBinary builds this command once per test run.
func funcBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPED in -short: builds the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "func-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "func")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// gate is a module whose wait method returns at once on some minions
// and, on the others, only when the test opens the gate: the test
// decides when the slow hosts answer, with no sleeps or timing guesses.
type gate struct {
	slow bool
	open <-chan struct{}
}

// Wait returns true, after the gate opens on a slow minion.
func (g *gate) Wait(ctx context.Context) (bool, error) {
	if !g.slow {
		return true, nil
	}
	select {
	case <-g.open:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// TestTerminalView runs func on a terminal (a pty, as an operator's
// shell gives it) against 25 minions, 5 of which answer only when the
// test lets them: the 20 quick hosts' lines must be on the screen while
// the 5 are outstanding (streamed, not held back), a status line must
// name the 5 being waited for, and the summary must close the run.
//
// github.com/creack/pty opens the terminal: x/sys/unix has the ioctls
// but no openpty, and doing ptmx/unlockpt/ptsname by hand is what that
// small, widely used library already does right.
func TestTerminalView(t *testing.T) {
	bin := funcBinary(t)
	open := make(chan struct{})
	var closeOnce sync.Once
	release := func() { closeOnce.Do(func() { close(open) }) }
	defer release()
	slow := map[string]bool{}
	for i := 21; i <= 25; i++ {
		slow[fmt.Sprintf("m%d.test", i)] = true
	}
	_, dir := fleetDirWith(t, fleettest.Config{Minions: 25, HostTimeout: time.Minute,
		Modules: func(name string, srv *minion.Server) error {
			return srv.Register("gate", &gate{slow: slow[name], open: open})
		}})

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--dir", dir, "--timeout", "1m", "*", "call", "gate", "wait")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	screen := newScreen(tty)

	// The 20 quick hosts, streamed while 5 are still out.
	for i := 1; i <= 20; i++ {
		screen.waitFor(t, fmt.Sprintf("m%d.test: true\r\n", i))
	}
	// The status line names the hosts it waits for.
	screen.waitFor(t, "[ 20/25 answered")
	screen.waitFor(t, "waiting for m[21-25].test")
	if strings.Contains(screen.text(), "m21.test: true") {
		t.Fatal("a slow host answered before the gate opened")
	}
	if strings.Contains(screen.text(), "----------------") {
		t.Fatal("output on a terminal was grouped, not streamed")
	}
	release()
	for i := 21; i <= 25; i++ {
		screen.waitFor(t, fmt.Sprintf("m%d.test: true\r\n", i))
	}
	screen.waitFor(t, "25 ok\r\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("func: %v\n%s", err, screen.text())
	}
	// Every status line drawn was erased again: after the last erase,
	// nothing but host lines and the summary.
	out := screen.text()
	last := strings.LastIndex(out, "\r\x1b[K")
	if last < 0 {
		t.Fatalf("the status line was never drawn:\n%q", out)
	}
	if tail := out[last+len("\r\x1b[K"):]; regexp.MustCompile(`answered|waiting`).MatchString(tail) {
		t.Errorf("the status line was left on the screen: %q", tail)
	}
}

// screen collects what a program writes to a terminal.
type screen struct {
	mu      sync.Mutex
	buf     strings.Builder
	changed chan struct{} // closed and replaced at every write
	done    bool
}

func newScreen(r io.Reader) *screen {
	s := &screen{changed: make(chan struct{})}
	go func() {
		br := bufio.NewReader(r)
		b := make([]byte, 4096)
		for {
			n, err := br.Read(b)
			s.mu.Lock()
			s.buf.Write(b[:n])
			close(s.changed)
			s.changed = make(chan struct{})
			if err != nil {
				s.done = true // EIO when the program's side closes
			}
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// waitFor waits until the screen shows want, for a generous while.
func (s *screen) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.NewTimer(time.Minute)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		has, changed, done := strings.Contains(s.buf.String(), want), s.changed, s.done
		s.mu.Unlock()
		if has {
			return
		}
		if done {
			t.Fatalf("the program ended without showing %q:\n%q", want, s.text())
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("the terminal never showed %q:\n%q", want, s.text())
		}
	}
}
