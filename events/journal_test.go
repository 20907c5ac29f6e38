package events

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func open(t *testing.T, dir string, cfg Config) *Journal {
	t.Helper()
	j, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func emitN(t *testing.T, j *Journal, n int) {
	t.Helper()
	for i := range n {
		if _, err := j.Emit("check_"+string(rune('a'+i%26)), &NagiosState{Plugin: "check_x", State: "OK", Output: strings.Repeat("x", i%7)}); err != nil {
			t.Fatal(err)
		}
	}
}

// all reads the whole journal through a tracker, as a consumer would.
func all(t *testing.T, j *Journal, tr *Tracker, minion string) ([]Event, []Notice) {
	t.Helper()
	var evs []Event
	var notices []Notice
	for {
		b, err := j.Since(tr.Request(minion, 0, 0))
		if err != nil {
			t.Fatal(err)
		}
		e, n := tr.Accept(minion, b)
		evs, notices = append(evs, e...), append(notices, n...)
		if !b.More {
			return evs, notices
		}
	}
}

func TestEmitAndRead(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	started, err := j.Lifecycle(Lifecycle{Phase: PhaseStarted, Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if started.Seq != 1 || started.PrevHash != "" || started.Type != "lifecycle.started" || started.Source != SourceMinion ||
		started.Epoch != j.Epoch() || started.Severity != SeverityInfo {
		t.Fatalf("first event = %+v", started)
	}
	crit, err := j.Emit("disk_root", &NagiosState{Plugin: "check_disk", State: "CRITICAL", Previous: "OK", Code: 2,
		Output: "DISK CRITICAL", Perfdata: []Perf{{Label: "/", Value: 97, UOM: "%", Warn: "80", Crit: "95"}}})
	if err != nil {
		t.Fatal(err)
	}
	if crit.Seq != 2 || crit.PrevHash != started.Hash || crit.Severity != SeverityCritical {
		t.Fatalf("second event = %+v", crit)
	}
	b, err := j.Since(Request{})
	if err != nil {
		t.Fatal(err)
	}
	if b.First != 1 || b.Head != 2 || len(b.Lines) != 2 || b.More || b.Reset || b.Epoch != j.Epoch() {
		t.Fatalf("Since = %+v", b)
	}
	evs, err := Receive("web1.example.org", b.Lines)
	if err != nil {
		t.Fatal(err)
	}
	if evs[1].Minion != "web1.example.org" || evs[1].Hash != crit.Hash {
		t.Errorf("received %+v", evs[1])
	}
	d, err := evs[1].Decode()
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := d.(*NagiosState); !ok || n.State != "CRITICAL" || n.Perfdata[0].Value != 97 {
		t.Errorf("Decode = %#v", d)
	}
	if l, err := evs[0].Decode(); err != nil || l.(*Lifecycle).Version != "1.0.0" || l.(*Lifecycle).Phase != PhaseStarted {
		t.Errorf("Decode lifecycle = %#v, %v", l, err)
	}
	if line, err := evs[1].Line(); err != nil || string(line) != b.Lines[1] {
		t.Errorf("Line = %s, %v", line, err)
	}
	// Up to date: nothing more, no reset.
	b, err = j.Since(Request{Epoch: crit.Epoch, Seq: 2})
	if err != nil || len(b.Lines) != 0 || b.Reset {
		t.Errorf("Since(head) = %+v, %v", b, err)
	}
}

func TestFilesOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "events")
	j := open(t, dir, Config{})
	emitN(t, j, 3)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("journal dir mode %v, %v", st.Mode(), err)
	}
	seg := filepath.Join(dir, segmentName(1))
	st, err = os.Stat(seg)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("segment %v, %v", st, err)
	}
	data, _ := os.ReadFile(seg)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 3 || strings.Contains(lines[0], "minion") || !strings.HasPrefix(lines[0], `{"epoch":"`) {
		t.Fatalf("segment holds %q", lines)
	}
	if _, err := ParseLine([]byte(lines[2])); err != nil {
		t.Errorf("line 3: %v", err)
	}
}

