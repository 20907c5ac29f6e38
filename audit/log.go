package audit

import (
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
// lines, Sync must make them durable. *os.File is one. The Log calls
// them from one goroutine at a time.
type WriteSyncer interface {
	io.Writer
	Sync() error
}

// Log is an open audit log: an append-only chain of records. Its methods
// are safe for concurrent use.
//
// Append is a group commit: concurrent Appends queue up, one of them
// (the leader) writes the whole queue with one write and one fsync, and
// every Append returns only once its own record is durable.
type Log struct {
	path   string // live file; "" for New
	dir    string
	max    int64 // rotation size; <= 0: never
	keep   int   // rotated files kept; <= 0: all
	logger hclog.Logger
	clock  func() time.Time
	lock   *os.File // the flock on path.lock; nil for New

	mu      sync.Mutex
	idle    sync.Cond  // broadcast when leading becomes false
	queue   []*pending // Appends waiting for a leader
	leading bool       // an Append is committing a batch
	closed  bool
	head    Checkpoint // last durable record

	// Writer state, owned by the leader (or by Open and Close when there
	// is none): only the goroutine that set leading touches it.
	w        WriteSyncer
	file     *os.File // the live file; nil for New
	size     int64    // bytes of complete records in file
	nextSeq  uint64
	lastHash string
	rotIndex uint64 // index of the next rotated file
	broken   error  // set when a failed write could not be undone
	buf      []byte

	records, commits atomic.Uint64 // Stats
}

// pending is one Append waiting in the queue.
type pending struct {
	rec  Record
	out  Record
	err  error
	lead bool          // set when the Append is promoted to leader
	wake chan struct{} // receives once: done, or lead
	// noSync: AppendNoSync, woken once the record is written, before
	// the fsync (then woken is set); never promoted to leader.
	noSync, woken bool
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
	l.idle.L = &l.mu
	return l
}

// Path returns the live file's path, as given to Open; "" for a Log
// made by New.
func (l *Log) Path() string { return l.path }

// Head returns the seq and hash of the last record written, the zero
// Checkpoint before the first. Keeping it elsewhere from time to time
// lets Verify's caller notice records cut off the end of the log.
func (l *Log) Head() Checkpoint {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.head
}

// Stats counts what a Log has made durable since it was opened.
type Stats struct {
	Records uint64 // records written
	// Commits counts the writes, each with its fsync, that made them
	// durable: concurrent Appends share one (group commit), so
	// Records/Commits is how many records an fsync carried on average.
	Commits uint64
}

// Stats returns the log's counters.
func (l *Log) Stats() Stats {
	return Stats{Records: l.records.Load(), Commits: l.commits.Load()}
}

// Append writes rec to the log and returns it as written: Seq, Prev and
// Hash filled in, and Time set from the clock if it was zero (it is
// stored in UTC). When Append returns nil the record is on stable
// storage. rec.Kind must not be empty.
//
// Every error wraps ErrWrite, and the record is then not in the log: the
// caller must not go on with whatever the record announced (the minion
// refuses the call). After Close, the error also wraps ErrClosed.
func (l *Log) Append(rec Record) (Record, error) {
	p := &pending{rec: rec, wake: make(chan struct{}, 1)}
	if err := l.submit([]*pending{p}); err != nil {
		return Record{}, err
	}
	return p.out, p.err
}

// AppendBatch writes recs in chain order as part of one write and one
// fsync, and returns them as written. When it returns nil every record
// is durable; on error the caller must treat the whole batch as not
// written (records before a failing one may be in the log, as records
// of an intent that was then abandoned). Every error wraps ErrWrite.
func (l *Log) AppendBatch(recs []Record) ([]Record, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	ps := make([]*pending, len(recs))
	for i, rec := range recs {
		ps[i] = &pending{rec: rec, wake: make(chan struct{}, 1)}
	}
	if err := l.submit(ps); err != nil {
		return nil, err
	}
	out := make([]Record, len(ps))
	for i, p := range ps {
		if p.err != nil {
			return nil, p.err
		}
		out[i] = p.out
	}
	return out, nil
}

// AppendNoSync writes rec with the next group commit and returns it
// as written (as Append does) once it is in the file, without waiting
// for the fsync that makes it durable: that fsync follows at once, and
// Head moves past rec only after it. A crash before then may lose rec
// (Open cuts a torn end off, as after any crash).
//
// It is for a record that nothing waits on durably: the minion's
// call.end, written after the method ran, whose call.start was made
// durable by Append before the method was allowed to run. Readers of
// the file (tail, Verify) see rec when AppendNoSync returns. An error
// means rec was not written (it wraps ErrWrite); an fsync that fails
// after AppendNoSync returned is reported to Config.Logger, and the
// log then takes rec back or refuses further records, as for any
// failed write.
func (l *Log) AppendNoSync(rec Record) (Record, error) {
	p := &pending{rec: rec, wake: make(chan struct{}, 1), noSync: true}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return Record{}, fmt.Errorf("%w: %w", ErrWrite, ErrClosed)
	}
	l.queue = append(l.queue, p)
	if !l.leading {
		// A leader of its own, so that this caller does not wait for
		// the fsync it leads.
		l.leading = true
		go l.lead(nil)
	}
	l.mu.Unlock()
	<-p.wake
	return p.out, p.err
}

