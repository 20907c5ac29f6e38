package events

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gofunc/gofunc"
)

// Module serves a journal as the events.since long-poll: the minion
// registers it as its built-in "events" module (minion.Server.Events),
// and an embedder that runs its own server may register it too. A
// Python caller reads it with any XML-RPC client:
//
//	b = minion.events.since("", 0, 100, 25)   # from the oldest event, wait up to 25 s
//	for line in b["lines"]: ev = json.loads(line)
//	b = minion.events.since(ev["epoch"], ev["seq"], 100, 25)
type Module struct {
	// Journal is the journal served. Nil answers every call with
	// CodeUnavailable (a minion without events).
	Journal *Journal
}

// waitMargin is kept free between the end of a long-poll and the
// caller's deadline, so the answer (empty) arrives before the caller
// gives up on it.
const waitMargin = 2 * time.Second

// Since returns the events after the cursor (epoch, seq): at most limit
// (0: DefaultLimit), waiting up to wait seconds (at most MaxWait, and
// ending before the call's deadline) when there is none yet; with seq
// 0, from the oldest event kept, or from the first written at or after
// from when it is given. An empty answer after the wait is not an
// error: ask again with the same cursor.
func (m *Module) Since(ctx context.Context, epoch string, seq int64, limit int, wait float64, from time.Time) (Batch, error) {
	if m.Journal == nil {
		return Batch{}, gofunc.Errorf(gofunc.CodeUnavailable, "this minion keeps no event journal")
	}
	if seq < 0 || math.IsNaN(wait) || wait < 0 {
		return Batch{}, gofunc.Errorf(gofunc.CodeBadArgs, "events.since: seq %d and wait %v must not be negative", seq, wait)
	}
	req := Request{Epoch: epoch, Seq: uint64(seq), From: from, Limit: limit, Wait: waitDuration(ctx, wait)}
	b, err := m.Journal.Poll(ctx, req)
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, ErrBadRequest):
		return Batch{}, gofunc.Errorf(gofunc.CodeBadArgs, "%s", err)
	case errors.Is(err, ErrClosed):
		return Batch{}, gofunc.Errorf(gofunc.CodeUnavailable, "the event journal is closed (the minion is stopping)")
	case ctx.Err() != nil:
		return Batch{}, fmt.Errorf("events.since: %w", ctx.Err())
	}
	return Batch{}, err
}

// waitDuration turns wait seconds into the long-poll's wait: at most
// MaxWait, and ending waitMargin before ctx's deadline.
func waitDuration(ctx context.Context, seconds float64) time.Duration {
	d := MaxWait
	if seconds < MaxWait.Seconds() {
		d = time.Duration(seconds * float64(time.Second))
	}
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl)-waitMargin)
	}
	return max(d, 0)
}

// Doc documents the module for get_method_args and func doc.
func (m *Module) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "The minion's event journal: watcher state changes, lifecycle events and the journal's own " +
			"notices, hash-chained and read by cursor (func SPEC events).",
		Version: "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"Since": {
				Description: "Events after the cursor (epoch, seq), oldest first, as journal lines (JSON, each with its " +
					"hash and the previous one's); waits up to wait seconds for one when there is none yet. Answer: " +
					"{epoch, first, head, reset, more, lines}; more: ask again at once; reset: the cursor is not of this " +
					"journal, lines start from its oldest event.",
				Args: []gofunc.ArgDoc{
					{Name: "epoch", Description: "epoch of the cursor's event; empty with seq 0"},
					{Name: "seq", Description: "seq of the last event the caller has; 0: from the oldest kept (or from)"},
					{Name: "limit", Description: "most events in the answer (0: 100, at most 1000)", Optional: true},
					{Name: "wait", Description: "seconds to wait for an event when there is none (at most 30)", Optional: true},
					{Name: "from", Description: "with seq 0: start at the first event written at or after this time", Optional: true},
				},
			},
		},
	}
}
