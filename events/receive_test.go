package events

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// lines emits n events into a fresh journal and returns its lines.
func lines(t *testing.T, n int) []string {
	t.Helper()
	j := open(t, t.TempDir(), Config{})
	emitN(t, j, n)
	b, err := j.Since(Request{})
	if err != nil {
		t.Fatal(err)
	}
	return b.Lines
}

// TestSpoofedMinionRefused: the minion comes from the certificate; a line
// that names one, even with a correct hash, is refused, and data naming
// another host changes nothing.
func TestSpoofedMinionRefused(t *testing.T) {
	j := open(t, t.TempDir(), Config{})
	j.Emit("disk", &FileChanged{Path: "/etc/hosts", Now: FileState{Exists: true}, Changed: []string{"minion: db1"}})
	b, _ := j.Since(Request{})
	evs, err := Receive("web1", b.Lines)
	if err != nil || evs[0].Minion != "web1" {
		t.Fatalf("Receive = %+v, %v", evs, err)
	}
	// A line re-sealed with a "minion" member: the hash is right, the
	// member is not part of the format.
	forged := strings.Replace(b.Lines[0], `{"epoch"`, `{"minion":"db1","epoch"`, 1)
	forged = reseal(t, forged)
	if _, err := Receive("web1", []string{forged}); !errors.Is(err, ErrMalformed) {
		t.Errorf("line naming a minion: %v, want ErrMalformed", err)
	}
	// Two "source" members, resealed: a Go reader takes the last, others
	// the first. Refused.
	dup := reseal(t, strings.Replace(b.Lines[0], `"source":"disk"`, `"source":"db1","source":"disk"`, 1))
	if _, err := Receive("web1", []string{dup}); !errors.Is(err, ErrMalformed) {
		t.Errorf("line with a duplicate member: %v, want ErrMalformed", err)
	}
	if _, err := Receive("", b.Lines); !errors.Is(err, ErrNoMinion) {
		t.Errorf("Receive without a name: %v", err)
	}
	if _, err := Receive("bad name,x=y", b.Lines); !errors.Is(err, ErrNoMinion) {
		t.Errorf("Receive with a bad name: %v", err)
	}
}

// reseal recomputes a line's hash after an edit.
func reseal(t *testing.T, l string) string {
	t.Helper()
	i := strings.LastIndex(l, `"hash":"`)
	body := l[:i] + `"hash":""}`
	out, _, err := sealForTest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(out), "\n")
}

func TestTamperedLineRefused(t *testing.T) {
	ls := lines(t, 2)
	edited := strings.Replace(ls[1], `"OK"`, `"CRITICAL"`, 1)
	evs, err := Receive("m", []string{ls[0], edited})
	if !errors.Is(err, ErrTampered) || len(evs) != 1 {
		t.Errorf("edited line: %d events, %v; want the first and ErrTampered", len(evs), err)
	}
	for _, bad := range []string{"", "{}", "null", ls[0] + "x", strings.Replace(ls[0], `"severity":"info"`, `"severity":"loud"`, 1)} {
		if _, err := Receive("m", []string{bad}); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) {
			t.Errorf("Receive(%.40q) = %v", bad, err)
		}
	}
}

func TestCursorNext(t *testing.T) {
	evs, _ := Receive("m", lines(t, 4))
	at := func(i int) Cursor { return Cursor{Epoch: evs[i].Epoch, Seq: evs[i].Seq, Hash: evs[i].Hash} }
	forked := evs[2]
	forked.PrevHash = strings.Repeat("a", 64)
	otherHash := evs[1]
	otherHash.Hash = strings.Repeat("b", 64)
	newEpoch := evs[2]
	newEpoch.Epoch = strings.Repeat("c", 32)
	for _, tc := range []struct {
		name    string
		c       Cursor
		e       Event
		deliver bool
		notice  string
	}{
		{"start", Cursor{}, evs[2], true, ""},
		{"next", at(1), evs[2], true, ""},
		{"replay", at(2), evs[1], false, ""},
		{"same event again", at(1), evs[1], false, ""},
		{"same seq, other hash", at(1), otherHash, false, "*events.Fork"},
		{"gap", at(0), evs[3], true, "*events.Gap"},
		{"prev mismatch", at(1), forked, true, "*events.Fork"},
		{"restart", at(1), newEpoch, true, "*events.NewEpoch"},
	} {
		next, deliver, notices := tc.c.Next(tc.e)
		var got string
		if len(notices) > 0 {
			got = typeName(notices[0])
		}
		if deliver != tc.deliver || got != tc.notice || len(notices) > 1 {
			t.Errorf("%s: deliver %v, notices %v; want %v, %s", tc.name, deliver, notices, tc.deliver, tc.notice)
		}
		if deliver && next.Seq != tc.e.Seq || !deliver && next != tc.c {
			t.Errorf("%s: cursor moved to %v", tc.name, next)
		}
	}
}

func typeName(n Notice) string {
	switch n.(type) {
	case *Gap:
		return "*events.Gap"
	case *Fork:
		return "*events.Fork"
	case *NewEpoch:
		return "*events.NewEpoch"
	case *NewChain:
		return "*events.NewChain"
	case *BadLine:
		return "*events.BadLine"
	}
	return "?"
}

