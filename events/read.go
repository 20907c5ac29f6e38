package events

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Limits of a read.
const (
	DefaultLimit  = 100
	MaxLimit      = 1000
	MaxBatchBytes = 4 << 20 // lines in one Batch, at least one line whatever its size
	// MaxWait bounds how long Poll waits for a new event.
	MaxWait = 30 * time.Second
)

// Request asks a journal for the events after a consumer's cursor: the
// parameters of the events.since long-poll.
type Request struct {
	// Epoch and Seq are the cursor: the epoch and seq of the last event
	// the consumer has. Seq 0 asks from the oldest event kept (or From);
	// a Seq needs its Epoch, so that a cursor from a journal that was
	// since replaced is noticed (Batch.Reset).
	Epoch string `xmlrpc:"epoch" json:"epoch,omitempty"`
	Seq   uint64 `xmlrpc:"seq" json:"seq,omitempty"`
	// From, with Seq 0, starts at the first event written at or after
	// it (func events --since 1h). Zero: from the oldest.
	From time.Time `xmlrpc:"from" json:"from,omitzero"`
	// Limit bounds the events returned; zero means DefaultLimit (100),
	// at most MaxLimit (1000).
	Limit int `xmlrpc:"limit" json:"limit,omitempty"`
	// Wait is how long Poll waits for an event when there is none yet;
	// zero returns at once, at most MaxWait (30s).
	Wait time.Duration `xmlrpc:"wait" json:"wait,omitempty"`
}

// Batch is a journal's answer to a Request.
type Batch struct {
	// Epoch is the journal's current epoch; First and Head its oldest
	// and newest seqs (0 when empty).
	Epoch string `xmlrpc:"epoch" json:"epoch"`
	First uint64 `xmlrpc:"first" json:"first"`
	Head  uint64 `xmlrpc:"head" json:"head"`
	// Reset says the cursor does not belong to this journal's chain (it
	// is past the head, or its seq holds an event of another epoch: the
	// journal was wiped or replaced), so Lines start from the oldest
	// event kept.
	Reset bool `xmlrpc:"reset" json:"reset,omitempty"`
	// More says there are events after Lines: ask again at once.
	More bool `xmlrpc:"more" json:"more,omitempty"`
	// Lines are the events' journal lines, oldest first, exactly as the
	// journal holds them, so the receiver can check every hash (see
	// Receive). Never nil.
	Lines []string `xmlrpc:"lines" json:"lines"`
}

// Since returns the events after the request's cursor without waiting
// (req.Wait is ignored). Events older than the oldest kept are gone: the
// first line's seq then jumps past the cursor, which the consumer's
// Cursor reports as a Gap.
func (j *Journal) Since(req Request) (Batch, error) {
	limit, err := req.limit()
	if err != nil {
		return Batch{}, err
	}
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return Batch{}, ErrClosed
	}
	b := Batch{Epoch: j.epoch, First: j.first, Head: j.head, Lines: []string{}}
	start := j.first
	switch {
	case req.Seq == 0 && !req.From.IsZero():
		start = j.head + 1
		from := req.From.UnixNano()
		for i, e := range j.index {
			if e.time >= from {
				start = j.first + uint64(i)
				break
			}
		}
	case req.Seq == 0:
	case req.Seq > j.head:
		b.Reset = true
	case req.Seq >= j.first && j.index[req.Seq-j.first].epoch != req.Epoch:
		b.Reset = true
	case req.Seq >= j.first:
		start = req.Seq + 1
	}
	if len(j.index) == 0 || start > j.head {
		return b, nil
	}
	size := 0
	for i := start - j.first; i < uint64(len(j.index)); i++ {
		e := j.index[i]
		if len(b.Lines) == limit || (len(b.Lines) > 0 && size+int(e.n) > MaxBatchBytes) {
			b.More = true
			break
		}
		line, err := readLine(e)
		if err != nil {
			return Batch{}, err
		}
		b.Lines = append(b.Lines, string(line))
		size += int(e.n)
	}
	return b, nil
}

func (r Request) limit() (int, error) {
	switch {
	case r.Limit < 0:
		return 0, fmt.Errorf("%w: limit %d", ErrBadRequest, r.Limit)
	case r.Seq > 0 && !epochPattern.MatchString(r.Epoch):
		return 0, fmt.Errorf("%w: seq %d needs the epoch it was read in (32 hex digits), got %q", ErrBadRequest, r.Seq, r.Epoch)
	case r.Limit == 0:
		return DefaultLimit, nil
	}
	return min(r.Limit, MaxLimit), nil
}

// Wait blocks until the journal holds an event after seq, ctx is done
// (its error is returned) or the journal is closed (ErrClosed). It
// starts no goroutine.
func (j *Journal) Wait(ctx context.Context, seq uint64) error {
	for {
		j.mu.RLock()
		head, changed, closed := j.head, j.changed, j.closed
		j.mu.RUnlock()
		switch {
		case closed:
			return ErrClosed
		case head > seq:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Poll is Since that, when there is nothing new, waits up to req.Wait
// (at most MaxWait) for an event: the long-poll behind events.since.
// An empty Batch after the wait is not an error; ctx ending early is.
func (j *Journal) Poll(ctx context.Context, req Request) (Batch, error) {
	b, err := j.Since(req)
	if err != nil || len(b.Lines) > 0 || b.Reset || req.Wait <= 0 {
		return b, err
	}
	wctx, cancel := context.WithTimeout(ctx, min(req.Wait, MaxWait))
	defer cancel()
	if err := j.Wait(wctx, b.Head); err != nil {
		if ctx.Err() != nil {
			return Batch{}, ctx.Err()
		}
		if errors.Is(err, ErrClosed) {
			return Batch{}, err
		}
		return b, nil // the wait ran out: an empty answer
	}
	return j.Since(req)
}