func TestEmitRefusesBadEvents(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	for _, tc := range []struct {
		source string
		data   Data
		want   error
	}{
		{"bad;source", &NagiosState{State: "OK"}, ErrWrite},
		{"", &NagiosState{State: "OK"}, ErrWrite},
		{"x", nil, ErrWrite},
		{"x", &NagiosState{State: "OK", Output: strings.Repeat("y", MaxDataBytes)}, ErrTooLarge},
		{"x", &WatchProblem{Kind: "Not A Type"}, ErrWrite},
	} {
		if _, err := j.Emit(tc.source, tc.data); !errors.Is(err, tc.want) {
			t.Errorf("Emit(%q, %T) = %v, want %v", tc.source, tc.data, err, tc.want)
		}
	}
	if _, err := j.Lifecycle(Lifecycle{Phase: "exploded"}); err == nil {
		t.Error("unknown lifecycle phase accepted")
	}
	if st := j.Stats(); st.Head != 0 || st.Events != 0 {
		t.Errorf("refused events were written: %+v", st)
	}
}

// TestResumeAcrossRestart: a consumer that saved its cursors reads on
// after the minion restarted with neither gaps nor duplicates; the
// restart shows as a NewEpoch notice.
func TestResumeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	emitN(t, j, 5)
	tr := NewTracker(nil)
	first, notices := all(t, j, tr, "m1")
	if len(first) != 5 || len(notices) != 0 {
		t.Fatalf("before restart: %d events, notices %v", len(first), notices)
	}
	saved := tr.Cursors().String()
	oldEpoch := j.Epoch()
	j.Close()

	j = open(t, dir, Config{})
	if j.Epoch() == oldEpoch {
		t.Fatal("reopened journal kept its epoch")
	}
	emitN(t, j, 4)
	cs, err := ParseCursors(saved)
	if err != nil {
		t.Fatal(err)
	}
	tr = NewTracker(cs)
	evs, notices := all(t, j, tr, "m1")
	if len(evs) != 4 || evs[0].Seq != 6 || evs[3].Seq != 9 || evs[0].PrevHash != first[4].Hash {
		t.Fatalf("after restart: %v", evs)
	}
	if len(notices) != 1 {
		t.Fatalf("notices %v, want one NewEpoch", notices)
	}
	if ne, ok := notices[0].(*NewEpoch); !ok || ne.Old != oldEpoch || ne.New != j.Epoch() || ne.Seq != 6 {
		t.Errorf("notice %#v", notices[0])
	}
	// Reading again from the same cursors gives nothing new.
	if b, _ := j.Since(tr.Request("m1", 0, 0)); len(b.Lines) != 0 {
		t.Errorf("duplicates after resume: %q", b.Lines)
	}
}

// TestOverflow: a journal capped at 200 events fed 1,000 (every one
// fsynced: a bigger run only takes longer) keeps the newest, within a
// segment of the cap, and says what it dropped.
func TestOverflow(t *testing.T) {
	t.Parallel()
	const limit, total = 200, 1000
	dir := t.TempDir()
	j := open(t, dir, Config{MaxEvents: limit})
	tr := NewTracker(nil)
	emitN(t, j, 10)
	all(t, j, tr, "m1") // a consumer that read the first 10, then fell behind
	emitN(t, j, total-10)
	st := j.Stats()
	if st.Events > limit || st.Events < limit-limit/segmentsPerJournal || st.Head < total {
		t.Fatalf("stats after %d events: %+v", total, st)
	}
	evs, notices := all(t, j, tr, "m1")
	if len(notices) != 1 {
		t.Fatalf("notices %v, want one gap", notices)
	}
	if g, ok := notices[0].(*Gap); !ok || g.After != 10 || g.Before != st.First {
		t.Fatalf("notice %#v, want a gap from 11 to %d", notices[0], st.First-1)
	}
	var drops []*Dropped
	for _, e := range evs {
		if e.Type == TypeDropped {
			d, err := e.Decode()
			if err != nil {
				t.Fatal(err)
			}
			drops = append(drops, d.(*Dropped))
		}
	}
	if len(drops) == 0 {
		t.Fatal("no events.dropped event in the journal")
	}
	for i, d := range drops {
		if d.Count != d.To-d.From+1 || (i > 0 && d.From != drops[i-1].To+1) {
			t.Errorf("dropped ranges not contiguous: %+v", drops)
		}
	}
	if last := drops[len(drops)-1]; last.To+1 != st.First {
		t.Errorf("last drop ends at %d, oldest kept is %d", last.To, st.First)
	}
	if len(evs) != st.Events {
		t.Errorf("read %d events, journal holds %d", len(evs), st.Events)
	}
	// Bounded on disk too, and still bounded after a restart.
	j.Close()
	j = open(t, dir, Config{MaxEvents: limit})
	emitN(t, j, 10)
	if st := j.Stats(); st.Events > limit || st.Segments > segmentsPerJournal+1 {
		t.Errorf("after restart: %+v", st)
	}
}

