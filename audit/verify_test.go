package audit

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fiveRecords writes a log of five records and returns its path and lines.
func fiveRecords(t *testing.T) (string, [][]byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, p, Config{Clock: fixedClock()})
	for _, caller := range []string{"alice", "bob", "carol", "dave", "erin"} {
		mustAppend(t, l, Record{Kind: KindCallStart, Caller: caller, Method: "test.ping"})
	}
	l.Close()
	ls := lines(t, p)
	return p, ls[:len(ls)-1] // drop the empty string after the last newline
}

func writeLines(t *testing.T, path string, ls ...[]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	path, ls := fiveRecords(t)
	forged := func() []byte { // a well-formed record, hashed correctly, chained after seq 2
		r, err := ParseLine(ls[1])
		if err != nil {
			t.Fatal(err)
		}
		line, _, err := encode(Record{Seq: 3, Time: r.Time, Kind: KindCallStart, Caller: "mallory", Prev: r.Hash})
		if err != nil {
			t.Fatal(err)
		}
		return line
	}
	tests := []struct {
		name     string
		lines    [][]byte
		wantLine int
		wantSeq  uint64
		reason   string
	}{
		{"edited", [][]byte{ls[0], ls[1], bytes.Replace(ls[2], []byte("carol"), []byte("craig"), 1), ls[3], ls[4]}, 3, 3, "hash mismatch"},
		{"deleted", [][]byte{ls[0], ls[1], ls[3], ls[4]}, 3, 4, "records deleted"},
		{"deleted first", [][]byte{ls[1], ls[2], ls[3], ls[4]}, 1, 2, "chain starts at seq 2"},
		{"reordered", [][]byte{ls[0], ls[2], ls[1], ls[3], ls[4]}, 2, 3, "records deleted"},
		{"duplicated", [][]byte{ls[0], ls[1], ls[1], ls[2], ls[3], ls[4]}, 3, 2, "reordered or inserted"},
		{"inserted forgery", [][]byte{ls[0], ls[1], forged(), ls[2], ls[3], ls[4]}, 4, 3, "reordered or inserted"},
		{"replaced by forgery", [][]byte{ls[0], ls[1], forged(), ls[3], ls[4]}, 4, 4, "prev does not match"},
		{"garbage line", [][]byte{ls[0], []byte("hello\n"), ls[1]}, 2, 0, "not a record"},
		{"empty line", [][]byte{ls[0], []byte("\n"), ls[1]}, 2, 0, "not a record"},
		{"hash field removed", [][]byte{ls[0], append(bytes.Clone(ls[1][:bytes.Index(ls[1], []byte(`,"hash"`))]), "}\n"...)}, 2, 2, "hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeLines(t, path, tt.lines...)
			_, err := Verify(path)
			var ve *VerifyError
			if !errors.As(err, &ve) || !errors.Is(err, ErrTampered) || errors.Is(err, ErrTorn) {
				t.Fatalf("Verify = %v, want a *VerifyError wrapping ErrTampered", err)
			}
			if ve.File != path || ve.Line != tt.wantLine || ve.Seq != tt.wantSeq || !strings.Contains(ve.Reason, tt.reason) {
				t.Errorf("error at %s line %d seq %d (%s); want line %d seq %d, reason containing %q",
					ve.File, ve.Line, ve.Seq, ve.Reason, tt.wantLine, tt.wantSeq, tt.reason)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestTornFinalLine(t *testing.T) {
	path, ls := fiveRecords(t)
	torn := ls[4][:40]
	writeLines(t, path, ls[0], ls[1], ls[2], ls[3], torn)

	sum, err := Verify(path)
	var ve *VerifyError
	if !errors.Is(err, ErrTorn) || errors.Is(err, ErrTampered) || !errors.As(err, &ve) || ve.Line != 5 {
		t.Fatalf("Verify = %v, want ErrTorn at line 5 (not tampering)", err)
	}
	if sum.Records != 4 || sum.LastSeq != 4 {
		t.Errorf("Summary = %+v, want the 4 records before the torn line", sum)
	}
	var seen int
	err = Query([]string{path}, Filter{}, func(Record) error { seen++; return nil })
	if !errors.Is(err, ErrTorn) || seen != 4 {
		t.Errorf("Query saw %d records and returned %v; want 4 and ErrTorn", seen, err)
	}

	l := openLog(t, path, Config{})
	l.Close()
	recs := records(t, path)
	if len(recs) != 5 {
		t.Fatalf("after Open: %d records, want 4 + log.recovered", len(recs))
	}
	rec := recs[4]
	side := path + ".torn-5"
	want := map[string]string{"file": "audit.log", "offset": "", "bytes": "40", "sha256": sha256Hex(torn), "saved_as": "audit.log.torn-5"}
	want["offset"] = rec.Details["offset"] // checked below against the file
	if rec.Kind != KindLogRecovered || rec.Seq != 5 || !maps.Equal(rec.Details, want) {
		t.Errorf("recovery record = %+v, want kind %s seq 5 details %v", rec, KindLogRecovered, want)
	}
	if got, err := os.ReadFile(side); err != nil || !bytes.Equal(got, torn) {
		t.Errorf("side file %s = %q, %v; want the torn bytes %q", side, got, err, torn)
	}
	if fi, err := os.Stat(side); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("side file mode: %v %v, want 0600", fi.Mode(), err)
	}
	if off := int64(len(bytes.Join(ls[:4], nil))); rec.Details["offset"] != strconv.FormatInt(off, 10) {
		t.Errorf("recorded offset %s, want %d", rec.Details["offset"], off)
	}
	if _, err := VerifyLog(path); err != nil {
		t.Errorf("VerifyLog after recovery: %v", err)
	}
}

func TestOpenRecoversFileWithNoCompleteLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLines(t, path, []byte(`{"seq":1,"ti`))
	l := openLog(t, path, Config{})
	l.Close()
	recs := records(t, path)
	if len(recs) != 1 || recs[0].Kind != KindLogRecovered || recs[0].Seq != 1 || recs[0].Details["bytes"] != "12" {
		t.Errorf("records = %+v, want one log.recovered record for 12 bytes", recs)
	}
}

func TestOpenFinishesInterruptedRecovery(t *testing.T) {
	path, ls := fiveRecords(t)
	// A crash came after the torn bytes were saved and cut off, before
	// the log.recovered record was written: it must be written now.
	torn := []byte(`{"seq":6,"time":"2025-`)
	if err := os.WriteFile(path+".torn-6", torn, 0o600); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, path, Config{})
	l.Close()
	recs := records(t, path)
	if len(recs) != 6 || recs[5].Kind != KindLogRecovered || recs[5].Details["saved_as"] != "audit.log.torn-6" ||
		recs[5].Details["sha256"] != sha256Hex(torn) || recs[5].Details["offset"] != strconv.Itoa(len(bytes.Join(ls, nil))) {
		t.Fatalf("records after Open = %d, last %+v; want a log.recovered record for audit.log.torn-6", len(recs), recs[len(recs)-1])
	}
	l = openLog(t, path, Config{}) // recorded once, not at every Open
	l.Close()
	if n := len(records(t, path)); n != 6 {
		t.Errorf("second Open: %d records, want 6", n)
	}
}

func TestOpenRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "audit.log")); err != nil {
		t.Skip(err)
	}
	if l, err := Open(filepath.Join(dir, "audit.log"), Config{}); err == nil {
		l.Close()
		t.Fatal("Open followed a symbolic link planted at the log's path")
	}
}

