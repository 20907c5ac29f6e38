// Package watch runs a minion's watchers: the sources of its events.
// Each watcher checks one thing every interval and emits an event (see
// package events) when what it watches changes:
//
//   - nagios: runs a Nagios plugin; emits on state transitions (OK,
//     WARNING, CRITICAL, UNKNOWN) with the perfdata parsed;
//   - threshold: disk, memory or load against warning and critical
//     thresholds, with hysteresis so that a value hovering at a
//     threshold does not flap;
//   - file: a path's content (SHA-256), size, mode, owner or type;
//   - service: a systemd unit's active and sub state.
//
// Watchers come from [[watch]] tables in funcd's gofunc.toml (Parse) or
// from Go (Watch values), and run in a Runner:
//
//	ws, err := watch.Parse(tomlBytes)
//	...
//	r, err := watch.Start(watch.Options{Sink: journal, Activity: activity, StateDir: dir}, ws)
//	...
//	defer r.Close()
//
// # Changes only, and what is remembered
//
// A watcher emits an event the first time it checks (the state it
// found, with no "previous") and then only when the state changes,
// unless Always is set. With Options.StateDir the last state of each
// watcher is kept on disk, so a restart emits nothing unless something
// changed meanwhile (a file edited while the minion was down is
// reported). A watcher that cannot check (a plugin missing, /proc
// unreadable) emits "watch.failed" once, and "watch.recovered" when it
// checks again; one that cannot run on this host at all (a service
// watcher without systemd) emits "watch.skipped" at Start and is not
// run.
//
// # Pausing during calls
//
// A watcher with PauseDuringCalls does not check while the minion runs
// a call (Options.Activity, which the minion drives): a check that falls
// due waits until the minion is idle, but never longer than one
// interval, so a minion busy all the time still gets checked.
package watch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/internal/fsutil"
)

// Limits of an interval.
const (
	MinEvery = time.Second
	MaxEvery = 24 * time.Hour
)

// Watch is one watcher.
type Watch struct {
	// Name identifies the watcher and is its events' Source (the Nagios
	// bridge's service description): see events.ValidSource. Unique in
	// a Runner.
	Name string
	// Every is the interval between checks; zero means the check's
	// default (nagios 1m, threshold 30s, file 1m, service 30s).
	Every time.Duration
	// Always emits an event at every check, not only when the state
	// changes (only_on_change = false in gofunc.toml). Default false.
	Always bool
	// PauseDuringCalls holds checks while the minion runs a call, at
	// most one interval. Default false.
	PauseDuringCalls bool
	// Check says what to watch: a *Nagios, *Threshold, *File or
	// *Service.
	Check Check
}

// Check is what a watcher checks: *Nagios, *Threshold, *File or
// *Service. Its methods are for the Runner.
type Check interface {
	// Type is the check's type name in gofunc.toml: "nagios", ...
	Type() string
	defaultEvery() time.Duration
	validate() error
	// start prepares the check on this host; an error wrapping
	// ErrUnsupported skips the watcher.
	start(env *env) (source, error)
}

// source is a started check. The Runner calls observe from one
// goroutine at a time.
type source interface {
	// observe checks once and returns a key that changes exactly when
	// the watched state does, and the event data describing the state
	// (prev is the data of the last observation, nil before the first).
	observe(ctx context.Context, prev events.Data) (key string, d events.Data, err error)
	close() error
}

// ErrUnsupported is wrapped by the error of a check that cannot run on
// this host (a service watcher without systemd); Start skips it with a
// "watch.skipped" event instead of failing.
var ErrUnsupported = errors.New("watch: not supported on this host")

// Sink is where a Runner writes events: *events.Journal is one.
type Sink interface {
	Emit(source string, d events.Data) (events.Event, error)
}

