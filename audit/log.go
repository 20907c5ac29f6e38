package audit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// DefaultMaxFileBytes is the rotation size when Config.MaxFileBytes is zero.
const DefaultMaxFileBytes = 64 << 20

// Config configures a Log. The zero Config is ready to use.
type Config struct {
	// MaxFileBytes is the rotation size: a batch of records that would
	// take the live file past it is written to a fresh file instead, after
	// the live file is renamed path.NNNNNN (see Files). A single batch
	// larger than MaxFileBytes still goes into one file. Zero means
	// DefaultMaxFileBytes (64 MiB); negative disables rotation. New
	// ignores it.
	MaxFileBytes int64
	// KeepRotated is how many rotated files are kept. When a rotation
	// leaves more, the oldest are deleted, after the checkpoint of the
	// last record they held is saved to path.anchor, so that Verify
	// still checks the chain of the files that remain (see Prune). Zero
	// (the default) keeps every file; with a positive value the log uses
	// at most about (KeepRotated+1) * MaxFileBytes of disk. New ignores
	// it.
	KeepRotated int
	// Logger receives warnings (recovered torn writes, loose file
	// permissions, write failures). It never sees record contents.
	// Nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// Clock stamps records whose Time is zero. Nil means time.Now.
	Clock func() time.Time
}

// WriteSyncer is where New writes records: Write takes whole batches of
// lines, Sync must make them durable. *os.File is one. The Log never
// calls Write from two goroutines at once, nor Sync, but it may call
// Sync while a Write runs: Sync must then cover at least what was
// written before it was called (a file's fsync does).
type WriteSyncer interface {
	io.Writer
	Sync() error
}

// Log is an open audit log: an append-only chain of records. Its methods
// are safe for concurrent use.
//
// Records are committed in two stages. A writer writes every record
// queued meanwhile with one write; an Append then waits for an fsync
// that started after its record was written. One fsync runs at a time
// and covers every record written before it started, so concurrent
// Appends share it (group commit), and records keep being written while
// it runs: the next fsync carries all of them.
type Log struct {
	path   string // live file; "" for New
	dir    string
	max    int64 // rotation size; <= 0: never
	keep   int   // rotated files kept; <= 0: all
	logger hclog.Logger
	clock  func() time.Time
	lock   *os.File // the flock on path.lock; nil for New

	mu      sync.Mutex
	changed sync.Cond  // broadcast when writing or syncing becomes false
	queue   []*pending // callers waiting for the writer
	waiting []*pending // callers whose records are written, waiting for an fsync
	writing bool       // a goroutine holds the writer's role
	syncing bool       // a goroutine holds the syncer's role
	closed  bool
	head    Checkpoint // last durable record
	written Checkpoint // last record written
	// broken is why the log refuses further records: a failed write
	// that could not be taken back, or a failed fsync (after which
	// nothing the file holds can be trusted to be on disk).
	broken error

	// Writer state: only the goroutine holding the writer's role (or
	// Open, before the Log is shared) touches it. w and file also
	// belong to the syncer's role (rotation holds both).
	w        WriteSyncer
	file     *os.File // the live file; nil for New
	size     int64    // bytes of complete records in file
	nextSeq  uint64
	lastHash string
	rotIndex uint64 // index of the next rotated file
	buf      []byte

	records, commits atomic.Uint64 // Stats
}

// New returns a Log that writes a new chain (starting at seq 1) to w.
// There is no rotation and no recovery. After a write that may have left
// part of a batch in w (a short write, or a failed Sync), the Log refuses
// further Appends, because it cannot take the bytes back; a write that
// failed with nothing written leaves it usable. Close does not close w.
func New(w WriteSyncer, cfg Config) (*Log, error) {
	if w == nil {
		return nil, fmt.Errorf("audit: New: nil writer")
	}
	l := newLog(cfg)
	l.w = w
	return l, nil
}

func newLog(cfg Config) *Log {
	l := &Log{logger: cfg.Logger, clock: cfg.Clock, max: cfg.MaxFileBytes, keep: cfg.KeepRotated, nextSeq: 1, rotIndex: 1}
	if l.logger == nil {
		l.logger = hclog.NewNullLogger()
	}
	if l.clock == nil {
		l.clock = time.Now
	}
	if l.max == 0 {
		l.max = DefaultMaxFileBytes
	}
	l.changed.L = &l.mu
	return l
}

// Path returns the live file's path, as given to Open; "" for a Log
// made by New.
func (l *Log) Path() string { return l.path }

// Head returns the seq and hash of the last durable record, the zero
// Checkpoint before the first. Keeping it elsewhere from time to time
// lets Verify's caller notice records cut off the end of the log.
func (l *Log) Head() Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// Err returns why the log refuses every record for good, wrapping
// ErrWrite: an fsync that failed (after which nothing written since the
// last good one can be trusted to be on disk), or a failed write whose
// bytes could not be taken back. It is nil while the log takes records
// (and after Close). Such a log stays refused until it is opened again:
// a minion answers every call audit_failed until funcd restarts, which
// is why minionmetrics exports this as gofunc_audit_log_failed.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken == nil || errors.Is(l.broken, ErrWrite) {
		return l.broken
	}
	return fmt.Errorf("%w: %w", ErrWrite, l.broken)
}

