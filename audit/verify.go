package audit

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gofunc/gofunc/internal/hashchain"
)

// Errors. Every error Append returns wraps ErrWrite; verification errors
// are *VerifyError values wrapping ErrTampered or ErrTorn.
var (
	// ErrWrite means the record was not durably written. The minion
	// refuses the call (gofunc.CodeAuditFailed).
	ErrWrite = errors.New("audit: record not written")
	// ErrClosed is returned (wrapped with ErrWrite) by Append after Close.
	ErrClosed = errors.New("audit: log is closed")
	// ErrRecordTooLarge is returned (wrapped with ErrWrite) for a record
	// whose line would exceed MaxRecordBytes.
	ErrRecordTooLarge = errors.New("audit: record too large")
	// ErrLocked is returned by Open when another Log, in this process or
	// another, has the file open.
	ErrLocked = errors.New("audit: log is in use")
	// ErrTampered means a record was edited, deleted, reordered or
	// inserted, or a line is not a record at all.
	ErrTampered = errors.New("audit: log tampered or corrupt")
	// ErrTorn means the last line of the live file is incomplete: the
	// writer died in the middle of a record (kill -9, power loss). It is
	// expected after a crash and is not tampering; Open repairs it.
	ErrTorn = errors.New("audit: torn final record")
	// ErrStop, returned by a Query callback, ends the query early; Query
	// then returns nil.
	ErrStop = errors.New("audit: stop query")
)

// VerifyError says where verification failed. It wraps ErrTampered or
// ErrTorn: use errors.Is to tell them apart and errors.As to get the
// position.
type VerifyError struct {
	File   string // "" when reading from an io.Reader
	Line   int    // 1-based line number in File; 0 when unknown
	Offset int64  // byte offset of the line in File
	Seq    uint64 // the seq the offending line claims; 0 when unreadable
	Reason string
	Err    error // ErrTampered or ErrTorn
}

