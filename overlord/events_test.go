package overlord_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

func eventFleet(t *testing.T, n int, subnet string) *fleettest.Fleet {
	t.Helper()
	return fleettest.Start(t, fleettest.Config{Minions: n, NoBuiltins: true, Subnet: subnet, Events: true})
}

func journal(f *fleettest.Fleet, name string) *events.Journal { return f.Minion(name).Journal() }

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

// sources lists the watcher events (nagios.state) as host/source.
func sources(items []overlord.EventItem) []string {
	var out []string
	for _, it := range items {
		if it.Event != nil && it.Event.Type == "nagios.state" {
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
	f := eventFleet(t, 3, "127.0.6")
	names := []string{"m1.test", "m2.test", "m3.test"}
	var want []string
	for i := range 9 {
		n := names[(i*2)%3]
		emit(t, journal(f, n), "w"+string(rune('a'+i)), "OK")
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
	f.Minion("m2.test").Down()
	if err := f.Minion("m2.test").Up(); err != nil {
		t.Fatal(err)
	}
	emit(t, journal(f, "m2.test"), "after", "OK")
	emit(t, journal(f, "m1.test"), "after", "OK")
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
	var lifecycle []string
	for _, it := range items {
		if it.Event != nil && it.Event.Source == "minion" {
			lifecycle = append(lifecycle, it.Host+"/"+it.Event.Type)
		}
	}
	if !slices.Equal(lifecycle, []string{"m2.test/lifecycle.stopping", "m2.test/lifecycle.started"}) {
		t.Errorf("lifecycle events %v", lifecycle)
	}
	if cursors2["m3.test"] != cursors["m3.test"] || cursors2["m2.test"].Epoch != journal(f, "m2.test").Epoch() {
		t.Errorf("cursors %v", cursors2)
	}
}

// Follow yields events as they are written, from minions that were
// down at first too, and stops when the loop breaks.
func TestEventsFollow(t *testing.T) {
	f := eventFleet(t, 2, "127.0.9")
	emit(t, journal(f, "m1.test"), "before", "OK")
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
				emit(t, journal(f, "m2.test"), "back", "OK")
			}
			continue
		case it.Event == nil:
			if _, ok := it.Notice.(*events.NewEpoch); !ok { // m2 was restarted before we read it
				t.Fatalf("notice %v", it.Notice)
			}
			continue
		case it.Event.Type != "nagios.state":
			continue
		}
		got = append(got, it.Host+"/"+it.Event.Source)
		if len(got) == 1 {
			emit(t, journal(f, "m1.test"), "live", "CRITICAL")
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
	hostile := events.Batch{Epoch: good.Epoch, First: 1, Head: 2, Lines: append([]string{spoofed}, good.Lines...)}
	f := fleettest.Start(t, fleettest.Config{Minions: 2, NoBuiltins: true, Subnet: "127.0.7"})
	f.Minion("m1.test").SetFault(fleettest.Fault{Answer: hostile, Methods: []string{"events.since"}})
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
