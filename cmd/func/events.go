package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/events/nagioscmd"
	"github.com/gofunc/gofunc/internal/glob"
	"github.com/gofunc/gofunc/overlord"
)

type eventsCmd struct {
	Since      string `help:"Where to start: a cursor that an earlier run printed (its last stderr line, after 'cursor: '), or how far back: 30m, 2h, 7d. Default: everything the minions' journals hold." placeholder:"CURSOR|DURATION"`
	Follow     bool   `short:"f" help:"After the events so far, keep waiting for new ones (Ctrl-C stops; the cursor is printed)."`
	Type       string `help:"Show only events whose type matches this glob (nagios.*, lifecycle.*, watch.failed); the cursor still moves past the others." placeholder:"GLOB"`
	CursorFile string `name:"cursor-file" help:"Resume from the cursors in FILE when it exists, and keep it up to date (for a bridge that runs as a service)." type:"path" placeholder:"FILE"`
	NagiosCmd  string `name:"nagios-cmd" help:"Also write watcher events (or those --type selects) as PROCESS_SERVICE_CHECK_RESULT commands to this Nagios/Icinga command file (FIFO), host = the minion's certificate name; the cursor moves only past what was written." type:"path" placeholder:"FILE"`
}

func (eventsCmd) Help() string {
	return "Events are oldest first (across minions, by time), one per line: minion, seq, time, severity, type, source, data. " +
		"Gaps, forks, restarts and replaced journals are reported on stderr, never hidden; the last line on stderr is " +
		"the cursor to resume from with --since, with neither gaps nor duplicates.\n\n" +
		examples("func '*' events --since 1h", "func '*' events --since \"$(cat cursor)\" 2> >(tail -n1 | sed 's/^cursor: //' > cursor.new)",
			"func '@db' events --follow --type 'nagios.*'", "func --json '*' events --since 30m",
			"func '*' events --follow --cursor-file /var/lib/gofunc-bridge/cursor --nagios-cmd /var/lib/nagios4/rw/nagios.cmd")
}

// parseSince reads --since: a duration back from now (Go's, or N d for
// days) or a cursor set.
func parseSince(s string, now time.Time) (events.Cursors, time.Time, error) {
	if s == "" {
		return nil, time.Time{}, nil
	}
	if d, ok := parseAge(s); ok {
		return nil, now.Add(-d), nil
	}
	cs, err := events.ParseCursors(strings.TrimPrefix(strings.TrimSpace(s), "cursor: "))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("--since %q: neither a duration (30m, 2h, 7d) nor a cursor: %w", clip(s), err)
	}
	return cs, time.Time{}, nil
}

