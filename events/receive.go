package events

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc/internal/hashchain"
)

// minionPattern is what a minion's certificate name looks like (an RFC
// 1123 host name, as the CA issues them); it never holds '=' or ','.
var minionPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)

// ErrNoMinion is returned by Receive without the sender's name.
var ErrNoMinion = errors.New("events: no verified minion name")

// Receive decodes the lines a minion sent and stamps each event with
// minion, which must be the name in the sender's verified certificate:
// the minion an overlord dialled and whose certificate it checked names
// that host, or the client certificate of a minion pushing its events.
// Nothing in the lines can change it: a line naming a minion is
// malformed (ErrMalformed) and refused.
//
// Every line's hash is checked (ErrTampered); the chain between lines is
// the Cursor's job. Receive returns the events of the lines before the
// first bad one, and the error; Tracker.Accept goes on past bad lines
// and reports them.
func Receive(minion string, lines []string) ([]Event, error) {
	if !minionPattern.MatchString(minion) || len(minion) > 253 {
		return nil, fmt.Errorf("%w: %q", ErrNoMinion, minion)
	}
	evs := make([]Event, 0, len(lines))
	for i, l := range lines {
		e, err := ParseLine([]byte(l))
		if err != nil {
			return evs, fmt.Errorf("from %s, line %d: %w", minion, i+1, err)
		}
		e.Minion = minion
		evs = append(evs, e)
	}
	return evs, nil
}

// Cursor is a consumer's position in one minion's chain: the epoch, seq
// and hash of the last event it accepted. The zero Cursor is the start:
// it accepts the first event it is given, whatever its seq.
type Cursor struct {
	Epoch string `json:"epoch,omitempty"`
	Seq   uint64 `json:"seq,omitempty"`
	Hash  string `json:"hash,omitempty"`
}

// Request returns the request for the events after c.
func (c Cursor) Request(limit int, wait time.Duration) Request {
	return Request{Epoch: c.Epoch, Seq: c.Seq, Limit: limit, Wait: wait}
}

// String is the cursor's text form, "SEQ.EPOCH.HASH"; "0" for the
// zero Cursor. ParseCursor reads it back.
func (c Cursor) String() string {
	if c == (Cursor{}) {
		return "0"
	}
	return fmt.Sprintf("%d.%s.%s", c.Seq, c.Epoch, c.Hash)
}

// ErrBadCursor wraps ParseCursor's and ParseCursors' errors.
var ErrBadCursor = errors.New("events: bad cursor")

// ParseCursor reads a cursor's text form.
func ParseCursor(s string) (Cursor, error) {
	if s == "0" {
		return Cursor{}, nil
	}
	seq, rest, ok1 := strings.Cut(s, ".")
	epoch, hash, ok2 := strings.Cut(rest, ".")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok1 || !ok2 || err != nil || n == 0 || seq[0] == '0' || seq[0] == '+' || !epochPattern.MatchString(epoch) || !hashchain.IsHash(hash) {
		return Cursor{}, fmt.Errorf("%w: %q is not SEQ.EPOCH.HASH", ErrBadCursor, s)
	}
	return Cursor{Epoch: epoch, Seq: n, Hash: hash}, nil
}

// Notice reports a discontinuity in a minion's chain: a *Gap, *Fork,
// *NewEpoch, *NewChain or *BadLine. A consumer shows or records them;
// none is ever dropped silently.
type Notice interface {
	// From is the minion whose chain it concerns.
	From() string
	String() string
}

// Gap: events After+1 to Before-1 are missing: dropped by the journal
// to stay in its bounds (an events.dropped event names them), or lost
// with a damaged line.
type Gap struct {
	Minion        string
	After, Before uint64
}

// Fork: the event at Seq does not continue the chain the cursor knows
// (its prev_hash, or its own hash at the cursor's seq, differs): the
// journal was rewritten.
type Fork struct {
	Minion string
	Seq    uint64
	Want   string // the hash the cursor holds
	Got    string
}

