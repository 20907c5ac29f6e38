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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openLog opens a log that the test closes at cleanup.
func openLog(t testing.TB, path string, cfg Config) *Log {
	t.Helper()
	l, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustAppend(t testing.TB, l *Log, rec Record) Record {
	t.Helper()
	out, err := l.Append(rec)
	if err != nil {
		t.Fatalf("Append(%s): %v", rec.Kind, err)
	}
	return out
}

// records reads every record of the log at path (all files), checking
// the chain on the way.
func records(t testing.TB, path string) []Record {
	t.Helper()
	paths, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	if err := Query(paths, Filter{}, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatalf("Query: %v", err)
	}
	return out
}

func lines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

func fixedClock() func() time.Time {
	var n atomic.Int64
	base := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(time.Duration(n.Add(1)-1) * time.Minute) }
}

func TestAppendVerifyReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path, Config{Clock: fixedClock()})
	first := mustAppend(t, l, Record{Kind: KindCallStart, CallID: "c1", Caller: "alice", Method: "test.ping"})
	if first.Seq != 1 || first.Prev != Genesis || len(first.Hash) != 64 {
		t.Fatalf("first record = seq %d prev %q hash %q, want seq 1, genesis prev, a hash", first.Seq, first.Prev, first.Hash)
	}
	if want := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC); !first.Time.Equal(want) {
		t.Errorf("Time = %v, want the clock's %v", first.Time, want)
	}
	local := time.Date(2025, 3, 1, 14, 30, 0, 0, time.FixedZone("X", 2*3600))
	second := mustAppend(t, l, Record{Kind: KindCallEnd, CallID: "c1", Outcome: OutcomeOK, Duration: 3 * time.Millisecond, Time: local})
	if second.Seq != 2 || second.Prev != first.Hash {
		t.Fatalf("second record = seq %d prev %q, want seq 2 chained to %q", second.Seq, second.Prev, first.Hash)
	}
	if second.Time.Location() != time.UTC || !second.Time.Equal(local) {
		t.Errorf("Time = %v, want %v in UTC", second.Time, local)
	}
	if got := l.Head(); got != (Checkpoint{Seq: 2, Hash: second.Hash}) {
		t.Errorf("Head = %+v, want seq 2 %s", got, second.Hash)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	for name, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, path: 0o600, path + ".lock": 0o600} {
		if fi, err := os.Stat(name); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", name, fi.Mode(), err, want)
		}
	}
	if diff := cmp.Diff([]Record{first, second}, records(t, path)); diff != "" {
		t.Errorf("records read back differ from those Append returned (-appended +read):\n%s", diff)
	}

	l = openLog(t, path, Config{})
	third := mustAppend(t, l, Record{Kind: "ca.sign", Details: map[string]string{"name": "web1"}})
	if third.Seq != 3 || third.Prev != second.Hash {
		t.Fatalf("after reopen: seq %d prev %q, want 3 chained to %q", third.Seq, third.Prev, second.Hash)
	}
	l.Close()
	sum, err := Verify(path)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := (Summary{Files: 1, Records: 3, FirstSeq: 1, LastSeq: 3, LastHash: third.Hash}); sum != want {
		t.Errorf("Summary = %+v, want %+v", sum, want)
	}
}

