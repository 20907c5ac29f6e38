package audit

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// AppendNoSync returns once its record is in the file, before the
// fsync: Head moves past it only when the fsync is done, and an Append
// queued meanwhile is written after it.
func TestAppendNoSyncReturnsBeforeTheFsync(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &gateSyncer{f: f, entered: make(chan struct{}, 10), release: make(chan struct{})}
	l, err := New(g, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	end, err := l.AppendNoSync(Record{Kind: KindCallEnd, CallID: "c1"}) // returns while Sync is held
	if err != nil || end.Seq != 1 || end.Hash == "" {
		t.Fatalf("AppendNoSync = %+v, %v; want seq 1 with its hash", end, err)
	}
	<-g.entered
	if h := l.Head(); h.Seq != 0 {
		t.Errorf("Head = %v before the record's fsync, want the zero checkpoint", h)
	}
	b, err := os.ReadFile(f.Name())
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
// durable.
func TestAppendNoSyncConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	const workers, rounds = 8, 20
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
	for _, r := range records(t, path) {
		seen[r.Kind+" "+r.CallID]++
	}
	want := 0
	for i := range rounds {
		want += []int{2, 3, 1}[i%3] // an end, and a start or a batch of two
	}
	want *= workers
	if got := len(seen); got != want {
		t.Errorf("%d distinct records, want %d", got, want)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s written %d times", k, n)
		}
	}
	if st := l.Stats(); st.Records != uint64(want) || st.Commits == 0 || st.Commits > st.Records {
		t.Errorf("Stats = %+v, want %d records", st, want)
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
	if out := logged.String(); !bytes.Contains(logged.Bytes(), []byte("is lost")) || !bytes.Contains(logged.Bytes(), []byte(errInjected.Error())) ||
		bytes.Contains(logged.Bytes(), []byte("secret-ish")) {
		t.Errorf("log output %q: want the lost record and its cause reported, not its contents", out)
	}
}

// An AppendNoSync record that cannot be encoded, committed in a batch
// whose other records are written, gets its error; neither caller is
// left waiting.
func TestAppendNoSyncBadRecordInABatch(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g := &gateSyncer{f: f, entered: make(chan struct{}, 10), release: make(chan struct{})}
	l, err := New(g, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	wg.Go(func() { mustAppend(t, l, Record{Kind: "leader"}) })
	<-g.entered // the leader is in Sync: the next two queue up together
	errs := make([]error, 2)
	for i, rec := range []Record{{Kind: KindCallEnd}, {}} {
		wg.Go(func() { _, errs[i] = l.AppendNoSync(rec) })
	}
	for queued := 0; queued < 2; runtime.Gosched() {
		l.mu.Lock()
		queued = len(l.queue)
		l.mu.Unlock()
	}
	close(g.release)
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], ErrWrite) {
		t.Errorf("AppendNoSync of a good and a Kind-less record in one batch = %v, %v; want nil and ErrWrite", errs[0], errs[1])
	}
}