// Stats counts what a Log has written since it was opened.
type Stats struct {
	Records uint64 // records written
	// Commits counts the fsyncs that made them durable: concurrent
	// Appends share one (group commit), so Records/Commits is how many
	// records an fsync carried on average.
	Commits uint64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{Records: l.records.Load(), Commits: l.commits.Load()}
}

// Open opens the log whose live file is path, creating it (mode 0600,
// and its directory 0700 if missing), and continues its chain after the
// last record of the live file or, if that is empty, of the newest
// rotated file.
//
// A torn final line (a write cut short by a crash) is cut off the live
// file, saved to path.torn-SEQ (0600) and then reported in the chain by a
// "log.recovered" record whose Details give its offset, size, SHA-256 and
// the side file's name, so that nothing disappears silently.
//
// Open only checks the last record: if it is not intact, Open fails with
// a *VerifyError (ErrTampered), so that nothing is appended to a damaged
// chain. Use Verify to check the whole log. Another open Log on the same
// path makes Open fail with ErrLocked.
func Open(path string, cfg Config) (*Log, error) {
	l := newLog(cfg)
	l.path, l.dir = path, filepath.Dir(path)
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	l.lock = lock
	if err := l.open(); err != nil {
		if l.file != nil {
			l.file.Close()
		}
		lock.Close()
		return nil, err
	}
	return l, nil
}

// open is Open after the lock is taken.
func (l *Log) open() error {
	// Only a new file needs its directory entry made durable; sparing
	// the directory fsync matters to Shared, which opens per record.
	_, statErr := os.Lstat(l.path)
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND|noFollow, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.file, l.w = f, f
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		l.logger.Warn("audit log is readable by others; it should be mode 0600", "path", l.path, "mode", fi.Mode().Perm().String())
	}
	if statErr != nil {
		if err := fsutil.SyncDir(l.dir); err != nil {
			return fmt.Errorf("audit: sync %s: %w", l.dir, err)
		}
	}
	t, err := readTail(f, l.path, fi.Size())
	if err != nil {
		return err
	}
	l.size = t.good
	rotated, err := rotatedFiles(l.path)
	if err != nil {
		return err
	}
	if n := len(rotated); n > 0 {
		l.rotIndex = rotated[n-1].index + 1
	}
	last := t.last
	for i := len(rotated) - 1; last == nil && i >= 0; i-- {
		if last, err = lastRecordOf(rotated[i].path); err != nil {
			return err
		}
	}
	if last != nil {
		l.nextSeq, l.lastHash = last.Seq+1, last.Hash
	}
	l.head = Checkpoint{Seq: l.nextSeq - 1, Hash: l.lastHash}
	l.written = l.head
	if t.torn != nil {
		return l.recoverTorn(t.good, t.torn)
	}
	return l.recordUnrecordedRecovery()
}

// lastRecordOf returns the last record of a rotated file (nil if it is
// empty). Rotated files are complete, so a torn end there is tampering.
func lastRecordOf(path string) (*Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	t, err := readTail(f, path, fi.Size())
	if err != nil {
		return nil, err
	}
	if t.torn != nil {
		return nil, &VerifyError{File: path, Offset: t.good, Reason: "rotated file ends in an incomplete line", Err: ErrTampered}
	}
	return t.last, nil
}

// tornName is where the torn bytes found when the chain was at
// nextSeq are saved; the log.recovered record takes that seq.
func (l *Log) tornName() string { return fmt.Sprintf("%s.torn-%d", l.path, l.nextSeq) }

// recoverTorn saves the torn bytes beside the log, cuts them off and
// records that it did.
func (l *Log) recoverTorn(good int64, torn []byte) error {
	side := l.tornName()
	if err := fsutil.WriteFileAtomic(side, torn, 0o600); err != nil {
		return fmt.Errorf("audit: save torn record: %w", err)
	}
	if err := l.file.Truncate(good); err != nil {
		return fmt.Errorf("audit: cut torn record: %w", err)
	}
	if err := l.file.Sync(); err != nil {
		return fmt.Errorf("audit: cut torn record: %w", err)
	}
	l.logger.Warn("audit log had a torn final record; saved and cut off", "path", l.path, "offset", good, "bytes", len(torn), "saved_as", side)
	return l.recordRecovery(good, torn, side)
}

// recordUnrecordedRecovery finishes a recovery that a crash interrupted
// after the torn bytes were saved and cut off but before the
// log.recovered record was durable: the side file for the next seq
// exists, so its record is missing.
func (l *Log) recordUnrecordedRecovery() error {
	side := l.tornName()
	torn, err := os.ReadFile(side)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	l.logger.Warn("audit log recovery was interrupted; recording it now", "path", l.path, "saved_as", side)
	return l.recordRecovery(l.size, torn, side)
}

func (l *Log) recordRecovery(offset int64, torn []byte, side string) error {
	_, err := l.Append(Record{Kind: KindLogRecovered, Details: map[string]string{
		"file":     filepath.Base(l.path),
		"offset":   fmt.Sprint(offset),
		"bytes":    fmt.Sprint(len(torn)),
		"sha256":   sha256Hex(torn),
		"saved_as": filepath.Base(side),
	}})
	return err
}
