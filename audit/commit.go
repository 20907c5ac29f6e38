package audit

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// How records reach the disk. Two roles, each held by one goroutine at
// a time, hand records on:
//
//   - The writer takes every caller queued, encodes their records onto
//     the chain and writes them with one write (rotating the file
//     first if they would take it past the rotation size).
//   - The syncer runs one fsync at a time. An fsync covers every record
//     written before it started (the syncer notes the last one,
//     l.written, before calling Sync), so once it returns, Head moves
//     to that record and the callers waiting for it are woken.
//
// The writer does not wait for the fsync in flight: records written
// meanwhile go with the next one, which starts as soon as the current
// one ends. AppendNoSync's callers return once written; the others
// wait for an fsync that started after their records were written.
// The roles are handed over to a waiting caller (or, when none waits,
// to a goroutine of its own, so that a record written without waiting
// is still fsynced at once) rather than kept in a loop, so that no
// caller waits for more than the work after its own.
//
// An fsync that fails breaks the log: every caller waiting for one
// gets the error, nothing later is acknowledged, and Head stays at the
// last record an fsync made durable. The file's state after a failed
// fsync is unknown (the kernel may have dropped the pages it could
// not write), so the log is not trusted again until it is reopened.
// Rotation and taking back a failed write change the file, so they run
// while holding the syncer's role too: no fsync runs on a file being
// renamed, truncated or closed.

// handOver is what a waiting caller is woken for.
type handOver uint8

const (
	// done: the caller's records are durable (written, for
	// AppendNoSync), or its err is set.
	done handOver = iota
	// leadWrite: the caller now holds the writer's role.
	leadWrite
	// leadSync: the caller now holds the syncer's role.
	leadSync
	// wait is never sent: the caller waits for the next hand-over.
	wait
)

// pending is one caller's records on their way into the log.
type pending struct {
	// recs are the records, filled in as written (Seq, Prev, Hash,
	// Time) once they are; the log's own copy, never the caller's.
	recs []Record
	err  error
	last uint64 // seq of the last record, once written
	// noSync: AppendNoSync, done once its record is written.
	noSync bool
	wake   chan handOver // one message per hand-over; buffered
	one    [1]Record     // recs of a single record
}

// pendings recycles single-record pendings (two per minion call): a
// pending is free again once submit has returned, as the log drops
// every reference to it before the caller's last hand-over.
var pendings = sync.Pool{New: func() any { return &pending{wake: make(chan handOver, 1)} }}

// appendOne submits rec alone and returns it as written.
func (l *Log) appendOne(rec Record, noSync bool) (Record, error) {
	p := pendings.Get().(*pending)
	p.one[0], p.recs, p.noSync = rec, p.one[:], noSync
	l.submit(p)
	out, err := p.one[0], p.err
	*p = pending{wake: p.wake}
	pendings.Put(p)
	if err != nil {
		return Record{}, err
	}
	return out, nil
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
	return l.appendOne(rec, false)
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
	p := &pending{recs: slices.Clone(recs), wake: make(chan handOver, 1)}
	l.submit(p)
	if p.err != nil {
		return nil, p.err
	}
	return p.recs, nil
}

// AppendNoSync writes rec and returns it as written (as Append does)
// once it is in the file, without waiting for the fsync that makes it
// durable: that fsync follows at once (it is the one in flight's
// successor, or starts now), and Head moves past rec only after it. A
// crash before then may lose rec (Open cuts a torn end off, as after
// any crash).
//
// It is for a record that nothing waits on durably: the minion's
// call.end, written after the method ran, whose call.start was made
// durable by Append before the method was allowed to run. Readers of
// the file (tail, Verify) see rec when AppendNoSync returns. An error
// means rec may not have been written (it wraps ErrWrite); an fsync
// that fails after AppendNoSync returned is reported to
// Config.Logger, and the log then refuses further records.
func (l *Log) AppendNoSync(rec Record) (Record, error) {
	return l.appendOne(rec, true)
}

// submit queues p and returns once its records are durable (written,
// for AppendNoSync) or have failed, taking whatever role it is handed
// on the way.
func (l *Log) submit(p *pending) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		p.err = fmt.Errorf("%w: %w", ErrWrite, ErrClosed)
		return
	}
	l.queue = append(l.queue, p)
	next := leadWrite
	if l.writing {
		next = wait
	} else {
		l.writing = true
	}
	l.mu.Unlock()
	for {
		switch next {
		case done:
			return
		case leadWrite:
			next = l.writeQueue(p)
		case leadSync:
			l.syncLoop(p)
			return
		case wait:
			next = <-p.wake
		}
	}
}

