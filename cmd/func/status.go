package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/term"
)

// status is the progress line a fan-out keeps at the bottom of the
// terminal (stderr) while hosts answer:
//
//	[ 4980/5000 answered, 3 failed, 12.4s ] waiting for web[17,230-231].example.org
//
// It names the hosts still outstanding, which is what an operator
// waiting on a slow fan-out wants to know, and is redrawn around every
// line printed above it and twice a second while nothing arrives.
// (A generic progress-bar library could neither name the hosts nor
// redraw itself around streamed lines, which is why this is ours.)
//
// It appears only when stderr is a terminal, --quiet is off, and the
// fan-out has run for statusDelay: quick fan-outs never flicker. A nil
// *status is valid and does nothing.
type status struct {
	w     io.Writer
	width func() int
	start time.Time

	mu       sync.Mutex // guards the fields below and writes to w
	pending  map[string]bool
	total    int
	answered int
	failed   int
	shown    bool // a line is on the terminal now

	stop chan struct{}
	done chan struct{}
}

// statusDelay is how long a fan-out runs before its status line shows.
const statusDelay = time.Second

// statusEvery is how often the line is redrawn while nothing arrives
// (the elapsed time moves).
const statusEvery = 500 * time.Millisecond

// newStatus starts the status line of a fan-out to hosts, or returns
// nil when none should be shown.
func (e *env) newStatus(hosts []string) *status {
	f, ok := e.stderr.(*os.File)
	if !ok || e.cli.Quiet || len(hosts) == 0 || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	s := &status{w: f, start: time.Now(), pending: make(map[string]bool, len(hosts)), total: len(hosts),
		stop: make(chan struct{}), done: make(chan struct{}),
		width: func() int {
			if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
				return w
			}
			return 80
		}}
	for _, h := range hosts {
		s.pending[h] = true
	}
	go s.tick()
	return s
}

func (s *status) tick() {
	defer close(s.done)
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.draw()
			s.mu.Unlock()
		}
	}
}

// answer counts one host's answer.
func (s *status) answer(host string, ok bool) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[host] {
		delete(s.pending, host)
		s.answered++
		if !ok {
			s.failed++
		}
	}
}

// around takes the line off the terminal, runs print (which writes
// lines above it), and draws it again.
func (s *status) around(print func()) {
	if s == nil {
		print()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erase()
	print()
	s.draw()
}

// close removes the line for good.
func (s *status) close() {
	if s == nil {
		return
	}
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	s.erase()
}

// draw writes the line, cut to the terminal's width; s.mu is held.
func (s *status) draw() {
	elapsed := time.Since(s.start)
	if elapsed < statusDelay || len(s.pending) == 0 {
		return
	}
	line := fmt.Sprintf("[ %d/%d answered", s.answered, s.total)
	if s.failed > 0 {
		line += fmt.Sprintf(", %d failed", s.failed)
	}
	line += fmt.Sprintf(", %.1fs ] waiting for %s", elapsed.Seconds(), hostList(slices.Sorted(maps.Keys(s.pending)), 6))
	if w := s.width() - 1; len(line) > w && w > 3 {
		line = line[:w-3] + "..."
	}
	fmt.Fprint(s.w, "\r\x1b[K"+line)
	s.shown = true
}

// erase clears the line; s.mu is held.
func (s *status) erase() {
	if s.shown {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.shown = false
	}
}