func TestMaxBytes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	max := int64(segmentsPerJournal * MaxLineBytes)
	j := open(t, dir, Config{MaxBytes: max})
	big := strings.Repeat("z", 8<<10)
	for range 100 {
		if _, err := j.Emit("big", &NagiosState{State: "OK", Output: big}); err != nil {
			t.Fatal(err)
		}
		var onDisk int64
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if fi, _ := e.Info(); strings.HasSuffix(e.Name(), ".jsonl") {
				onDisk += fi.Size()
			}
		}
		if onDisk > max || j.Stats().Bytes != onDisk {
			t.Fatalf("%d bytes on disk (stats %d), bound %d", onDisk, j.Stats().Bytes, max)
		}
	}
	if _, err := Open(t.TempDir(), Config{MaxBytes: 1000}); err == nil {
		t.Error("MaxBytes below a few events accepted")
	}
}

func TestTornFinalLineRecovered(t *testing.T) {
	dir := t.TempDir()
	j, err := Open(dir, Config{})
	if err != nil {
		t.Fatal(err)
	}
	emitN(t, j, 3)
	tr := NewTracker(nil)
	all(t, j, tr, "m1")
	j.Close()
	seg := filepath.Join(dir, segmentName(1))
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	const torn = `{"epoch":"00112233445566778899aabbccddeeff","seq":4,"ti`
	f.WriteString(torn)
	f.Close()

	j = open(t, dir, Config{})
	evs, notices := all(t, j, tr, "m1")
	if len(evs) != 1 || evs[0].Type != TypeRecovered || evs[0].Seq != 4 {
		t.Fatalf("after a torn write: %v", evs)
	}
	if len(notices) != 1 { // the NewEpoch of the reopen; no gap, no fork
		t.Errorf("notices %v", notices)
	}
	d, _ := evs[0].Decode()
	if r := d.(*Recovered); r.Bytes != len(torn) || r.Segment != segmentName(1) {
		t.Errorf("recovered = %+v", r)
	}
}