func TestOpenRefusesDamagedTail(t *testing.T) {
	path, ls := fiveRecords(t)
	writeLines(t, path, ls[0], ls[1], bytes.Replace(ls[2], []byte("carol"), []byte("craig"), 1))
	_, err := Open(path, Config{})
	var ve *VerifyError
	if !errors.Is(err, ErrTampered) || !errors.As(err, &ve) || ve.File != path {
		t.Fatalf("Open over an edited last record = %v, want ErrTampered naming the file", err)
	}
	if _, err := Open(path, Config{}); !errors.Is(err, ErrTampered) {
		t.Errorf("second Open = %v: the failed Open must release its lock", err)
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	const max = 1500
	l := openLog(t, path, Config{MaxFileBytes: max})
	for range 40 {
		mustAppend(t, l, Record{Kind: KindCallStart, Caller: "alice", Method: "command.run"})
	}
	l.Close()
	files, err := Files(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("Files = %v: 40 records of ~250 bytes in 1500-byte files should make several files", files)
	}
	for i, f := range files {
		want := path
		if i < len(files)-1 {
			want = rotatedName(path, uint64(i+1))
		}
		if f != want {
			t.Errorf("Files[%d] = %s, want %s", i, f, want)
		}
		if size := fileSize(t, f); size > max {
			t.Errorf("%s is %d bytes, over MaxFileBytes %d", f, size, max)
		}
	}
	sum, err := Verify(files...)
	if err != nil || sum.Records != 40 || sum.Files != len(files) {
		t.Fatalf("Verify = %+v, %v; want 40 records in %d files", sum, err, len(files))
	}

	// Reopening continues both the chain and the file numbering.
	l = openLog(t, path, Config{MaxFileBytes: max})
	for range 10 {
		mustAppend(t, l, Record{Kind: KindCallEnd})
	}
	l.Close()
	files, _ = Files(path)
	sum, err = Verify(files...)
	if err != nil || sum.Records != 50 {
		t.Fatalf("after reopen: Verify = %+v, %v; want 50 records", sum, err)
	}

	// The later files alone verify against a checkpoint of the earlier ones.
	early, err := Verify(files[:2]...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(files[2:]...); !errors.Is(err, ErrTampered) {
		t.Errorf("Verify of later files from genesis = %v, want ErrTampered (the start is missing)", err)
	}
	if s, err := VerifyFrom(early.Head(), files[2:]...); err != nil || s.Records+early.Records != 50 {
		t.Errorf("VerifyFrom(checkpoint) = %+v, %v; want the remaining records", s, err)
	}

	// Files out of order, or one missing, break the chain at a file boundary.
	var ve *VerifyError
	if _, err := Verify(files[0], files[2], files[1]); !errors.As(err, &ve) || ve.File != files[2] || ve.Line != 1 {
		t.Errorf("Verify of reordered files = %v, want an error at line 1 of %s", err, files[2])
	}
	if err := os.Remove(files[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyLog(path); !errors.As(err, &ve) || ve.File != files[2] || !strings.Contains(ve.Reason, "deleted") {
		t.Errorf("VerifyLog with a file removed = %v, want deletion found at %s", err, files[2])
	}
}

func TestOpenAfterCrashDuringRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Config{})
	last := mustAppend(t, l, Record{Kind: "x"})
	l.Close()
	// The crash came after the rename and before the new live file.
	if err := os.Rename(path, rotatedName(path, 1)); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, path, Config{MaxFileBytes: 10})
	next := mustAppend(t, l, Record{Kind: "y"})
	next2 := mustAppend(t, l, Record{Kind: "z"}) // rotates again: must not overwrite .000001
	l.Close()
	if next.Seq != 2 || next.Prev != last.Hash || next2.Seq != 3 {
		t.Errorf("after reopen: seq %d prev %q, want seq 2 chained to %q", next.Seq, next.Prev, last.Hash)
	}
	if sum, err := VerifyLog(path); err != nil || sum.Records != 3 || sum.Files != 3 {
		t.Errorf("VerifyLog = %+v, %v; want 3 records in 3 files", sum, err)
	}
}

func TestFilesOrder(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "a.log")
	for _, name := range []string{"a.log.10", "a.log.2", "a.log.000001", "a.log", "a.log.lock", "a.log.torn-3", "a.log.x1", "a.logx.3", "b.log.4"} {
		writeLines(t, filepath.Join(dir, name))
	}
	got, err := Files(base)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{base + ".000001", base + ".2", base + ".10", base}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Files = %v, want %v", got, want)
	}
	if _, err := Files(filepath.Join(dir, "none.log")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Files of a missing log = %v, want ErrNotExist", err)
	}
}