// Options configure a Runner.
type Options struct {
	// Sink receives the events; required.
	Sink Sink
	// Activity tells PauseDuringCalls watchers when calls run; nil
	// means never paused.
	Activity *events.Activity
	// StateDir keeps each watcher's last state across restarts (files
	// 0600, directory 0700); "" keeps nothing, so every start emits the
	// state each watcher finds.
	StateDir string
	// Logger receives warnings; nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// Proc is the proc filesystem threshold watchers read; "" means
	// "/proc".
	Proc string
	// Systemctl and SystemdRunDir locate systemd for service watchers;
	// "" means modules/service's defaults.
	Systemctl     string
	SystemdRunDir string

	// checked, when set (by tests), receives a watcher's name after each
	// of its checks.
	checked chan<- string
}

// env is what a check needs when it starts.
type env struct {
	opts   Options
	logger hclog.Logger
	// trigger asks the watcher for a check now (send without blocking:
	// it holds one pending request).
	trigger chan struct{}
}

// poke asks for a check now, unless one is already pending.
func poke(trigger chan struct{}) {
	select {
	case trigger <- struct{}{}:
	default:
	}
}

// Runner runs watchers until Close.
type Runner struct {
	opts    Options
	logger  hclog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	running map[string]*running
	closed  sync.Once
}

// running is one started watcher.
type running struct {
	w       Watch
	every   time.Duration
	src     source
	trigger chan struct{} // buffered 1: a pending "check now"
	// Owned by the watcher's goroutine:
	key     string
	last    events.Data
	failing bool
}

// Start validates every watch and starts them. A watch that is invalid
// (or two with one name) makes Start fail and start nothing; one
// unsupported on this host is skipped with a "watch.skipped" event.
func Start(opts Options, watches []Watch) (*Runner, error) {
	if opts.Sink == nil {
		return nil, errors.New("watch: Options.Sink is required")
	}
	r := &Runner{opts: opts, logger: opts.Logger, running: map[string]*running{}}
	if r.logger == nil {
		r.logger = hclog.NewNullLogger()
	}
	seen := map[string]bool{}
	for i, w := range watches {
		if err := w.validate(); err != nil {
			return nil, fmt.Errorf("watch %d (%q): %w", i+1, w.Name, err)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("watch %d: the name %q is used twice", i+1, w.Name)
		}
		seen[w.Name] = true
	}
	if opts.StateDir != "" {
		if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
			return nil, fmt.Errorf("watch: state directory: %w", err)
		}
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	for _, w := range watches {
		trigger := make(chan struct{}, 1)
		src, err := w.Check.start(&env{opts: opts, logger: r.logger.With("watch", w.Name), trigger: trigger})
		if errors.Is(err, ErrUnsupported) {
			r.logger.Warn("watcher skipped", "watch", w.Name, "reason", err)
			r.emit(w.Name, &events.WatchProblem{Kind: events.TypeWatchSkipped, Watch: w.Name, Error: clip(err.Error(), 1024)})
			continue
		}
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("watch %q: %w", w.Name, err)
		}
		every := w.Every
		if every == 0 {
			every = w.Check.defaultEvery()
		}
		rw := &running{w: w, every: every, src: src, trigger: trigger}
		r.loadState(rw)
		r.running[w.Name] = rw
	}
	for _, rw := range r.running {
		r.wg.Add(1)
		go r.loop(rw)
	}
	return r, nil
}

func (w Watch) validate() error {
	switch {
	case !events.ValidSource(w.Name):
		return fmt.Errorf("name %q: 1 to 128 letters, digits, spaces and _.:@/()+-", w.Name)
	case w.Check == nil:
		return errors.New("no check")
	case w.Every != 0 && (w.Every < MinEvery || w.Every > MaxEvery):
		return fmt.Errorf("every %v: between %v and %v", w.Every, MinEvery, MaxEvery)
	}
	return w.Check.validate()
}

// Trigger makes the named watcher check now (coalesced with a check
// already pending); false if there is no such watcher.
func (r *Runner) Trigger(name string) bool {
	rw, ok := r.running[name]
	if ok {
		poke(rw.trigger)
	}
	return ok
}