// parseAge reads "90s", "30m", "2h", "1h30m" or "7d".
func parseAge(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		var days int
		if _, err := fmt.Sscanf(n, "%d", &days); err == nil && days >= 0 && fmt.Sprint(days) == n {
			return time.Duration(days) * 24 * time.Hour, true
		}
		return 0, false
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// eventsRun is one `func SPEC events`.
type eventsRun struct {
	e       *env
	cursors events.Cursors // the newest cursor per minion: what is printed and saved
	saved   time.Time
	failed  map[string]overlord.Result
	hosts   map[string]bool
	count   int
	bridge  *nagioscmd.Writer
}

func (e *env) events() int {
	cmd := e.cli.Spec.Events
	since, from, err := parseSince(cmd.Since, time.Now())
	if err != nil {
		return e.usage(err)
	}
	if cmd.CursorFile != "" {
		saved, err := readCursorFile(cmd.CursorFile)
		if err != nil {
			return e.usage(err)
		}
		if since == nil && from.IsZero() {
			since = saved
		}
	}
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	r := &eventsRun{e: e, cursors: events.Cursors{}, failed: map[string]overlord.Result{}, hosts: map[string]bool{}}
	for k, v := range since {
		r.cursors[k] = v
	}
	if cmd.NagiosCmd != "" {
		r.bridge = &nagioscmd.Writer{Path: cmd.NagiosCmd}
		if cmd.Type != "" {
			r.bridge.Filter = func(ev events.Event) bool { return glob.Match(cmd.Type, ev.Type) }
		}
	}
	x := e.explainer(c)
	for it, err := range sel.Events(e.ctx, overlord.EventsOptions{Since: since, From: from, Follow: cmd.Follow}) {
		if it.Host == "" && err != nil {
			if errors.Is(err, context.Canceled) && e.ctx.Err() != nil {
				break
			}
			return e.failure(err)
		}
		r.hosts[it.Host] = true
		if err != nil {
			res := overlord.Result{Host: it.Host, Err: err}
			r.failed[it.Host] = res
			r.problem(problemOutcome(res, x))
			continue
		}
		delete(r.failed, it.Host)
		if !r.item(it) {
			break
		}
	}
	e.cm.reportDropped(e.cli.Spec.Spec)
	return r.finish()
}

// item shows one item and moves its host's cursor; false stops the run
// (the bridge cannot write).
func (r *eventsRun) item(it overlord.EventItem) bool {
	e := r.e
	if it.Notice != nil {
		if e.cli.JSON || e.cli.JSONL {
			writeJSONLine(e.stdout, map[string]any{"minion": it.Host, "notice": noticeKind(it.Notice), "message": it.Notice.String()})
		}
		fmt.Fprintf(e.stderr, "func: %s\n", it.Notice)
		r.advance(it.Host, it.Cursor)
		return true
	}
	ev := *it.Event
	if r.bridge != nil && !r.toNagios(ev) {
		return false
	}
	if t := e.cli.Spec.Events.Type; t == "" || glob.Match(t, ev.Type) {
		r.count++
		if e.cli.JSON || e.cli.JSONL {
			writeJSONLine(e.stdout, ev)
		} else {
			fmt.Fprintln(e.stdout, ev.String())
		}
	}
	r.advance(it.Host, it.Cursor)
	return true
}

// toNagios writes ev to the command file, waiting (with --follow) while
// Nagios is not reading it. False: the event could not be written.
func (r *eventsRun) toNagios(ev events.Event) bool {
	wait := time.Second
	for {
		n, err := r.bridge.Write(r.e.ctx, []events.Event{ev})
		if n == 1 {
			return true
		}
		if !errors.Is(err, nagioscmd.ErrNotReading) || !r.e.cli.Spec.Events.Follow {
			fmt.Fprintf(r.e.stderr, "func: %s: event #%d not sent to Nagios: %v\n", ev.Minion, ev.Seq, err)
			return false
		}
		r.e.log.Warn("nagios is not reading its command file; waiting", "path", r.bridge.Path, "retry", wait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-r.e.ctx.Done():
			t.Stop()
			return false
		}
		wait = min(2*wait, 30*time.Second)
	}
}

func (r *eventsRun) problem(o hostOutcome) {
	e := r.e
	if e.cli.JSON || e.cli.JSONL {
		writeJSONLine(e.stdout, map[string]any{"minion": o.host, "error": o.json.Error})
	}
	fmt.Fprintf(e.stderr, "func: %s: %s\n", o.host, o.body)
}

// advance moves host's cursor and, with --cursor-file, saves the
// cursors at most once a second.
func (r *eventsRun) advance(host string, c events.Cursor) {
	r.cursors[host] = c
	if path := r.e.cli.Spec.Events.CursorFile; path != "" && time.Since(r.saved) >= time.Second {
		r.save(path)
	}
}

func (r *eventsRun) save(path string) {
	if err := writeCursorFile(path, r.cursors); err != nil {
		fmt.Fprintf(r.e.stderr, "func: %v\n", err)
		return
	}
	r.saved = time.Now()
}

// finish prints the summary and the cursor (last), saves the cursor
// file, and returns the exit status: 1 when a host failed (and has not
// answered since), 130 when interrupted.
func (r *eventsRun) finish() int {
	e := r.e
	if path := e.cli.Spec.Events.CursorFile; path != "" {
		r.save(path)
	}
	var outcomes []hostOutcome
	x := explainer{timeout: e.cli.Timeout}
	for h := range r.hosts {
		if res, bad := r.failed[h]; bad {
			outcomes = append(outcomes, problemOutcome(res, x))
			continue
		}
		outcomes = append(outcomes, hostOutcome{host: h, ok: true, class: "ok"})
	}
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].host < outcomes[j].host })
	text := r.cursors.String()
	if e.cli.JSON || e.cli.JSONL {
		writeJSONLine(e.stdout, map[string]any{"cursor": text})
	}
	if !e.cli.Quiet {
		fmt.Fprintf(e.stderr, "%d events; %s\n", r.count, summaryLine(outcomes))
	}
	fmt.Fprintf(e.stderr, "cursor: %s\n", text)
	switch {
	case e.ctx.Err() != nil:
		return exitInterrupted
	case len(r.failed) > 0:
		return exitFailed
	}
	return exitOK
}

func noticeKind(n events.Notice) string {
	switch n.(type) {
	case *events.Gap:
		return "gap"
	case *events.Fork:
		return "fork"
	case *events.NewEpoch:
		return "new_epoch"
	case *events.NewChain:
		return "new_chain"
	case *events.BadLine:
		return "bad_line"
	}
	return "notice"
}

// readCursorFile reads the cursors a run saved; a missing file is an
// empty set.
func readCursorFile(path string) (events.Cursors, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--cursor-file: %w", err)
	}
	cs, err := events.ParseCursors(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("--cursor-file %s: %w", path, err)
	}
	return cs, nil
}

// writeCursorFile replaces path atomically (a crash leaves the old
// cursors or the new, never half of them).
func writeCursorFile(path string, cs events.Cursors) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(cs.String() + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("--cursor-file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("--cursor-file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("--cursor-file: %w", err)
	}
	return nil
}
