// Package events is gofunc's reporting channel from minions: what a
// minion noticed (a Nagios check turning critical, a disk filling up, a
// watched file changing, a service failing, the minion itself starting
// or stopping), kept in a bounded, hash-chained journal on the minion
// and read by consumers with a cursor, so that nothing is lost or
// duplicated unnoticed.
//
// A minion writes, a consumer reads:
//
//	j, err := events.Open("/var/lib/gofunc/events", events.Config{})
//	if err != nil {
//		return err
//	}
//	defer j.Close()
//	j.Lifecycle(events.Lifecycle{Phase: events.PhaseStarted, Version: "1.2.0"})
//
//	// The consumer (an overlord, over events.since):
//	t := events.NewTracker(saved)             // cursors saved last time
//	batch, err := j.Poll(ctx, t.Request("web1.example.org", 100, 30*time.Second))
//	evs, notices := t.Accept("web1.example.org", batch)
//	save(t.Cursors())
//
// # The model
//
// An Event is {minion, epoch, seq, time, type, severity, source, data,
// prev_hash, hash}. Seq grows by one per event for the journal's whole
// life, across restarts; epoch is a random id chosen each time the
// journal is opened (a boot id); data is a typed value (see Data: the
// set of types is closed) of at most MaxDataBytes; prev_hash and hash
// chain the events the way the audit log chains its records (package
// internal/hashchain), so that an edited, removed or inserted event is
// seen.
//
// # Who sent it
//
// An event's minion is not in the journal's lines at all. The receiver
// stamps it from the certificate of the connection the lines came over
// (Receive, Tracker.Accept take it as their first argument), and a line
// that names a minion is refused as malformed. A minion can therefore
// only ever speak for itself, unlike Salt's events (any minion fires any
// tag) or Choria's (the identity is in the body).
//
// # Bounds and loss
//
// The journal keeps at most Config.MaxEvents events and
// Config.MaxBytes bytes, in eight or so segment files. When a new event
// would pass a bound the oldest segment is deleted and an
// "events.dropped" event {count, from, to} written first, so loss is an
// event too. A consumer whose cursor fell behind the oldest kept event
// sees a *Gap notice naming the seqs it missed.
//
// # Reading
//
// Since answers a Request (the consumer's cursor, a limit) at once; Poll
// also waits up to Request.Wait for a new event (the long-poll behind
// events.since), without starting a goroutine. A Batch carries the
// journal lines verbatim, so that the receiver checks every hash itself.
// Tracker keeps one Cursor per minion and turns every discontinuity into
// a typed Notice: *Gap, *Fork (the chain was rewritten), *NewEpoch (the
// minion restarted), *NewChain (the journal was replaced), *BadLine.
// Replayed events (seq at or before the cursor) are left out, so a batch
// received twice is delivered once.
//
// # Files
//
// The journal directory (0700) holds journal.lock and segment files
// NNNNNNNNNNNNNNNNNNNN.jsonl (0600, named by their first seq). Each line
// is checked like an audit record: delete the 64 hex digits of its hash
// and sha256sum what is left (without the newline). Open cuts off a torn
// last line (a crash mid-write) with an "events.recovered" event; any
// other damage moves the files to damaged-<time>/ and starts a new chain
// with an "events.reset" event, so the minion keeps running and the
// break is reported.
//
// # Sources
//
// Lifecycle events come from the minion (Journal.Lifecycle). Watchers
// (package events/watch) run Nagios plugins, check thresholds, files and
// services, and pause while calls run (Activity).
package events