// writeQueue writes the callers queued, as the holder of the writer's
// role, hands the role on, and starts an fsync if none is in flight.
// It returns what self (one of the callers written) does next.
func (l *Log) writeQueue(self *pending) handOver {
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	broken := l.broken
	l.mu.Unlock()

	if broken != nil {
		for _, p := range batch {
			p.err = fmt.Errorf("%w: the log failed earlier and must be reopened: %w", ErrWrite, broken)
		}
	} else {
		l.writeBatch(batch)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.written = Checkpoint{Seq: l.nextSeq - 1, Hash: l.lastHash}
	next := done
	for _, p := range batch {
		if p.err == nil && l.broken != nil {
			// An fsync failed while these were written: nothing
			// after it is acknowledged.
			p.err = fmt.Errorf("%w: the log failed and must be reopened: %w", ErrWrite, l.broken)
		}
		if p.err == nil && !p.noSync {
			l.waiting = append(l.waiting, p)
			if p == self {
				next = wait
			}
			continue
		}
		if p != self {
			p.wake <- done
		}
	}
	if !l.syncing && l.broken == nil && l.written.Seq > l.head.Seq {
		l.syncing = true
		switch {
		case next == wait:
			next = leadSync
		case len(l.waiting) > 0:
			// With no fsync in flight, every caller waiting is one
			// of this batch.
			l.waiting[0].wake <- leadSync
		default:
			go l.syncLoop(nil)
		}
	}
	if len(l.queue) > 0 {
		l.queue[0].wake <- leadWrite
	} else {
		l.writing = false
		l.changed.Broadcast()
	}
	return next
}

// writeBatch encodes batch onto the chain and writes it, setting each
// caller's out or err. The chain advances only if the write succeeded;
// a caller whose records cannot all be encoded has none written.
func (l *Log) writeBatch(batch []*pending) {
	buf := l.buf[:0]
	seq, prev := l.nextSeq, l.lastHash
	var n uint64
	encoded := 0
	for _, p := range batch {
		var err error
		if buf, seq, prev, err = l.encodeOnto(buf, p, seq, prev); err != nil {
			p.err = err
			continue
		}
		encoded++
		n += uint64(len(p.recs))
	}
	if cap(buf) <= 4<<20 {
		l.buf = buf
	}
	if encoded == 0 {
		return
	}
	if err := l.write(buf); err != nil {
		for _, p := range batch {
			if p.err == nil {
				p.err = err
			}
		}
		return
	}
	l.nextSeq, l.lastHash = seq, prev
	l.records.Add(n)
}

// encodeOnto appends p's records to buf, chained after seq-1 (whose
// hash is prev), and returns the chain's new end. On error buf, seq and
// prev come back unchanged.
func (l *Log) encodeOnto(buf []byte, p *pending, seq uint64, prev string) ([]byte, uint64, string, error) {
	start, seq0, prev0 := len(buf), seq, prev
	for i := range p.recs {
		rec := p.recs[i]
		if rec.Kind == "" {
			return buf[:start], seq0, prev0, fmt.Errorf("%w: record has no Kind", ErrWrite)
		}
		rec.Seq, rec.Prev = seq, prev
		if rec.Time.IsZero() {
			rec.Time = l.clock()
		}
		rec.Time = rec.Time.UTC()
		var hash string
		var err error
		if buf, hash, err = appendEncoded(buf, rec); err != nil {
			return buf[:start], seq0, prev0, fmt.Errorf("%w: %w", ErrWrite, err)
		}
		rec.Hash = hash
		p.recs[i] = rec
		seq, prev = seq+1, hash
	}
	p.last = seq - 1
	return buf, seq, prev, nil
}

// syncLoop runs fsyncs as the holder of the syncer's role until every
// record written is durable, or hands the role to a waiting caller:
// self (the caller, nil for a goroutine of the log's own) is done after
// its first fsync, which covers its records.
func (l *Log) syncLoop(self *pending) {
	for {
		err := l.fsync(self)
		l.mu.Lock()
		if err != nil || l.written.Seq == l.head.Seq {
			l.syncing = false
			l.changed.Broadcast()
			l.mu.Unlock()
			return
		}
		// Records were written during the fsync: the next one.
		if self == nil {
			l.mu.Unlock()
			continue
		}
		if len(l.waiting) > 0 {
			l.waiting[0].wake <- leadSync
		} else {
			go l.syncLoop(nil)
		}
		l.mu.Unlock()
		return
	}
}

// fsync runs one fsync as the holder of the syncer's role and
// acknowledges what it covered: Head moves to the last record written
// before it started, and the callers waiting for that record or an
// earlier one are woken (self, the caller, is not: it is running). If
// it fails, the log is broken and every caller waiting gets the error.
func (l *Log) fsync(self *pending) error {
	// Let the goroutines ready to run go first: calls that are about
	// to write their records then ride with this fsync rather than
	// wait for the next one.
	runtime.Gosched()
	l.mu.Lock()
	target, w := l.written, l.w
	l.mu.Unlock()
	err := w.Sync()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%w: sync: %w", ErrWrite, err)
		if l.broken == nil {
			l.broken = err
		}
		// No record contents: only where the loss may be.
		l.logger.Error("audit log fsync failed: records written since the last fsync may be lost, including records written without waiting for it (call.end); refusing further records",
			"path", l.path, "first_seq", l.head.Seq+1, "last_seq", l.written.Seq, "error", err)
		for _, p := range l.waiting {
			p.err = err
			if p != self {
				p.wake <- done
			}
		}
		l.waiting = nil
		return err
	}
	if target.Seq > l.head.Seq {
		l.head = target
		l.commits.Add(1)
	}
	still := l.waiting[:0]
	for _, p := range l.waiting {
		switch {
		case p.last > target.Seq:
			still = append(still, p)
		case p != self:
			p.wake <- done
		}
	}
	clear(l.waiting[len(still):])
	l.waiting = still
	return nil
}

