package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// durableLog is the durable floor's log (-single): the least a
// write-ahead log can do for a call. Each call appends one line and
// returns once an fsync that started after the line was written has
// succeeded; concurrent calls share fsyncs (textbook group commit: the
// first caller to find no fsync running writes everything queued and
// fsyncs it, the others wait for it). No hash chain, no encoding, no
// rotation, no recovery: what the audit log does on top of that is
// gofunc's cost, not the disk's.
type durableLog struct {
	f *os.File

	mu       sync.Mutex
	synced   sync.Cond // broadcast after each fsync
	queue    []byte    // lines not yet written
	spare    []byte
	queued   uint64 // lines appended so far
	durable  uint64 // lines known to be on disk
	syncing  bool
	err      error // the first failed write or fsync: the log refuses all after it
	records  uint64
	commits  uint64
	lineBody []byte
}

func openDurableLog(path string) (*durableLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	d := &durableLog{f: f}
	d.synced.L = &d.mu
	// About the size of a call.start audit record, so that both write
	// the same bytes.
	d.lineBody = fmt.Appendf(nil, " test.ping caller=admin args=- %0*d\n", 200, 0)
	return d, nil
}

// append writes one line and waits until it is durable.
func (d *durableLog) append() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	d.queued++
	mine := d.queued
	d.queue = strconv.AppendInt(d.queue, time.Now().UnixNano(), 10)
	d.queue = append(d.queue, d.lineBody...)
	for d.durable < mine && d.err == nil {
		if d.syncing {
			d.synced.Wait()
			continue
		}
		d.commit()
	}
	if d.err != nil {
		return d.err
	}
	d.records++
	return nil
}

// commit writes the queued lines and fsyncs them, with d.mu held on
// entry and exit (released meanwhile, so that lines keep queueing).
func (d *durableLog) commit() {
	d.syncing = true
	buf, upTo := d.queue, d.queued
	d.queue = d.spare[:0]
	d.mu.Unlock()
	_, err := d.f.Write(buf)
	if err == nil {
		err = d.f.Sync()
	}
	d.mu.Lock()
	d.spare = buf
	d.syncing = false
	if err != nil {
		d.err = fmt.Errorf("durable floor: %w", err)
	} else {
		d.durable = upTo
		d.commits++
	}
	d.synced.Broadcast()
}

// counts returns the lines made durable and the fsyncs that did it.
func (d *durableLog) counts() (records, commits uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.records, d.commits
}

func (d *durableLog) Close() error {
	d.mu.Lock()
	for d.syncing {
		d.synced.Wait()
	}
	d.err = errors.Join(d.err, errors.New("durable floor: closed"))
	d.mu.Unlock()
	return d.f.Close()
}
