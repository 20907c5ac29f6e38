package audit

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc/internal/hashchain"
)

// A hash chain shows that records were edited, deleted, inserted or
// reordered, but whoever can write the file can also rebuild the chain
// after such a change, or cut records off its end, and the result
// verifies. What pins a log down is a checkpoint kept where its writer
// cannot reach: every answer a minion sends carries the checkpoint of
// its log just after the call's records (the Gofunc-Audit-Head header),
// and the overlord keeps those in its own log (KindOverlordHeads
// records). VerifyWitnessed then checks a minion's log against them: a
// record changed, dropped or cut off at or before a witnessed seq
// changes that record's hash or removes it, and is found.

// String formats the checkpoint as "seq:hash", its form on the wire (the
// Gofunc-Audit-Head header) and in KindOverlordHeads records.
func (c Checkpoint) String() string {
	return strconv.FormatUint(c.Seq, 10) + ":" + c.Hash
}

// ParseCheckpoint parses "seq:hash" (Checkpoint.String): a decimal seq
// of at least 1, without sign or leading zeros, and a lower-case hex
// SHA-256.
func ParseCheckpoint(s string) (Checkpoint, error) {
	seqText, hash, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseUint(seqText, 10, 64)
	if !ok || err != nil || seq == 0 || seqText[0] < '1' || seqText[0] > '9' {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint %q: want seq:hash, seq a decimal of at least 1 without leading zeros", clipText(s))
	}
	if !hashchain.IsHash(hash) {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint %q: hash is not 64 lower-case hex digits", clipText(s))
	}
	return Checkpoint{Seq: seq, Hash: hash}, nil
}

func clipText(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// Witness is a checkpoint of a minion's log held by someone else: the
// head the minion sent with an answer, kept in an overlord's log.
type Witness struct {
	Checkpoint
	Host   string    // the minion, as the overlord addressed it
	CallID string    // the overlord call the answer belonged to
	Time   time.Time // when the overlord recorded it
}

// Witnesses returns the checkpoints of host's log that the overlord
// logs in paths (as Files returns them) hold, in the order recorded.
// The overlord logs' own chain is checked as they are read (as Query
// does); an entry that does not parse is an error naming its call.
func Witnesses(host string, paths ...string) ([]Witness, error) {
	var out []Witness
	err := Query(paths, Filter{Kind: KindOverlordHeads}, func(r Record) error {
		text, ok := r.Details[host]
		if !ok {
			return nil
		}
		cp, err := ParseCheckpoint(text)
		if err != nil {
			return fmt.Errorf("audit: overlord record %d (call %s): %w", r.Seq, r.CallID, err)
		}
		out = append(out, Witness{Checkpoint: cp, Host: host, CallID: r.CallID, Time: r.Time})
		return nil
	})
	return out, err
}

// WitnessSummary says what VerifyWitnessed could check.
type WitnessSummary struct {
	Summary
	// Checked counts the witnesses found in the chain with their hash.
	Checked int
	// BeforeStart counts witnesses older than the first record given
	// (files archived or pruned): they could not be checked.
	BeforeStart int
}

// ErrWitness means a minion's log disagrees with a checkpoint its
// overlords hold: records at or before the witnessed seq were changed,
// deleted or cut off, and the chain rebuilt. It comes wrapped in a
// *VerifyError that also wraps ErrTampered.
var ErrWitness = errors.New("audit: log disagrees with a witnessed checkpoint")

// VerifyWitnessed verifies the chain across paths as Verify does, and
// checks it against witnesses: each must name a record of the chain with
// that very hash. A witness beyond the last record means records were
// cut off the end; one whose record has another hash means the chain
// was rewritten up to there. The first disagreement is a *VerifyError
// wrapping ErrWitness and ErrTampered.
//
// What this proves: every record up to the newest witness is the one
// the minion had when it answered; records after it are covered by the
// chain alone until the next witnessed answer. It cannot show anything
// about a minion that lied from the start (a compromised minion sends
// whatever head it likes), nor protect the overlord's own log, which is
// as writable by its user as the minion's is by root.
func VerifyWitnessed(witnesses []Checkpoint, paths ...string) (WitnessSummary, error) {
	want := make(map[uint64]string, len(witnesses))
	for _, w := range witnesses {
		if prev, ok := want[w.Seq]; ok && prev != w.Hash {
			return WitnessSummary{}, &VerifyError{Seq: w.Seq, Reason: "two witnesses disagree about this record: the minion's log was rewritten between them", Err: errors.Join(ErrWitness, ErrTampered)}
		}
		want[w.Seq] = w.Hash
	}
	var ws WitnessSummary
	if len(paths) == 0 {
		return ws, errors.New("audit: verify: no files given")
	}
	from := startOf(paths[0])
	c := &chain{anchored: true, next: from.Seq + 1, prev: from.Hash}
	c.sum.LastSeq, c.sum.LastHash = from.Seq, from.Hash
	var mismatch *VerifyError
	check := func(r Record) error {
		if h, ok := want[r.Seq]; ok {
			if h != r.Hash && mismatch == nil {
				mismatch = &VerifyError{Seq: r.Seq, Reason: fmt.Sprintf("record %d has hash %s, an overlord was told %s: records up to here were changed, deleted or inserted and the chain rebuilt", r.Seq, short(r.Hash), short(h)), Err: errors.Join(ErrWitness, ErrTampered)}
			}
			ws.Checked++
		}
		return nil
	}
	var err error
	for i, p := range paths {
		if err = scanFile(p, i == len(paths)-1, c, check); err != nil {
			break
		}
	}
	ws.Summary = c.sum
	if err != nil && !errors.Is(err, ErrTorn) {
		return ws, err
	}
	if mismatch != nil {
		return ws, mismatch
	}
	seqs := make([]uint64, 0, len(want))
	for seq := range want {
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for _, seq := range seqs {
		switch {
		case seq <= from.Seq || (ws.Records > 0 && seq < ws.FirstSeq):
			ws.BeforeStart++
		case seq > ws.LastSeq:
			return ws, &VerifyError{Seq: seq, Reason: fmt.Sprintf("an overlord was told of record %d but the log ends at %d: records were cut off the end", seq, ws.LastSeq), Err: errors.Join(ErrWitness, ErrTampered)}
		}
	}
	return ws, err // nil, or ErrTorn: every complete record was checked
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "..."
	}
	return h
}