// NewEpoch: the minion's journal was reopened (the minion restarted)
// between two events; the chain goes on. For information.
type NewEpoch struct {
	Minion string
	Seq    uint64 // the first event of the new epoch
	Old    string
	New    string
}

// NewChain: the minion's journal is not the chain the cursor followed
// (wiped, replaced, or reset after damage: see its events.reset event);
// the cursor starts over from its oldest event.
type NewChain struct {
	Minion string
	Epoch  string // the journal's current epoch
	Old    Cursor
}

// BadLine: a line failed its checks (ErrMalformed or ErrTampered) and
// was skipped; the next good event shows as a Gap or Fork after it.
type BadLine struct {
	Minion string
	After  uint64 // the seq of the last good event before it
	Err    error
}

// From implements Notice.
func (n *Gap) From() string { return n.Minion }

// From implements Notice.
func (n *Fork) From() string { return n.Minion }

// From implements Notice.
func (n *NewEpoch) From() string { return n.Minion }

// From implements Notice.
func (n *NewChain) From() string { return n.Minion }

// From implements Notice.
func (n *BadLine) From() string { return n.Minion }

func (n *Gap) String() string {
	return fmt.Sprintf("%s: gap: events %d to %d are missing", n.Minion, n.After+1, n.Before-1)
}

func (n *Fork) String() string {
	return fmt.Sprintf("%s: chain broken at seq %d: it does not continue the events already received", n.Minion, n.Seq)
}

func (n *NewEpoch) String() string {
	return fmt.Sprintf("%s: new epoch %s from seq %d (the minion restarted)", n.Minion, short(n.New), n.Seq)
}

func (n *NewChain) String() string {
	return fmt.Sprintf("%s: new chain (epoch %s): the journal was replaced; reading it from its start", n.Minion, short(n.Epoch))
}

func (n *BadLine) String() string {
	return fmt.Sprintf("%s: bad event after seq %d skipped: %v", n.Minion, n.After, n.Err)
}

func short(s string) string { return s[:min(len(s), 12)] }

// Next checks that e continues the chain at c and returns the cursor
// after it, whether to deliver e, and what to report. An event at or
// before the cursor's seq is a replay: not delivered, and a Fork when it
// is the cursor's own seq with another hash. A jump in seq is a Gap; a
// prev_hash that does not match, a Fork; another epoch, a NewEpoch.
// Events are delivered whatever is reported: a consumer sees what the
// journal holds, with its discontinuities named.
func (c Cursor) Next(e Event) (next Cursor, deliver bool, notices []Notice) {
	at := Cursor{Epoch: e.Epoch, Seq: e.Seq, Hash: e.Hash}
	switch {
	case c.Seq == 0:
		return at, true, nil
	case e.Seq < c.Seq:
		return c, false, nil
	case e.Seq == c.Seq:
		if e.Hash != c.Hash {
			return c, false, []Notice{&Fork{Minion: e.Minion, Seq: e.Seq, Want: c.Hash, Got: e.Hash}}
		}
		return c, false, nil
	case e.Seq > c.Seq+1:
		notices = append(notices, &Gap{Minion: e.Minion, After: c.Seq, Before: e.Seq})
	case e.PrevHash != c.Hash:
		notices = append(notices, &Fork{Minion: e.Minion, Seq: e.Seq, Want: c.Hash, Got: e.PrevHash})
	}
	if e.Epoch != c.Epoch {
		notices = append(notices, &NewEpoch{Minion: e.Minion, Seq: e.Seq, Old: c.Epoch, New: e.Epoch})
	}
	return at, true, notices
}

// Cursors are a consumer's cursors, by minion name.
type Cursors map[string]Cursor

// String is the text form ParseCursors reads: "name=cursor" pairs,
// sorted by name, separated by commas. The empty set is "".
func (cs Cursors) String() string {
	var b strings.Builder
	for i, name := range slices.Sorted(maps.Keys(cs)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(name + "=" + cs[name].String())
	}
	return b.String()
}