func TestHashIsDocumentedEncoding(t *testing.T) {
	var buf syncBuffer
	l, err := New(&buf, Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := mustAppend(t, l, Record{Kind: "x", Args: []any{int64(1) << 60, "<&>"}})
	line := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	blank := bytes.Replace(line, []byte(`"hash":"`+rec.Hash+`"}`), []byte(`"hash":""}`), 1)
	if got := sha256Hex(blank); got != rec.Hash {
		t.Errorf("sha256 of the line with the hash blanked = %s, want Hash %s", got, rec.Hash)
	}
	if !bytes.Contains(line, []byte(`"args":[1152921504606846976,`)) {
		t.Errorf("large integers must be written exactly; line: %s", line)
	}
	parsed, err := ParseLine(line)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(parsed.Args[0]); got != "1152921504606846976" {
		t.Errorf("parsed Args[0] = %s, want the exact integer", got)
	}
}

func TestAppendRejectsBadRecords(t *testing.T) {
	l := openLog(t, filepath.Join(t.TempDir(), "a.log"), Config{})
	tests := []struct {
		name string
		rec  Record
		also error
	}{
		{"no kind", Record{Caller: "x"}, nil},
		{"too large", Record{Kind: "x", Error: strings.Repeat("e", MaxRecordBytes)}, ErrRecordTooLarge},
		{"unencodable", Record{Kind: "x", Args: []any{make(chan int)}}, nil},
	}
	for _, tt := range tests {
		_, err := l.Append(tt.rec)
		if !errors.Is(err, ErrWrite) || (tt.also != nil && !errors.Is(err, tt.also)) {
			t.Errorf("%s: Append = %v, want ErrWrite %v", tt.name, err, tt.also)
		}
	}
	if rec := mustAppend(t, l, Record{Kind: "ok"}); rec.Seq != 1 {
		t.Errorf("after refused records, seq = %d, want 1 (refusals take no seq)", rec.Seq)
	}
}

func TestCloseAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := openLog(t, path, Config{})
	if _, err := Open(path, Config{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	mustAppend(t, l, Record{Kind: "x"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if _, err := l.Append(Record{Kind: "x"}); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrWrite) {
		t.Errorf("Append after Close = %v, want ErrClosed and ErrWrite", err)
	}
	l2 := openLog(t, path, Config{})
	if rec := mustAppend(t, l2, Record{Kind: "x"}); rec.Seq != 2 {
		t.Errorf("seq after reopen = %d, want 2", rec.Seq)
	}
}

func TestConcurrentAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := openLog(t, path, Config{MaxFileBytes: 8 << 10})
	const workers, each = 8, 60
	got := make([][]Record, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				rec, err := l.Append(Record{Kind: KindCallStart, CallID: fmt.Sprintf("w%d-%d", w, i)})
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], rec)
			}
		})
	}
	wg.Wait()
	l.Close()
	onDisk := map[uint64]Record{}
	for _, r := range records(t, path) {
		onDisk[r.Seq] = r
	}
	if len(onDisk) != workers*each {
		t.Fatalf("%d records on disk, want %d", len(onDisk), workers*each)
	}
	for _, recs := range got {
		for i, r := range recs {
			if i > 0 && r.Seq <= recs[i-1].Seq {
				t.Errorf("one goroutine's seqs went %d then %d", recs[i-1].Seq, r.Seq)
			}
			if d := onDisk[r.Seq]; d.Hash != r.Hash || d.CallID != r.CallID {
				t.Errorf("seq %d: Append returned %s/%s, disk has %s/%s", r.Seq, r.CallID, r.Hash, d.CallID, d.Hash)
			}
		}
	}
	if _, err := VerifyLog(path); err != nil {
		t.Fatalf("VerifyLog: %v", err)
	}
}

// gateSyncer is a real file whose Sync waits for the test's go-ahead.
// newGate returns a gateSyncer over a new file, closed when the test
// ends.
func newGate(t *testing.T) *gateSyncer {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &gateSyncer{f: f, entered: make(chan struct{}, 10), release: make(chan struct{})}
}

// gatedLog returns a Log writing through a new gateSyncer; the Log is
// closed when the test ends (before the file).
func gatedLog(t *testing.T) (*Log, *gateSyncer) {
	t.Helper()
	g := newGate(t)
	l, err := New(g, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, g
}

type gateSyncer struct {
	f       *os.File
	writes  atomic.Int32
	syncs   atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (g *gateSyncer) Write(b []byte) (int, error) { g.writes.Add(1); return g.f.Write(b) }
func (g *gateSyncer) Sync() error {
	g.syncs.Add(1)
	g.entered <- struct{}{}
	<-g.release
	return g.f.Sync()
}

func TestGroupCommitSharesOneSync(t *testing.T) {
	l, g := gatedLog(t)
	var wg sync.WaitGroup
	wg.Go(func() { mustAppend(t, l, Record{Kind: "leader"}) })
	<-g.entered // the first Append is inside Sync
	for range 3 {
		wg.Go(func() { mustAppend(t, l, Record{Kind: "follower"}) })
	}
	// The fsync in flight does not hold the writer up: the followers'
	// records are written meanwhile and wait for the next fsync.
	for waiting := 0; waiting < 3; runtime.Gosched() {
		l.mu.Lock()
		waiting = len(l.waiting)
		l.mu.Unlock()
	}
	close(g.release)
	wg.Wait()
	if w, s := g.writes.Load(), g.syncs.Load(); w < 2 || w > 4 || s != 2 {
		t.Errorf("4 Appends took %d writes and %d syncs, want 2 to 4 and 2 (the 3 written during the first fsync share the second)", w, s)
	}
	if st := l.Stats(); st != (Stats{Records: 4, Commits: 2}) {
		t.Errorf("Stats = %+v, want 4 records in 2 commits", st)
	}
	if _, err := g.f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	if sum, err := VerifyReader(g.f); err != nil || sum.Records != 4 {
		t.Errorf("VerifyReader = %+v, %v; want 4 records", sum, err)
	}
}

func TestCloseWhileAppending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := openLog(t, path, Config{})
	var ok atomic.Int32
	var wg sync.WaitGroup
	started := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				if w == 0 && i == 5 {
					close(started)
				}
				_, err := l.Append(Record{Kind: "x"})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				ok.Add(1)
			}
		})
	}
	<-started
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := len(records(t, path)); n != int(ok.Load()) {
		t.Errorf("%d records on disk, %d Appends succeeded", n, ok.Load())
	}
}