// TestDamageStartsANewChain: an edited, deleted or foreign line moves the
// files aside and starts a new chain; a consumer is told.
func TestDamageStartsANewChain(t *testing.T) {
	for name, damage := range map[string]func([]string) []string{
		"edited":  func(l []string) []string { l[2] = strings.Replace(l[2], "check_x", "check_y", 1); return l },
		"deleted": func(l []string) []string { return append(l[:2], l[3:]...) },
		"swapped": func(l []string) []string { l[1], l[2] = l[2], l[1]; return l },
		"garbage": func(l []string) []string { l[3] = "not json"; return l },
		"spoofed": func(l []string) []string {
			l[3] = strings.Replace(l[3], `{"epoch"`, `{"minion":"other","epoch"`, 1)
			return l
		},
		"too long": func(l []string) []string { l[1] = strings.Repeat("a", MaxLineBytes+10); return l },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			j, err := Open(dir, Config{})
			if err != nil {
				t.Fatal(err)
			}
			emitN(t, j, 5)
			tr := NewTracker(nil)
			all(t, j, tr, "m1")
			j.Close()
			seg := filepath.Join(dir, segmentName(1))
			data, _ := os.ReadFile(seg)
			lines := damage(strings.Split(strings.TrimSuffix(string(data), "\n"), "\n"))
			os.WriteFile(seg, []byte(strings.Join(lines, "\n")+"\n"), 0o600)

			j = open(t, dir, Config{})
			evs, notices := all(t, j, tr, "m1")
			if len(evs) != 1 || evs[0].Type != TypeJournalReset || evs[0].Seq != 1 || evs[0].Severity != SeverityCritical {
				t.Fatalf("events after damage: %v", evs)
			}
			if len(notices) != 1 {
				t.Fatalf("notices %v", notices)
			}
			if nc, ok := notices[0].(*NewChain); !ok || nc.Old.Seq != 5 {
				t.Errorf("notice %#v, want NewChain from seq 5", notices[0])
			}
			d, _ := evs[0].Decode()
			r := d.(*JournalReset)
			moved, err := os.ReadFile(filepath.Join(dir, r.MovedTo, segmentName(1)))
			if err != nil || !bytes.Equal(moved, []byte(strings.Join(lines, "\n")+"\n")) || r.Reason == "" {
				t.Errorf("damaged files not kept: %+v, %v", r, err)
			}
		})
	}
}

func TestDamagedDirectoriesBounded(t *testing.T) {
	dir := t.TempDir()
	for range keepDamaged + 3 {
		j, err := Open(dir, Config{})
		if err != nil {
			t.Fatal(err)
		}
		emitN(t, j, 2)
		j.Close()
		os.WriteFile(filepath.Join(dir, segmentName(1)), []byte("junk\n"), 0o600)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, damagedPrefix+"*"))
	if len(matches) != keepDamaged {
		t.Errorf("%d damaged directories, want %d", len(matches), keepDamaged)
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, Config{})
	if _, err := Open(dir, Config{}); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
}

func TestSinceRequests(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	emitN(t, j, 25)
	b, err := j.Since(Request{Limit: 10})
	if err != nil || len(b.Lines) != 10 || !b.More {
		t.Fatalf("limit 10: %d lines, more %v, %v", len(b.Lines), b.More, err)
	}
	evs, _ := Receive("m", b.Lines)
	last := evs[9]
	b, _ = j.Since(Request{Epoch: last.Epoch, Seq: last.Seq, Limit: 100})
	if len(b.Lines) != 15 || b.More || b.Reset {
		t.Fatalf("after seq 10: %d lines, %+v", len(b.Lines), b)
	}
	// A cursor of another chain: its seq holds an event of another epoch.
	b, _ = j.Since(Request{Epoch: strings.Repeat("0", 32), Seq: 5})
	if !b.Reset || len(b.Lines) != 25 {
		t.Errorf("foreign epoch: reset %v, %d lines", b.Reset, len(b.Lines))
	}
	// A cursor past the head: the journal was replaced by a shorter one.
	b, _ = j.Since(Request{Epoch: last.Epoch, Seq: 99})
	if !b.Reset || len(b.Lines) != 25 {
		t.Errorf("past the head: reset %v, %d lines", b.Reset, len(b.Lines))
	}
	for _, r := range []Request{{Seq: 3}, {Limit: -1}, {Seq: 3, Epoch: "zz"}} {
		if _, err := j.Since(r); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Since(%+v) = %v, want ErrBadRequest", r, err)
		}
	}
	if b, _ := j.Since(Request{Limit: 5000}); len(b.Lines) != 25 {
		t.Errorf("limit over the maximum: %d lines", len(b.Lines))
	}
}

func TestSinceFrom(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
	j := open(t, t.TempDir(), Config{Clock: clock})
	emitN(t, j, 10) // 00:01 .. 00:10
	b, err := j.Since(Request{From: time.Date(2026, 1, 1, 0, 7, 0, 0, time.UTC)})
	if err != nil || len(b.Lines) != 4 {
		t.Fatalf("from 00:07: %d lines, %v", len(b.Lines), err)
	}
	b, _ = j.Since(Request{From: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)})
	if len(b.Lines) != 0 {
		t.Errorf("from the future: %d lines", len(b.Lines))
	}
}