// submit queues ps (one caller's records, kept together and in order)
// and returns once they are committed, leading the commit if no other
// Append is. The records' outcomes are in each pending.
func (l *Log) submit(ps []*pending) error {
	p := ps[0]
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrWrite, ErrClosed)
	}
	l.queue = append(l.queue, ps...)
	if l.leading {
		l.mu.Unlock()
		// ps were queued together, so one leader takes all of them: the
		// first one's wake-up says the rest are done too.
		<-p.wake
		if !p.lead {
			return nil
		}
	} else {
		l.leading = true
		l.mu.Unlock()
	}
	l.lead(p)
	return nil
}

// lead commits the queue as leader (leading is set, by the caller or
// by the leader before), then hands the lead over. self is the
// leader's own pending, nil for a leader of AppendNoSync records.
// AppendNoSync callers are woken once their records are written; the
// others once they are durable.
func (l *Log) lead(self *pending) {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	l.mu.Unlock()

	l.commit(batch)

	l.mu.Lock()
	defer l.mu.Unlock()
	l.head = Checkpoint{Seq: l.nextSeq - 1, Hash: l.lastHash}
	for _, q := range batch {
		if q != self && !q.woken {
			q.wake <- struct{}{}
		}
	}
	// Hand over rather than loop, so that no Append waits for more
	// than the batch after its own: to the first Append waiting for
	// durability (the first of an AppendBatch's records: they are
	// queued together), or to a new goroutine when only AppendNoSync
	// records are queued.
	for _, next := range l.queue {
		if !next.noSync {
			next.lead = true
			next.wake <- struct{}{}
			return
		}
	}
	if len(l.queue) > 0 {
		go l.lead(nil)
		return
	}
	l.leading = false
	l.idle.Broadcast()
}

// commit encodes batch onto the chain, writes and syncs it, and sets
// every pending's out or err. The chain advances only if the write
// succeeded. Once the batch is written, before the fsync, the
// AppendNoSync pendings in it are woken (and marked woken): their out
// and err are then theirs, and a failed fsync is only logged for them.
func (l *Log) commit(batch []*pending) {
	if l.broken != nil {
		for _, p := range batch {
			p.err = fmt.Errorf("%w: the log failed earlier and must be reopened: %w", ErrWrite, l.broken)
		}
		return
	}
	buf := l.buf[:0]
	seq, prev := l.nextSeq, l.lastHash
	encoded := batch[:0:0]
	for _, p := range batch {
		rec := p.rec
		if rec.Kind == "" {
			p.err = fmt.Errorf("%w: record has no Kind", ErrWrite)
			continue
		}
		rec.Seq, rec.Prev = seq, prev
		if rec.Time.IsZero() {
			rec.Time = l.clock()
		}
		rec.Time = rec.Time.UTC()
		line, hash, err := encode(rec)
		if err != nil {
			p.err = fmt.Errorf("%w: %w", ErrWrite, err)
			continue
		}
		rec.Hash = hash
		p.out = rec
		buf = append(buf, line...)
		seq, prev = seq+1, hash
		encoded = append(encoded, p)
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf
	}
	if len(encoded) == 0 {
		return
	}
	release := func() {
		for _, p := range encoded {
			if p.noSync {
				p.woken = true
				p.wake <- struct{}{}
			}
		}
	}
	if err := l.write(buf, release); err != nil {
		for _, p := range encoded {
			if p.woken {
				l.logger.Error("an audit record written without waiting for its fsync is lost: the fsync failed",
					"seq", p.out.Seq, "kind", p.out.Kind, "error", err)
				continue
			}
			p.out, p.err = Record{}, err
		}
		return
	}
	l.nextSeq, l.lastHash = seq, prev
	l.records.Add(uint64(len(encoded)))
	l.commits.Add(1)
}