// TestReplayedBatchIgnored: a batch received twice is delivered once.
func TestReplayedBatchIgnored(t *testing.T) {
	ls := lines(t, 5)
	tr := NewTracker(nil)
	b := Batch{Lines: ls[:3]}
	evs, notices := tr.Accept("m", b)
	if len(evs) != 3 || len(notices) != 0 {
		t.Fatalf("first time: %d events, %v", len(evs), notices)
	}
	before := tr.Cursor("m")
	evs, notices = tr.Accept("m", b)
	if len(evs) != 0 || len(notices) != 0 || tr.Cursor("m") != before {
		t.Errorf("replay: %d events, %v, cursor %v", len(evs), notices, tr.Cursor("m"))
	}
	evs, _ = tr.Accept("m", Batch{Lines: ls[1:]}) // overlapping
	if len(evs) != 2 || evs[0].Seq != 4 {
		t.Errorf("overlap: %v", evs)
	}
}

func TestTrackerReportsBadLinesAndGoesOn(t *testing.T) {
	ls := lines(t, 4)
	tr := NewTracker(nil)
	bad := strings.Replace(ls[2], `"OK"`, `"WARNING"`, 1)
	evs, notices := tr.Accept("m", Batch{Lines: []string{ls[0], ls[1], bad, ls[3]}})
	if len(evs) != 3 || len(notices) != 2 {
		t.Fatalf("%d events, notices %v", len(evs), notices)
	}
	if bl, ok := notices[0].(*BadLine); !ok || bl.After != 2 || !errors.Is(bl.Err, ErrTampered) {
		t.Errorf("first notice %#v", notices[0])
	}
	if g, ok := notices[1].(*Gap); !ok || g.After != 2 || g.Before != 4 {
		t.Errorf("second notice %#v", notices[1])
	}
	for _, n := range notices {
		if n.From() != "m" || n.String() == "" {
			t.Errorf("notice %#v", n)
		}
	}
	if _, notices := tr.Accept("", Batch{Lines: ls}); len(notices) != 1 {
		t.Errorf("no minion name: %v", notices)
	}
}

func TestCursorsText(t *testing.T) {
	evs, _ := Receive("m", lines(t, 2))
	cs := Cursors{
		"web1.example.org": {Epoch: evs[1].Epoch, Seq: evs[1].Seq, Hash: evs[1].Hash},
		"db1":              {},
	}
	text := cs.String()
	if !strings.HasPrefix(text, "db1=0,web1.example.org=2.") {
		t.Errorf("String = %s", text)
	}
	back, err := ParseCursors(text)
	if err != nil || len(back) != 2 || back["web1.example.org"] != cs["web1.example.org"] {
		t.Errorf("ParseCursors = %v, %v", back, err)
	}
	var viaText Cursors
	if err := viaText.UnmarshalText([]byte(text)); err != nil || viaText.String() != text {
		t.Errorf("UnmarshalText = %v, %v", viaText, err)
	}
	for _, bad := range []string{"x", "a=1", "a=0,a=0", "a=01." + evs[0].Epoch + "." + evs[0].Hash, "a b=0", "=0",
		"a=1." + evs[0].Epoch + ".ABC", "a=-1." + evs[0].Epoch + "." + evs[0].Hash} {
		if _, err := ParseCursors(bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("ParseCursors(%q) = %v", bad, err)
		}
	}
	if empty, err := ParseCursors(""); err != nil || len(empty) != 0 {
		t.Errorf("empty: %v %v", empty, err)
	}
}

func TestActivity(t *testing.T) {
	var a Activity
	if a.Busy() || a.WaitIdle(t.Context()) != nil {
		t.Fatal("new Activity is busy")
	}
	end1 := a.Begin()
	end2 := a.Begin()
	if !a.Busy() {
		t.Fatal("not busy during calls")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
	defer cancel()
	if err := a.WaitIdle(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitIdle while busy = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.WaitIdle(t.Context()) }()
	end1()
	end1() // twice: no effect
	if !a.Busy() {
		t.Error("idle with one call still running")
	}
	end2()
	if err := <-done; err != nil || a.Busy() {
		t.Errorf("WaitIdle = %v, busy %v", err, a.Busy())
	}
	var nilA *Activity
	nilA.Begin()()
	if nilA.Busy() || nilA.WaitIdle(t.Context()) != nil {
		t.Error("nil Activity busy")
	}
}

func TestTrackerRequestFrom(t *testing.T) {
	ls := lines(t, 2)
	tr := NewTracker(nil)
	from := time.Now().Add(-time.Hour)
	if r := tr.RequestFrom("m", from, 10, time.Second); r.Seq != 0 || !r.From.Equal(from) || r.Limit != 10 || r.Wait != time.Second {
		t.Errorf("no cursor: %+v", r)
	}
	tr.Accept("m", Batch{Lines: ls})
	if r := tr.RequestFrom("m", from, 10, 0); r.Seq != 2 || !r.From.IsZero() || r.Epoch == "" {
		t.Errorf("with a cursor: %+v", r)
	}
}
