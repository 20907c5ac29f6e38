package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestAppendBatchOneWriteOneSync(t *testing.T) {
	g := newGate(t)
	close(g.release)
	l, err := New(g, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := []Record{{Kind: "a"}, {Kind: "b"}, {Kind: "c"}}
	out, err := l.AppendBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	if w, s := g.writes.Load(), g.syncs.Load(); w != 1 || s != 1 {
		t.Errorf("a batch of 3 took %d writes and %d syncs, want 1 and 1", w, s)
	}
	for i, r := range out {
		if r.Seq != uint64(i+1) || r.Kind != recs[i].Kind {
			t.Errorf("record %d = seq %d kind %q, want seq %d kind %q", i, r.Seq, r.Kind, i+1, recs[i].Kind)
		}
	}
	if _, err := l.AppendBatch([]Record{{Kind: "ok"}, {}}); !errors.Is(err, ErrWrite) {
		t.Errorf("batch with a record without Kind: %v, want ErrWrite", err)
	}
}

// Batches from many goroutines interleave as wholes and keep their
// order, and the chain stays valid.
func TestAppendBatchConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.log")
	l := openLog(t, path, Config{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 10 {
				batch := []Record{{Kind: "x", Caller: fmt.Sprint(g, "-", i, "-0")}, {Kind: "x", Caller: fmt.Sprint(g, "-", i, "-1")}}
				out, err := l.AppendBatch(batch)
				if err != nil {
					t.Error(err)
					return
				}
				if out[1].Seq != out[0].Seq+1 {
					t.Errorf("batch split: seqs %d and %d", out[0].Seq, out[1].Seq)
				}
			}
		})
	}
	wg.Wait()
	if sum, err := VerifyLog(path); err != nil || sum.Records != 160 {
		t.Fatalf("VerifyLog = %v, %v; want 160 records", sum, err)
	}
}

func TestSharedAppendBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	s := &Shared{Path: path}
	out, err := s.AppendBatch([]Record{{Kind: "one"}, {Kind: "two"}})
	if err != nil || len(out) != 2 || out[1].Seq != 2 {
		t.Fatalf("AppendBatch = %+v, %v", out, err)
	}
	if _, err := s.Append(Record{Kind: "three"}); err != nil {
		t.Fatal(err)
	}
	if sum, err := VerifyLog(path); err != nil || sum.Records != 3 {
		t.Fatalf("VerifyLog = %v, %v", sum, err)
	}
}

// KeepRotated bounds the rotated files; the files that remain still
// verify, from the anchor the pruning saved, and a record deleted inside
// them is still found.
func TestKeepRotatedPrunesAndVerifies(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	l := openLog(t, path, Config{MaxFileBytes: 2 << 10, KeepRotated: 2})
	for i := range 200 {
		mustAppend(t, l, Record{Kind: "ca.request", Caller: fmt.Sprintf("minion-%03d.example.org", i)})
	}
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("Files = %v, want 2 rotated files and the live one", files)
	}
	a, err := ReadAnchor(path)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := Verify(files...)
	if err != nil {
		t.Fatalf("Verify after pruning: %v", err)
	}
	if sum.LastSeq != 200 || sum.FirstSeq != a.Seq+1 {
		t.Errorf("Verify = %+v, want seq %d to 200", sum, a.Seq+1)
	}
	if _, err := VerifyLog(path); err != nil {
		t.Errorf("VerifyLog after pruning: %v", err)
	}
	// The anchor only vouches for the record right before the first
	// file: a wrong one fails verification.
	bad := a
	bad.Hash = "00" + a.Hash[2:]
	if err := writeAnchor(path+anchorSuffix, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(files...); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify with a wrong anchor: %v, want ErrTampered", err)
	}
	// Without an anchor, a chain that does not start at seq 1 is refused
	// as before.
	if err := os.Remove(path + anchorSuffix); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(files...); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify without the anchor: %v, want ErrTampered", err)
	}
	if _, err := ReadAnchor(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadAnchor without one: %v", err)
	}
}

func TestPruneKeepsAllByDefault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Config{MaxFileBytes: 1 << 10})
	for i := range 100 {
		mustAppend(t, l, Record{Kind: "x", Caller: fmt.Sprint(i)})
	}
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("only %d files: rotation did not happen", len(files))
	}
	if sum, err := Verify(files...); err != nil || sum.FirstSeq != 1 {
		t.Fatalf("Verify = %+v, %v", sum, err)
	}
}