// write appends buf durably, rotating first if buf would take the live
// file past the rotation size; written runs between the write and the
// fsync. On failure it takes back whatever part of buf reached the
// file, or marks the log broken if it cannot.
func (l *Log) write(buf []byte, written func()) error {
	if l.file != nil && l.max > 0 && l.size > 0 && l.size+int64(len(buf)) > l.max {
		if err := l.rotate(); err != nil {
			l.logger.Error("audit log rotation failed", "path", l.path, "error", err)
			return fmt.Errorf("%w: rotate %s: %w", ErrWrite, l.path, err)
		}
	}
	n, err := l.w.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err == nil {
		written()
		if err = l.w.Sync(); err != nil {
			err = fmt.Errorf("sync: %w", err)
		}
	}
	if err != nil {
		l.undo(n, err)
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	l.size += int64(n)
	return nil
}

// undo removes the n bytes a failed write may have left, so that the
// next record follows the last good one and no torn line stays in the
// middle of the chain. If that is impossible the log is marked broken.
func (l *Log) undo(n int, cause error) {
	if l.file == nil {
		if n > 0 {
			l.broken = cause
			l.logger.Error("audit write failed after a partial write; refusing further records", "error", cause)
		}
		return
	}
	err := l.file.Truncate(l.size)
	if err == nil {
		err = l.file.Sync()
	}
	if err != nil {
		l.broken = fmt.Errorf("%w (and truncating back failed: %w)", cause, err)
		l.logger.Error("audit write failed and could not be undone; refusing further records", "path", l.path, "error", l.broken)
		return
	}
	l.logger.Error("audit write failed; the log is back at its last good record", "path", l.path, "offset", l.size, "error", cause)
}

// rotate renames the live file to the next rotated name and starts a
// new, empty live file. The chain goes on across the files.
func (l *Log) rotate() error {
	next := rotatedName(l.path, l.rotIndex)
	if _, err := os.Lstat(next); err == nil {
		return fmt.Errorf("%s already exists", next)
	}
	if err := os.Rename(l.path, next); err != nil {
		return err
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND|noFollow, 0o600)
	if err != nil {
		if rerr := os.Rename(next, l.path); rerr != nil {
			l.broken = fmt.Errorf("rotation failed and %s could not be renamed back: %w", next, rerr)
		}
		return err
	}
	old := l.file
	l.file, l.w, l.size = f, f, 0
	l.rotIndex++
	if err := old.Close(); err != nil {
		l.logger.Warn("closing rotated audit file failed", "path", next, "error", err)
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		// The rename may not survive a crash; Open copes with either
		// outcome, but say so.
		l.broken = fmt.Errorf("sync directory after rotation: %w", err)
		return l.broken
	}
	l.logger.Info("audit log rotated", "rotated", next)
	if l.keep > 0 {
		// Retention never fails a record: a file that could not be
		// deleted is deleted at the next rotation.
		if err := Prune(l.path, l.keep); err != nil {
			l.logger.Warn("deleting old rotated audit files failed", "path", l.path, "error", err)
		}
	}
	return nil
}

// Close waits for Appends in progress, then closes the log. Later
// Appends fail with ErrClosed. Close is idempotent; for a Log made by
// New it does not close the writer.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for l.leading {
		l.idle.Wait()
	}
	l.mu.Unlock()
	var err error
	if l.file != nil {
		err = l.file.Close()
	}
	if l.lock != nil {
		if lerr := l.lock.Close(); err == nil {
			err = lerr
		}
	}
	if err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
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
