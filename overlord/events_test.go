package overlord_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// journals is a fleet whose minions serve an event journal each, by
// minion name. A minion's journal can be swapped (a restart).
type journals struct {
	mu  sync.Mutex
	dir string
	js  map[string]*events.Journal
	mod map[string]*swappable
	cfg events.Config
}

// swappable is the events module over a journal that a test replaces.
type swappable struct{ p atomic.Pointer[events.Module] }

func (s *swappable) Since(ctx context.Context, epoch string, seq int64, limit int, wait float64, from time.Time) (events.Batch, error) {
	return s.p.Load().Since(ctx, epoch, seq, limit, wait, from)
}

func (s *swappable) Doc() gofunc.ModuleDoc { return (&events.Module{}).Doc() }

func eventFleet(t *testing.T, n int, cfg events.Config) (*fleettest.Fleet, *journals) {
	t.Helper()
	js := &journals{dir: t.TempDir(), js: map[string]*events.Journal{}, mod: map[string]*swappable{}, cfg: cfg}
	f := fleettest.Start(t, fleettest.Config{Minions: n, NoBuiltins: true, Subnet: "127.0.6",
		Modules: func(name string, srv *minion.Server) error {
			js.mu.Lock()
			m := js.mod[name]
			js.mu.Unlock()
			if m != nil { // the minion came back up
				return srv.Register("events", m)
			}
			j, err := events.Open(filepath.Join(js.dir, name), cfg)
			if err != nil {
				return err
			}
			t.Cleanup(func() { js.journal(name).Close() })
			m = &swappable{}
			m.p.Store(&events.Module{Journal: j})
			js.mu.Lock()
			js.js[name], js.mod[name] = j, m
			js.mu.Unlock()
			return srv.Register("events", m)
		}})
	return f, js
}

func (js *journals) journal(name string) *events.Journal {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.js[name]
}

// restart closes name's journal and opens it again: a new epoch, the
// same chain.
func (js *journals) restart(t *testing.T, name string) {
	t.Helper()
	js.mu.Lock()
	defer js.mu.Unlock()
	js.js[name].Close()
	j, err := events.Open(filepath.Join(js.dir, name), js.cfg)
	if err != nil {
		t.Fatal(err)
	}
	js.js[name] = j
	js.mod[name].p.Store(&events.Module{Journal: j})
}

func emit(t *testing.T, j *events.Journal, source, state string) {
	t.Helper()
	if _, err := j.Emit(source, &events.NagiosState{Plugin: "check_x", State: state, Code: 0, Output: state}); err != nil {
		t.Fatal(err)
	}
}

// readAll reads the selection's events to the end of the backlog and
// returns the items and the newest cursor per host.
func readAll(t *testing.T, sel *overlord.Selection, opts overlord.EventsOptions) ([]overlord.EventItem, events.Cursors) {
	t.Helper()
	cursors := events.Cursors{}
	for k, v := range opts.Since {
		cursors[k] = v
	}
	var items []overlord.EventItem
	for it, err := range sel.Events(t.Context(), opts) {
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		items = append(items, it)
		cursors[it.Host] = it.Cursor
	}
	return items, cursors
}

func sources(items []overlord.EventItem) []string {
	var out []string
	for _, it := range items {
		if it.Event != nil {
			out = append(out, it.Host+"/"+it.Event.Source)
		}
	}
	return out
}

// The backlog comes oldest first across minions, each event stamped
// with the name the minion's certificate gives; resuming from the
// cursors yields exactly the events written since, across a restart of
// a minion's journal (a notice says so), with neither gaps nor
// duplicates.
func TestEventsMergeAndResume(t *testing.T) {
	f, js := eventFleet(t, 3, events.Config{})
	names := []string{"m1.test", "m2.test", "m3.test"}
	var want []string
	for i := range 9 {
		n := names[(i*2)%3]
		emit(t, js.journal(n), "w"+string(rune('a'+i)), "OK")
		want = append(want, n+"/w"+string(rune('a'+i)))
	}
	items, cursors := readAll(t, f.Overlord().Targets("*"), overlord.EventsOptions{})
	if got := sources(items); !slices.Equal(got, want) {
		t.Fatalf("backlog\n got %v\nwant %v", got, want)
	}
	for _, it := range items {
		if it.Notice != nil || it.Event.Minion != it.Host {
			t.Errorf("item %+v", it)
		}
	}

	// Nothing new: nothing yielded.
	if again, _ := readAll(t, f.Overlord().Targets("*"), overlord.EventsOptions{Since: cursors}); len(again) != 0 {
		t.Errorf("resumed at the head, got %v", sources(again))
	}

	// m2 restarts (new epoch); new events on m1 and m2.
	js.restart(t, "m2.test")
	emit(t, js.journal("m2.test"), "after", "OK")
	emit(t, js.journal("m1.test"), "after", "OK")
	items, cursors2 := readAll(t, f.Overlord().Targets("*"), overlord.EventsOptions{Since: cursors})
	if got := sources(items); !slices.Equal(got, []string{"m2.test/after", "m1.test/after"}) {
		t.Errorf("after the restart: %v", got)
	}
	var newEpoch int
	for _, it := range items {
		switch n := it.Notice.(type) {
		case *events.NewEpoch:
			newEpoch++
		case nil:
		default:
			t.Errorf("notice %v", n)
		}
	}
	if newEpoch != 1 {
		t.Errorf("%d new-epoch notices, want 1: %+v", newEpoch, items)
	}
	if cursors2["m3.test"] != cursors["m3.test"] || cursors2["m2.test"].Epoch != js.journal("m2.test").Epoch() {
		t.Errorf("cursors %v", cursors2)
	}
}