// syncBuffer is an in-memory WriteSyncer.
type syncBuffer struct{ bytes.Buffer }

func (*syncBuffer) Sync() error { return nil }

// faultyWriter fails as told.
type faultyWriter struct {
	syncBuffer
	failWrite bool
	partial   int // with failWrite: bytes written before failing
	failSync  bool
}

var errInjected = errors.New("injected failure")

func (w *faultyWriter) Write(b []byte) (int, error) {
	if w.failWrite {
		n, _ := w.Buffer.Write(b[:min(w.partial, len(b))])
		return n, errInjected
	}
	return w.Buffer.Write(b)
}

func (w *faultyWriter) Sync() error {
	if w.failSync {
		return errInjected
	}
	return nil
}

func TestFailClosedWriter(t *testing.T) {
	tests := []struct {
		name       string
		fail       faultyWriter
		usableThen bool // after the failure is fixed, does Append work?
	}{
		{"write fails, nothing written", faultyWriter{failWrite: true}, true},
		{"short write", faultyWriter{failWrite: true, partial: 10}, false},
		{"sync fails", faultyWriter{failSync: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &faultyWriter{}
			l, err := New(w, Config{})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			mustAppend(t, l, Record{Kind: "before"})
			w.failWrite, w.partial, w.failSync = tt.fail.failWrite, tt.fail.partial, tt.fail.failSync
			if err := l.Err(); err != nil {
				t.Fatalf("Err before a failure = %v", err)
			}
			if _, err := l.Append(Record{Kind: "during"}); !errors.Is(err, ErrWrite) || !errors.Is(err, errInjected) {
				t.Fatalf("Append with a failing writer = %v, want ErrWrite wrapping the cause", err)
			}
			if err := l.Err(); tt.usableThen != (err == nil) || (err != nil && !errors.Is(err, ErrWrite)) {
				t.Fatalf("Err after the failure = %v; want nil only for a failure that left the log usable, else ErrWrite", err)
			}
			*w = faultyWriter{syncBuffer: w.syncBuffer}
			rec, err := l.Append(Record{Kind: "after"})
			if !tt.usableThen {
				if !errors.Is(err, ErrWrite) {
					t.Fatalf("Append after a failure that left bytes = %v, want ErrWrite (the log must refuse)", err)
				}
				return
			}
			if err != nil || rec.Seq != 2 {
				t.Fatalf("Append after a clean failure = seq %d, %v; want seq 2", rec.Seq, err)
			}
			if sum, err := VerifyReader(&w.Buffer); err != nil || sum.Records != 2 {
				t.Errorf("VerifyReader = %+v, %v; want 2 records", sum, err)
			}
		})
	}
}

func TestDevFull(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	defer f.Close()
	l, err := New(f, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		if _, err := l.Append(Record{Kind: KindCallStart}); !errors.Is(err, ErrWrite) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Append to /dev/full = %v, want ErrWrite wrapping ENOSPC", err)
		}
	}
}

// halfWriter writes half of what it is given to the real file, then fails.
type halfWriter struct{ f *os.File }

func (h halfWriter) Write(b []byte) (int, error) {
	n, err := h.f.Write(b[:len(b)/2])
	if err != nil {
		return n, err
	}
	return n, errInjected
}
func (h halfWriter) Sync() error { return h.f.Sync() }

func TestTornWriteIsTakenBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := openLog(t, path, Config{})
	mustAppend(t, l, Record{Kind: "one"})
	size := fileSize(t, path)

	l.w = halfWriter{l.file} // no Append is running: the writer state is ours
	if _, err := l.Append(Record{Kind: "two", Error: strings.Repeat("x", 500)}); !errors.Is(err, ErrWrite) {
		t.Fatalf("Append = %v, want ErrWrite", err)
	}
	if got := fileSize(t, path); got != size {
		t.Fatalf("after a torn write the file is %d bytes, want %d (cut back to the last record)", got, size)
	}
	l.w = l.file
	if rec := mustAppend(t, l, Record{Kind: "three"}); rec.Seq != 2 {
		t.Errorf("seq after the failed write = %d, want 2", rec.Seq)
	}
	l.Close()
	if sum, err := Verify(path); err != nil || sum.Records != 2 {
		t.Errorf("Verify = %+v, %v; want 2 intact records", sum, err)
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func TestReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permissions do not stop writes (TestFileSizeLimit covers a real failing file)")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if _, err := Open(filepath.Join(dir, "a.log"), Config{}); err == nil {
		t.Fatal("Open in a read-only directory succeeded")
	}
}