func TestVerifyLimits(t *testing.T) {
	if _, err := Verify(); err == nil {
		t.Error("Verify() with no files succeeded")
	}
	if _, err := Verify(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Verify(missing) = %v, want ErrNotExist", err)
	}
	long := bytes.Repeat([]byte("x"), MaxRecordBytes+10)
	_, err := VerifyReader(bytes.NewReader(append(long, '\n')))
	if !errors.Is(err, ErrTampered) {
		t.Errorf("VerifyReader of an over-long line = %v, want ErrTampered", err)
	}
	if sum, err := VerifyReader(strings.NewReader("")); err != nil || sum.Records != 0 {
		t.Errorf("VerifyReader of an empty log = %+v, %v; want no records, no error", sum, err)
	}
}

func TestQuery(t *testing.T) {
	p := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, p, Config{Clock: fixedClock(), MaxFileBytes: 600})
	add := func(kind, caller, method, outcome, call string) {
		mustAppend(t, l, Record{Kind: kind, Caller: caller, Method: method, Outcome: outcome, CallID: call})
	}
	add(KindCallStart, "alice", "command.run", "", "c1")      // seq 1, 12:00
	add(KindCallEnd, "alice", "command.run", "ok", "c1")      // seq 2, 12:01
	add(KindCallDenied, "bob", "command.run", "denied", "c2") // seq 3, 12:02
	add(KindCallStart, "bob", "test.ping", "", "c3")          // seq 4, 12:03
	add(KindCallEnd, "bob", "test.ping", "fault", "c3")       // seq 5, 12:04
	add("ca.sign", "", "", "", "")                            // seq 6, 12:05
	l.Close()
	files, err := Files(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want the query to span rotated files, got %v", files)
	}
	at := func(min int) time.Time { return time.Date(2025, 3, 1, 12, min, 0, 0, time.UTC) }
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4, 5, 6}},
		{"time range", Filter{Since: at(1), Until: at(3)}, []uint64{2, 3}},
		{"caller", Filter{Caller: "bob"}, []uint64{3, 4, 5}},
		{"method glob", Filter{Method: "command.*"}, []uint64{1, 2, 3}},
		{"kind glob", Filter{Kind: "call.*", Caller: "alice"}, []uint64{1, 2}},
		{"kind", Filter{Kind: "ca.sign"}, []uint64{6}},
		{"outcome", Filter{Outcome: "denied"}, []uint64{3}},
		{"call id", Filter{CallID: "c3"}, []uint64{4, 5}},
		{"nothing", Filter{Caller: "mallory"}, nil},
	}
	for _, tt := range tests {
		var got []uint64
		if err := Query(files, tt.f, func(r Record) error { got = append(got, r.Seq); return nil }); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got seqs %v, want %v", tt.name, got, tt.want)
		}
	}

	var n int
	if err := Query(files, Filter{}, func(Record) error { n++; return stopAt(n, 2) }); err != nil || n != 2 {
		t.Errorf("Query stopped with ErrStop: %d calls, err %v; want 2, nil", n, err)
	}
	errMine := errors.New("mine")
	if err := Query(files, Filter{}, func(Record) error { return errMine }); !errors.Is(err, errMine) {
		t.Errorf("Query = %v, want the callback's error", err)
	}
	if err := Query(files, Filter{Method: "["}, func(Record) error { return nil }); !errors.Is(err, path.ErrBadPattern) {
		t.Errorf("Query with a bad pattern = %v, want path.ErrBadPattern", err)
	}
	// A query may start after archived files.
	var first uint64
	if err := Query(files[1:], Filter{}, func(r Record) error { first = r.Seq; return ErrStop }); err != nil || first < 2 {
		t.Errorf("Query of later files: first seq %d, err %v", first, err)
	}
}

func stopAt(n, at int) error {
	if n == at {
		return ErrStop
	}
	return nil
}

func TestRecordString(t *testing.T) {
	r := Record{Seq: 7, Time: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Kind: KindCallEnd, CallID: "c1",
		Caller: "alice", Method: "test.add", Outcome: OutcomeFault, Code: -32602, Error: "bad", Duration: time.Second}
	want := `#7 2025-01-02T03:04:05Z call.end call="c1" caller="alice" method="test.add" outcome="fault" code=-32602 error="bad" duration=1s`
	if got := r.String(); got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

func TestSummaryString(t *testing.T) {
	s := Summary{Files: 2, Records: 3, FirstSeq: 4, LastSeq: 6, LastHash: strings.Repeat("ab", 32)}
	if got, want := s.String(), "3 records, seq 4 to 6, in 2 file(s), head abababababab..."; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Summary{Files: 1}).String(), "no records in 1 file(s)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