// MarshalText implements encoding.TextMarshaler.
func (cs Cursors) MarshalText() ([]byte, error) { return []byte(cs.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (cs *Cursors) UnmarshalText(b []byte) error {
	parsed, err := ParseCursors(string(b))
	if err != nil {
		return err
	}
	*cs = parsed
	return nil
}

// ParseCursors reads Cursors.String's form. At most maxCursors pairs.
func ParseCursors(s string) (Cursors, error) {
	cs := Cursors{}
	if s == "" {
		return cs, nil
	}
	pairs := strings.Split(s, ",")
	if len(pairs) > maxCursors {
		return nil, fmt.Errorf("%w: %d cursors, at most %d", ErrBadCursor, len(pairs), maxCursors)
	}
	for _, p := range pairs {
		name, text, ok := strings.Cut(p, "=")
		if !ok || !minionPattern.MatchString(name) || len(name) > 253 {
			return nil, fmt.Errorf("%w: %q is not MINION=CURSOR", ErrBadCursor, p)
		}
		if _, dup := cs[name]; dup {
			return nil, fmt.Errorf("%w: %s twice", ErrBadCursor, name)
		}
		c, err := ParseCursor(text)
		if err != nil {
			return nil, err
		}
		cs[name] = c
	}
	return cs, nil
}

// maxCursors bounds ParseCursors: a large fleet's cursors belong in a
// file, one ParseCursors per minion or all at once.
const maxCursors = 100_000

// Tracker keeps a consumer's cursor per minion and checks every batch
// it receives against it: the consumer side of events.since. It is safe
// for concurrent use (one batch per minion at a time is the caller's
// duty: batches of one minion must be accepted in order).
type Tracker struct {
	mu      sync.Mutex
	cursors Cursors
}

// NewTracker starts from saved cursors (nil: from the start of every
// minion's journal).
func NewTracker(start Cursors) *Tracker {
	t := &Tracker{cursors: Cursors{}}
	maps.Copy(t.cursors, start)
	return t
}

// Request returns the request for minion's next events.
func (t *Tracker) Request(minion string, limit int, wait time.Duration) Request {
	return t.Cursor(minion).Request(limit, wait)
}

// RequestFrom is Request for a consumer that starts at a time (func
// events --since 1h): a minion with no cursor yet is asked for its
// events written at or after from; one with a cursor resumes from it.
func (t *Tracker) RequestFrom(minion string, from time.Time, limit int, wait time.Duration) Request {
	r := t.Request(minion, limit, wait)
	if r.Seq == 0 {
		r.From = from
	}
	return r
}

// Cursor returns minion's cursor.
func (t *Tracker) Cursor(minion string) Cursor {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cursors[minion]
}

// Cursors returns a copy of every cursor: save it to resume later with
// neither gaps nor duplicates.
func (t *Tracker) Cursors() Cursors {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.cursors)
}

// Accept checks a batch received from minion (the name in its verified
// certificate, see Receive) and returns the events to deliver, oldest
// first, with the notices about its chain, and moves minion's cursor
// past them. Replayed events are left out; bad lines are skipped and
// reported as *BadLine. A journal that is not the chain the cursor
// followed says so (Batch.Reset): the cursor starts over, with a
// *NewChain notice.
func (t *Tracker) Accept(minion string, b Batch) ([]Event, []Notice) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.cursors[minion]
	var notices []Notice
	if b.Reset && c != (Cursor{}) {
		notices = append(notices, &NewChain{Minion: minion, Epoch: b.Epoch, Old: c})
		c = Cursor{}
	}
	var out []Event
	for _, l := range b.Lines {
		evs, err := Receive(minion, []string{l})
		if err != nil {
			if errors.Is(err, ErrNoMinion) {
				return nil, []Notice{&BadLine{Minion: minion, Err: err}}
			}
			notices = append(notices, &BadLine{Minion: minion, After: c.Seq, Err: err})
			continue
		}
		next, deliver, ns := c.Next(evs[0])
		notices = append(notices, ns...)
		c = next
		if deliver {
			out = append(out, evs[0])
		}
	}
	t.cursors[minion] = c
	return out, notices
}