func (e *VerifyError) Error() string {
	where := e.File
	if where == "" {
		where = "record"
	}
	if e.Line > 0 {
		where = fmt.Sprintf("%s:%d", where, e.Line)
	}
	if e.Seq != 0 {
		where = fmt.Sprintf("%s (seq %d)", where, e.Seq)
	}
	return fmt.Sprintf("%s: %s: %s", e.Err, where, e.Reason)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Checkpoint names a position in a chain: a record's Seq and Hash. Keep
// the head of a log (Summary.Head) somewhere the log's writer cannot
// change, to detect records cut off the end, and to verify later files
// after older ones are archived (VerifyFrom).
type Checkpoint struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// Summary describes a verified chain.
type Summary struct {
	Files    int    // files read
	Records  int    // records verified
	FirstSeq uint64 // seq of the first record; 0 when there were none
	LastSeq  uint64 // seq of the last record; 0 when there were none
	LastHash string // hash of the last record: the head of the chain
}

// String summarizes for people: "3 records, seq 1 to 3, in 1 file, head 5f0c...".
func (s Summary) String() string {
	head := s.LastHash
	if len(head) > 12 {
		head = head[:12] + "..."
	}
	if s.Records == 0 {
		return fmt.Sprintf("no records in %d file(s)", s.Files)
	}
	return fmt.Sprintf("%d records, seq %d to %d, in %d file(s), head %s", s.Records, s.FirstSeq, s.LastSeq, s.Files, head)
}

// Head is the checkpoint after the last verified record.
func (s Summary) Head() Checkpoint { return Checkpoint{Seq: s.LastSeq, Hash: s.LastHash} }

// Verify checks the chain across paths, given in chain order (as Files
// returns them): every line is a record whose hash matches, seqs run
// 1, 2, 3, ... from the first file's first record, and every Prev is the
// previous record's Hash. The first problem is returned as a
// *VerifyError naming the file, line and seq; the Summary covers the
// records verified before it. A torn final line in the last file gives
// ErrTorn, any other problem ErrTampered.
//
// When older files were deleted by Prune (Config.KeepRotated), the
// chain starts at the anchor Prune saved beside the log, if the first
// file begins right after it.
//
// The chain alone cannot show that records were cut off the end: compare
// Summary.Head with a checkpoint kept elsewhere.
func Verify(paths ...string) (Summary, error) {
	if len(paths) == 0 {
		return VerifyFrom(Checkpoint{}, paths...)
	}
	return VerifyFrom(startOf(paths[0]), paths...)
}

// VerifyFrom is Verify for a chain that continues after from (the
// zero Checkpoint is the genesis): the first record must have seq
// from.Seq+1 and Prev from.Hash. Use it when older files were archived.
func VerifyFrom(from Checkpoint, paths ...string) (Summary, error) {
	c := &chain{anchored: true, next: from.Seq + 1, prev: from.Hash}
	c.sum.LastSeq, c.sum.LastHash = from.Seq, from.Hash
	if len(paths) == 0 {
		return c.sum, errors.New("audit: verify: no files given")
	}
	for i, p := range paths {
		if err := scanFile(p, i == len(paths)-1, c, nil); err != nil {
			return c.sum, err
		}
	}
	return c.sum, nil
}

// VerifyLog verifies the log whose live file is path, with all its
// rotated files (see Files).
func VerifyLog(path string) (Summary, error) {
	paths, err := Files(path)
	if err != nil {
		return Summary{}, err
	}
	return Verify(paths...)
}

// VerifyReader verifies one stream holding a whole chain from its
// genesis, as Verify does for files.
func VerifyReader(r io.Reader) (Summary, error) {
	c := &chain{anchored: true, next: 1}
	c.sum.Files = 1
	err := scan("", r, true, c, nil)
	return c.sum, err
}

// chain checks records in order and summarizes them.
type chain struct {
	// anchored: the first record must have seq next and Prev prev.
	// Otherwise (Query) the chain may start anywhere.
	anchored bool
	started  bool
	next     uint64
	prev     string
	sum      Summary
}

// add checks rec against the chain; it returns why rec does not fit, or "".
func (c *chain) add(rec Record) string {
	if rec.Seq == 0 {
		return "seq 0: seqs start at 1"
	}
	if c.started || c.anchored {
		switch {
		case !c.started && rec.Seq > c.next:
			return fmt.Sprintf("chain starts at seq %d, want %d: earlier records or files are missing", rec.Seq, c.next)
		case rec.Seq > c.next:
			return fmt.Sprintf("seq jumps from %d to %d: records deleted", c.next-1, rec.Seq)
		case rec.Seq < c.next:
			return fmt.Sprintf("seq %d after seq %d: records reordered or inserted", rec.Seq, c.next-1)
		case rec.Prev != c.prev:
			return "prev does not match the previous record's hash: records inserted, replaced or reordered"
		}
	}
	c.started = true
	c.next, c.prev = rec.Seq+1, rec.Hash
	if c.sum.Records == 0 {
		c.sum.FirstSeq = rec.Seq
	}
	c.sum.Records++
	c.sum.LastSeq, c.sum.LastHash = rec.Seq, rec.Hash
	return ""
}

// scanFile is scan over a file.
func scanFile(path string, last bool, c *chain, fn func(Record) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	c.sum.Files++
	return scan(path, f, last, c, fn)
}

// scan reads records from r, checks each against c and passes it to fn
// (if not nil). name is for errors; last says whether r is the last part
// of the chain, where an incomplete final line is a torn write rather
// than tampering.
func scan(name string, r io.Reader, last bool, c *chain, fn func(Record) error) error {
	lr := hashchain.NewLineReader(r, MaxRecordBytes)
	for {
		line, off, complete, err := lr.Next()
		if err == io.EOF {
			return nil
		}
		fail := func(seq uint64, reason string, kind error) error {
			return &VerifyError{File: name, Line: lr.Lines(), Offset: off, Seq: seq, Reason: reason, Err: kind}
		}
		if errors.Is(err, hashchain.ErrLineTooLong) {
			return fail(0, errLineTooLong.Error(), ErrTampered)
		}
		if err != nil {
			return fmt.Errorf("audit: read %s: %w", name, err)
		}
		if !complete {
			if last {
				return fail(0, fmt.Sprintf("final line is incomplete (%d bytes, no newline): a write torn by a crash; Open recovers it", len(line)), ErrTorn)
			}
			return fail(0, "file ends in an incomplete line, but it is not the last file", ErrTampered)
		}
		rec, reason := parseLine(line)
		if reason == "" {
			reason = c.add(rec)
		}
		if reason != "" {
			return fail(rec.Seq, reason, ErrTampered)
		}
		if fn != nil {
			if err := fn(rec); err != nil {
				return err
			}
		}
	}
}

var errLineTooLong = fmt.Errorf("line longer than the longest record (%d bytes)", MaxRecordBytes)