func TestPollWaitsForNewEvents(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	emitN(t, j, 1)
	b, _ := j.Since(Request{})
	head, _ := Receive("m", b.Lines)
	req := Request{Epoch: head[0].Epoch, Seq: 1, Wait: MaxWait}

	got := make(chan Batch, 1)
	errc := make(chan error, 1)
	go func() {
		b, err := j.Poll(t.Context(), req)
		got <- b
		errc <- err
	}()
	emitN(t, j, 1)
	if b := <-got; <-errc != nil || len(b.Lines) != 1 {
		t.Fatalf("Poll woke with %+v", b)
	}

	// Nothing new within the wait: an empty answer, no error.
	b, err := j.Poll(t.Context(), Request{Epoch: head[0].Epoch, Seq: 2, Wait: time.Millisecond})
	if err != nil || len(b.Lines) != 0 {
		t.Errorf("Poll timeout = %+v, %v", b, err)
	}
	// The caller's context ends the wait with its error.
	ctx, cancel := context.WithCancel(t.Context())
	go func() { errc <- j.Wait(ctx, 2) }()
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Wait after cancel = %v", err)
	}
	// Close wakes every waiter.
	go func() {
		_, err := j.Poll(context.Background(), Request{Epoch: head[0].Epoch, Seq: 2, Wait: MaxWait})
		errc <- err
	}()
	j.Close() // whether the poller is waiting yet or not, it gets ErrClosed
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Poll across Close = %v, want ErrClosed", err)
	}
	if _, err := j.Emit("x", &NagiosState{State: "OK"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Emit after Close = %v", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestConcurrentEmitAndRead(t *testing.T) {
	t.Parallel()
	j := open(t, t.TempDir(), Config{MaxEvents: 200})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { emitN(t, j, 100) })
	}
	tr := NewTracker(nil)
	var notices []Notice
	done := make(chan struct{})
	go func() {
		defer close(done)
		for j.Stats().Head < 400 {
			_, n := all(t, j, tr, "m1")
			notices = append(notices, n...)
		}
	}()
	wg.Wait()
	<-done
	_, n := all(t, j, tr, "m1")
	notices = append(notices, n...)
	for _, n := range notices {
		if _, ok := n.(*Gap); !ok {
			t.Errorf("unexpected notice %v", n)
		}
	}
	if tr.Cursor("m1").Seq != j.Stats().Head {
		t.Errorf("reader at %d, head %d", tr.Cursor("m1").Seq, j.Stats().Head)
	}
}

// HeadCursor is where a reader that wants only what comes next starts:
// the newest event's cursor, from which Since returns nothing, then
// exactly the next event.
func TestHeadCursor(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	if c := j.HeadCursor(); c != (Cursor{}) {
		t.Fatalf("empty journal: %+v", c)
	}
	var last Event
	for range 3 {
		var err error
		if last, err = j.Emit("w", &NagiosState{Plugin: "p", State: "OK"}); err != nil {
			t.Fatal(err)
		}
	}
	c := j.HeadCursor()
	if c != (Cursor{Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash}) {
		t.Fatalf("head cursor %+v, last event %+v", c, last)
	}
	b, err := j.Since(c.Request(0, 0))
	if err != nil || len(b.Lines) != 0 || b.Reset {
		t.Fatalf("since the head: %+v, %v", b, err)
	}
	next, err := j.Emit("w", &NagiosState{Plugin: "p", State: "CRITICAL"})
	if err != nil {
		t.Fatal(err)
	}
	if b, err = j.Since(c.Request(0, 0)); err != nil || len(b.Lines) != 1 {
		t.Fatalf("after one more: %+v, %v", b, err)
	}
	evs, err := Receive("m1", b.Lines)
	if err != nil || evs[0].Seq != next.Seq {
		t.Fatalf("%+v, %v", evs, err)
	}
}
