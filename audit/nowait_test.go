package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/internal/syncbuf"
)

// AppendNoSync returns once its record is in the file, before the
// fsync: Head moves past it only when the fsync is done, and an Append
// queued meanwhile is written after it.
func TestAppendNoSyncReturnsBeforeTheFsync(t *testing.T) {
	l, g := gatedLog(t)
	end, err := l.AppendNoSync(Record{Kind: KindCallEnd, CallID: "c1"}) // returns while Sync is held
	if err != nil || end.Seq != 1 || end.Hash == "" {
		t.Fatalf("AppendNoSync = %+v, %v; want seq 1 with its hash", end, err)
	}
	<-g.entered
	if h := l.Head(); h.Seq != 0 {
		t.Errorf("Head = %v before the record's fsync, want the zero checkpoint", h)
	}
	b, err := os.ReadFile(g.f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseLine(b); err != nil || got.Hash != end.Hash {
		t.Errorf("the file holds %q (%v), want the record written", b, err)
	}
	done := make(chan Record)
	go func() { done <- mustAppend(t, l, Record{Kind: KindCallStart}) }()
	close(g.release)
	if now := <-done; now.Seq != 2 || now.Prev != end.Hash || l.Head().Seq != 2 {
		t.Errorf("Append after AppendNoSync: %+v, head %v; want seq 2 chained to it and head at 2", now, l.Head())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendNoSync(Record{Kind: KindCallEnd}); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrWrite) {
		t.Errorf("AppendNoSync after Close = %v, want ErrWrite and ErrClosed", err)
	}
}

// Appends, batches and AppendNoSync records from many goroutines make
// one valid chain holding every record once, and Close leaves them all
// durable (Head is the last one), also when the live file rotates
// while records are written during fsyncs.
func TestAppendNoSyncConcurrent(t *testing.T) {
	for _, tt := range []struct {
		name string
		max  int64
	}{{"one file", 0}, {"rotating", 4 << 10}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "a.log")
			l, err := Open(path, Config{MaxFileBytes: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			const workers, rounds = 8, 30
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range rounds {
						id := fmt.Sprint(w, "-", i)
						var err error
						switch i % 3 {
						case 0:
							_, err = l.Append(Record{Kind: KindCallStart, CallID: id})
						case 1:
							_, err = l.AppendBatch([]Record{{Kind: KindCallStart, CallID: id}, {Kind: KindCallStart, CallID: id + "b"}})
						}
						if err == nil {
							_, err = l.AppendNoSync(Record{Kind: KindCallEnd, CallID: id})
						}
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			seen := map[string]int{}
			recs := records(t, path)
			for _, r := range recs {
				seen[r.Kind+" "+r.CallID]++
			}
			want := 0
			for i := range rounds {
				want += []int{2, 3, 1}[i%3] // an end, and a start or a batch of two
			}
			want *= workers
			if got := len(seen); got != want || len(recs) != want {
				t.Errorf("%d distinct records of %d, want %d", got, len(recs), want)
			}
			for k, n := range seen {
				if n != 1 {
					t.Errorf("%s written %d times", k, n)
				}
			}
			if st := l.Stats(); st.Records != uint64(want) || st.Commits == 0 || st.Commits > st.Records {
				t.Errorf("Stats = %+v, want %d records", st, want)
			}
			if last := recs[len(recs)-1]; l.Head() != (Checkpoint{Seq: last.Seq, Hash: last.Hash}) {
				t.Errorf("Head after Close = %v, want the last record %d", l.Head(), last.Seq)
			}
			if sum, err := VerifyLog(path); err != nil || sum.Records != want {
				t.Errorf("VerifyLog = %+v, %v; want %d records", sum, err, want)
			}
			files, err := Files(path)
			if err != nil {
				t.Fatal(err)
			}
			if tt.max > 0 && len(files) < 3 {
				t.Errorf("%d files, want the log rotated more than once", len(files))
			}
		})
	}
}

// failSyncer is a real file whose first Sync waits for the test's
// go-ahead and then fails; later Syncs succeed, as a kernel may report
// an fsync error once and then clear it.
type failSyncer struct {
	gateSyncer
}

func (s *failSyncer) Sync() error {
	if s.syncs.Add(1) > 1 {
		return s.f.Sync()
	}
	s.entered <- struct{}{}
	<-s.release
	return errInjected
}

// An fsync that fails while other records were written during it
// breaks the log: the Append that led it and every Append waiting for
// the next fsync get ErrWrite, Head stays where the last good fsync
// left it, the loss is logged without record contents, and every later
// record is refused (no second fsync acknowledges anything).
func TestFailedFsyncWithConcurrentWrites(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := &failSyncer{gateSyncer{f: f, entered: make(chan struct{}, 10), release: make(chan struct{})}}
	var logged syncbuf.Buffer
	l, err := New(s, Config{Logger: hclog.New(&hclog.LoggerOptions{Output: &logged})})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const waiters = 4
	errs := make(chan error, waiters+1)
	go func() { _, err := l.Append(Record{Kind: KindCallStart, CallID: "leader"}); errs <- err }()
	<-s.entered // the leader's fsync is held
	for i := range waiters {
		go func() {
			_, err := l.Append(Record{Kind: KindCallStart, CallID: fmt.Sprint("w", i), Caller: "secret-ish"})
			errs <- err
		}()
	}
	if _, err := l.AppendNoSync(Record{Kind: KindCallEnd, CallID: "leader"}); err != nil {
		t.Fatalf("AppendNoSync during the fsync = %v, want nil (written)", err)
	}
	for n := 0; n < waiters; runtime.Gosched() {
		l.mu.Lock()
		n = len(l.waiting)
		l.mu.Unlock()
	}
	close(s.release)
	for range waiters + 1 {
		if err := <-errs; !errors.Is(err, ErrWrite) || !errors.Is(err, errInjected) {
			t.Errorf("Append around a failed fsync = %v, want ErrWrite wrapping the cause", err)
		}
	}
	if h := l.Head(); h.Seq != 0 {
		t.Errorf("Head = %v after the only fsync failed, want the zero checkpoint", h)
	}
	if err := l.Err(); !errors.Is(err, ErrWrite) || !errors.Is(err, errInjected) {
		t.Errorf("Err after a failed fsync = %v, want ErrWrite wrapping the cause", err)
	}
	if _, err := l.Append(Record{Kind: KindCallStart}); !errors.Is(err, ErrWrite) {
		t.Errorf("Append after a failed fsync = %v, want ErrWrite", err)
	}
	if _, err := l.AppendNoSync(Record{Kind: KindCallEnd}); !errors.Is(err, ErrWrite) {
		t.Errorf("AppendNoSync after a failed fsync = %v, want ErrWrite", err)
	}
	if n := s.syncs.Load(); n != 1 {
		t.Errorf("%d fsyncs, want 1: nothing is fsynced (nor acknowledged) after one failed", n)
	}
	if out := logged.String(); !strings.Contains(out, "may be lost") || !strings.Contains(out, errInjected.Error()) || strings.Contains(out, "secret-ish") {
		t.Errorf("log output %q: want the loss and its cause reported, not record contents", out)
	}
}

// A write that fails is AppendNoSync's error; an fsync that fails once
// it has returned is reported to the logger, without the record's
// contents, and the log refuses further records (New cannot take bytes
// back).
func TestAppendNoSyncFailures(t *testing.T) {
	w := &faultyWriter{failWrite: true}
	var logged bytes.Buffer
	l, err := New(w, Config{Logger: hclog.New(&hclog.LoggerOptions{Output: &logged})})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.AppendNoSync(Record{Kind: KindCallEnd}); !errors.Is(err, ErrWrite) || !errors.Is(err, errInjected) {
		t.Fatalf("AppendNoSync with a failing write = %v, want ErrWrite wrapping the cause", err)
	}
	w.failWrite, w.failSync = false, true
	if _, err := l.AppendNoSync(Record{Kind: KindCallEnd, Caller: "secret-ish"}); err != nil {
		t.Fatalf("AppendNoSync with a failing fsync = %v, want nil: it returns before the fsync", err)
	}
	// The next Append waits for that commit, then finds the log broken.
	if _, err := l.Append(Record{Kind: KindCallStart}); !errors.Is(err, ErrWrite) {
		t.Fatalf("Append after a failed fsync = %v, want ErrWrite", err)
	}
	if out := logged.String(); !bytes.Contains(logged.Bytes(), []byte("may be lost")) || !bytes.Contains(logged.Bytes(), []byte(errInjected.Error())) ||
		bytes.Contains(logged.Bytes(), []byte("secret-ish")) {
		t.Errorf("log output %q: want the lost record and its cause reported, not its contents", out)
	}
}

// AppendNoSync does not wait for the fsync in flight: a good and a
// Kind-less record both return (written, and refused) while an fsync
// is held, and the next fsync makes the good one durable.
func TestAppendNoSyncDuringAnFsync(t *testing.T) {
	l, g := gatedLog(t)
	var wg sync.WaitGroup
	wg.Go(func() { mustAppend(t, l, Record{Kind: "leader"}) })
	<-g.entered // the leader's fsync is held until release
	errs := make([]error, 2)
	outs := make([]Record, 2)
	var noSync sync.WaitGroup
	for i, rec := range []Record{{Kind: KindCallEnd}, {}} {
		noSync.Go(func() { outs[i], errs[i] = l.AppendNoSync(rec) })
	}
	noSync.Wait()
	if errs[0] != nil || outs[0].Seq != 2 || !errors.Is(errs[1], ErrWrite) {
		t.Errorf("AppendNoSync of a good and a Kind-less record during an fsync = %+v, %v; %v; want seq 2 and ErrWrite", outs[0], errs[0], errs[1])
	}
	if h := l.Head(); h.Seq != 0 {
		t.Errorf("Head = %v while the first fsync is held, want the zero checkpoint", h)
	}
	close(g.release)
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if h := l.Head(); h.Seq != 2 || h.Hash != outs[0].Hash || g.syncs.Load() != 2 {
		t.Errorf("after Close: Head %v, %d syncs; want seq 2 (the AppendNoSync record, made durable by a second fsync)", h, g.syncs.Load())
	}
}