// Follow yields events as they are written, from minions that were
// down at first too, and stops when the loop breaks.
func TestEventsFollow(t *testing.T) {
	f, js := eventFleet(t, 2, events.Config{})
	emit(t, js.journal("m1.test"), "before", "OK")
	f.Minion("m2.test").Down()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var got []string
	var failures int
	for it, err := range f.Overlord().Targets("*").Events(ctx, overlord.EventsOptions{Follow: true, Wait: 2 * time.Second}) {
		switch {
		case err != nil:
			var he *overlord.HostError
			if !errors.As(err, &he) || he.Host != "m2.test" || !errors.Is(err, overlord.ErrUnreachable) {
				t.Fatalf("error %v", err)
			}
			if failures++; failures == 1 {
				if err := f.Minion("m2.test").Up(); err != nil {
					t.Fatal(err)
				}
				emit(t, js.journal("m2.test"), "back", "OK")
			}
			continue
		case it.Event == nil:
			t.Fatalf("notice %v", it.Notice)
		}
		got = append(got, it.Host+"/"+it.Event.Source)
		if len(got) == 1 {
			emit(t, js.journal("m1.test"), "live", "CRITICAL")
		}
		if len(got) == 3 {
			break
		}
	}
	slices.Sort(got[1:])
	if !slices.Equal(got, []string{"m1.test/before", "m1.test/live", "m2.test/back"}) || failures == 0 {
		t.Errorf("followed %v with %d failures", got, failures)
	}
}

// A minion answers for itself only: lines naming another minion, or
// not in the journal's exact form, are reported as bad lines and never
// delivered; a batch it sends again is not delivered twice.
func TestEventsFromAHostileMinion(t *testing.T) {
	src := t.TempDir()
	j, err := events.Open(src, events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	emit(t, j, "one", "OK")
	emit(t, j, "two", "OK")
	good, err := j.Since(events.Request{})
	if err != nil {
		t.Fatal(err)
	}
	spoofed := `{"minion":"m2.test",` + good.Lines[0][1:]
	hostile := &replayer{batch: events.Batch{Epoch: good.Epoch, First: 1, Head: 2, Lines: append([]string{spoofed}, good.Lines...)}}
	f := fleettest.Start(t, fleettest.Config{Minions: 2, NoBuiltins: true, Subnet: "127.0.7",
		Modules: func(name string, srv *minion.Server) error {
			if name == "m1.test" {
				return srv.Register("events", hostile)
			}
			return srv.Register("events", &events.Module{})
		}})
	items, cursors := readAll(t, f.Overlord().Targets("m1.test"), overlord.EventsOptions{})
	var bad int
	for _, it := range items {
		if it.Host != "m1.test" || (it.Event != nil && it.Event.Minion != "m1.test") {
			t.Errorf("item %+v", it)
		}
		if _, ok := it.Notice.(*events.BadLine); ok {
			bad++
		}
	}
	if got := sources(items); !slices.Equal(got, []string{"m1.test/one", "m1.test/two"}) || bad != 1 {
		t.Errorf("got %v and %d bad lines", got, bad)
	}
	// The same batch again (a replay): nothing new.
	if again, _ := readAll(t, f.Overlord().Targets("m1.test"), overlord.EventsOptions{Since: cursors}); len(sources(again)) != 0 {
		t.Errorf("replayed batch delivered %v", sources(again))
	}
	// A minion without a journal says so, as an error of that host.
	for _, err := range f.Overlord().Targets("m2.test").Events(t.Context(), overlord.EventsOptions{}) {
		if !errors.Is(err, gofunc.ErrUnavailable) {
			t.Errorf("minion without a journal: %v", err)
		}
	}
}

// replayer answers every events.since with the same batch.
type replayer struct{ batch events.Batch }

func (r *replayer) Since(ctx context.Context, epoch string, seq int64, limit int, wait float64, from time.Time) (events.Batch, error) {
	return r.batch, nil
}

func (r *replayer) Doc() gofunc.ModuleDoc { return (&events.Module{}).Doc() }