// Close stops every watcher, waits for checks in progress (their
// contexts are cancelled) and releases what the checks hold. It is
// idempotent.
func (r *Runner) Close() error {
	var err error
	r.closed.Do(func() {
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
		for _, rw := range r.running {
			if cerr := rw.src.close(); cerr != nil && err == nil {
				err = cerr
			}
		}
	})
	return err
}

// loop checks rw at once and then every interval or trigger.
func (r *Runner) loop(rw *running) {
	defer r.wg.Done()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
		case <-rw.trigger:
		}
		if rw.w.PauseDuringCalls && r.opts.Activity.Busy() {
			ctx, cancel := context.WithTimeout(r.ctx, rw.every)
			r.opts.Activity.WaitIdle(ctx)
			cancel()
			if r.ctx.Err() != nil {
				return
			}
		}
		r.checkOnce(rw)
		if r.opts.checked != nil {
			r.opts.checked <- rw.w.Name
		}
		timer.Reset(rw.every)
	}
}

// checkOnce observes and emits what changed.
func (r *Runner) checkOnce(rw *running) {
	key, d, err := rw.src.observe(r.ctx, rw.last)
	if r.ctx.Err() != nil {
		return // stopping: the check was cut short, not failed
	}
	if err != nil {
		if !rw.failing && r.emit(rw.w.Name, &events.WatchProblem{Kind: events.TypeWatchFailed, Watch: rw.w.Name, Error: clip(err.Error(), 1024)}) {
			rw.failing = true
		}
		r.logger.Debug("watcher check failed", "watch", rw.w.Name, "error", err)
		return
	}
	if rw.failing && r.emit(rw.w.Name, &events.WatchProblem{Kind: events.TypeWatchRecovered, Watch: rw.w.Name}) {
		rw.failing = false
	}
	if key == rw.key && rw.last != nil && !rw.w.Always {
		return
	}
	if !r.emit(rw.w.Name, d) {
		return // not recorded: the next check tries again
	}
	rw.key, rw.last = key, d
	r.saveState(rw)
}

// emit writes one event, logging a failure.
func (r *Runner) emit(source string, d events.Data) bool {
	if _, err := r.opts.Sink.Emit(source, d); err != nil {
		r.logger.Error("watcher event not recorded", "watch", source, "type", d.EventType(), "error", err)
		return false
	}
	return true
}

// state is a watcher's last state on disk.
type state struct {
	Name string          `json:"name"`
	Type string          `json:"type"`
	Key  string          `json:"key"`
	Data json.RawMessage `json:"data"`
}

func (r *Runner) statePath(name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(r.opts.StateDir, "watch-"+hex.EncodeToString(sum[:8])+".json")
}

// loadState restores rw's last state, if kept; a state that does not
// read back is ignored (the watcher then reports what it finds).
func (r *Runner) loadState(rw *running) {
	if r.opts.StateDir == "" {
		return
	}
	b, err := os.ReadFile(r.statePath(rw.w.Name))
	if err != nil {
		return
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil || s.Name != rw.w.Name {
		r.logger.Warn("ignoring a watcher state that does not read back", "watch", rw.w.Name)
		return
	}
	d, err := (events.Event{Type: s.Type, Data: s.Data}).Decode()
	if err != nil {
		return
	}
	rw.key, rw.last = s.Key, d
}

func (r *Runner) saveState(rw *running) {
	if r.opts.StateDir == "" {
		return
	}
	data, err := json.Marshal(rw.last)
	if err == nil {
		var b []byte
		b, err = json.Marshal(state{Name: rw.w.Name, Type: rw.last.EventType(), Key: rw.key, Data: data})
		if err == nil {
			err = fsutil.WriteFileAtomic(r.statePath(rw.w.Name), b, 0o600)
		}
	}
	if err != nil {
		r.logger.Warn("watcher state not saved", "watch", rw.w.Name, "error", err)
	}
}

// clip shortens s to at most n bytes, on a rune boundary, marking the
// cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len("..."), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