// withSyncRole runs f as the holder of the syncer's role, waiting for
// the fsync in flight first. The caller holds the writer's role, so no
// record is written meanwhile.
func (l *Log) withSyncRole(f func() error) error {
	l.mu.Lock()
	for l.syncing {
		l.changed.Wait()
	}
	l.syncing = true
	l.mu.Unlock()
	err := f()
	l.mu.Lock()
	l.syncing = false
	l.changed.Broadcast()
	l.mu.Unlock()
	return err
}

// breakLog makes the log refuse further records.
func (l *Log) breakLog(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken == nil {
		l.broken = err
	}
}

// write appends buf to the file, rotating first if buf would take the
// live file past the rotation size. On failure it takes back whatever
// part of buf reached the file, or marks the log broken if it cannot.
func (l *Log) write(buf []byte) error {
	if l.file != nil && l.max > 0 && l.size > 0 && l.size+int64(len(buf)) > l.max {
		// The old file's records are made durable before it is
		// renamed away and closed.
		err := l.withSyncRole(func() error {
			if err := l.fsync(nil); err != nil {
				return err
			}
			return l.rotate()
		})
		if err != nil {
			l.logger.Error("audit log rotation failed", "path", l.path, "error", err)
			return fmt.Errorf("%w: rotate %s: %w", ErrWrite, l.path, err)
		}
	}
	n, err := l.w.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	if err != nil {
		l.undo(n, err)
		return fmt.Errorf("%w: %w", ErrWrite, err)
	}
	l.size += int64(n)
	return nil
}

// undo removes the n bytes a failed write left, so that the next record
// follows the last good one and no torn line stays in the middle of the
// chain. If that is impossible the log is marked broken.
func (l *Log) undo(n int, cause error) {
	if n == 0 {
		return
	}
	if l.file == nil {
		l.breakLog(cause)
		l.logger.Error("audit write failed after a partial write; refusing further records", "error", cause)
		return
	}
	err := l.withSyncRole(func() error {
		if err := l.file.Truncate(l.size); err != nil {
			return err
		}
		return l.fsync(nil)
	})
	if err != nil {
		err = fmt.Errorf("%w (and truncating back failed: %w)", cause, err)
		l.breakLog(err)
		l.logger.Error("audit write failed and could not be undone; refusing further records", "path", l.path, "error", err)
		return
	}
	l.logger.Error("audit write failed; the log is back at its last good record", "path", l.path, "offset", l.size, "error", cause)
}

// rotate renames the live file to the next rotated name and starts a
// new, empty live file. The chain goes on across the files. The caller
// holds both roles, and the live file's records are durable.
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
			l.breakLog(fmt.Errorf("rotation failed and %s could not be renamed back: %w", next, rerr))
		}
		return err
	}
	old := l.file
	l.mu.Lock()
	l.file, l.w = f, f
	l.mu.Unlock()
	l.size = 0
	l.rotIndex++
	if err := old.Close(); err != nil {
		l.logger.Warn("closing rotated audit file failed", "path", next, "error", err)
	}
	if err := fsutil.SyncDir(l.dir); err != nil {
		// The rename may not survive a crash; Open copes with either
		// outcome, but say so.
		err = fmt.Errorf("sync directory after rotation: %w", err)
		l.breakLog(err)
		return err
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

// Close waits for Appends in progress (and the fsync of records written
// without waiting), then closes the log. Later Appends fail with
// ErrClosed. Close is idempotent; for a Log made by New it does not
// close the writer.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for l.writing || l.syncing {
		l.changed.Wait()
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
