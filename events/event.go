package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/gofunc/gofunc/internal/hashchain"
)

// Limits of the event format.
const (
	// MaxDataBytes bounds an event's data: its JSON encoding.
	MaxDataBytes = 16 << 10
	// MaxLineBytes bounds one journal line: the data plus the envelope.
	MaxLineBytes = MaxDataBytes + 4<<10
)

// Severity says how bad an event is.
type Severity string

// Severities, mildest first.
const (
	SeverityInfo     Severity = "info"     // a normal change: started, recovered, back to OK
	SeverityWarning  Severity = "warning"  // needs attention: a warning threshold, events dropped, a watcher failing
	SeverityCritical Severity = "critical" // needs action now
)

// Valid reports whether s is one of the severities.
func (s Severity) Valid() bool {
	return s == SeverityInfo || s == SeverityWarning || s == SeverityCritical
}

// Event is one entry of a minion's event journal, as a consumer sees it.
//
// In the journal's line the members are those of this struct minus
// Minion, in this order, with "hash" last: the line format audit uses
// (see package hashchain). Hash is the SHA-256 of the line with Hash
// empty; PrevHash is the previous event's Hash ("" for the first event
// of a chain), so that an edited, removed or inserted event is seen.
type Event struct {
	// Minion is who sent the event: set by the receiver from the
	// sender's verified certificate (see Receive), never read from the
	// event itself. Empty for events read from a local journal.
	Minion string `json:"minion,omitempty"`
	// Epoch identifies the run of the journal's writer that wrote the
	// event: 32 hex digits chosen at random each time a journal is
	// opened (a boot id). Seq goes on across epochs.
	Epoch string `json:"epoch"`
	// Seq is 1 for a chain's first event and grows by one per event,
	// across restarts.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"` // when the event was written, UTC
	// Type names the kind of event and the type of Data: "nagios.state",
	// "lifecycle.started", ... (see the Type constants).
	Type     string   `json:"type"`
	Severity Severity `json:"severity"`
	// Source is the watcher that emitted the event (its name, which the
	// Nagios bridge uses as the service), "minion" for lifecycle events,
	// "journal" for the journal's own.
	Source string `json:"source"`
	// Data is the event's typed payload, a JSON object of at most
	// MaxDataBytes; Decode returns it as the Go type of Type.
	Data     json.RawMessage `json:"data"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
}

// line is an Event as its journal line holds it: no minion.
type line struct {
	Epoch    string          `json:"epoch"`
	Seq      uint64          `json:"seq"`
	Time     time.Time       `json:"time"`
	Type     string          `json:"type"`
	Severity Severity        `json:"severity"`
	Source   string          `json:"source"`
	Data     json.RawMessage `json:"data"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"` // must stay last: see hashchain.Seal
}

// Errors of the event format. Every error ParseLine and Receive return
// wraps ErrMalformed or ErrTampered.
var (
	// ErrMalformed: the bytes are not an event line (bad JSON, a
	// missing or unknown member, a bad value, over a limit). A member
	// naming a minion is unknown, so a line claiming to come from
	// another minion is refused.
	ErrMalformed = errors.New("events: malformed event")
	// ErrTampered: the line is well formed but its hash does not match
	// its content.
	ErrTampered = errors.New("events: event hash mismatch")
	// ErrTooLarge: an event's data is over MaxDataBytes.
	ErrTooLarge = errors.New("events: event data too large")
)

var (
	typePattern   = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_]{0,31}){1,3}$`)
	sourcePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 _.:@/()+-]{0,127}$`)
	epochPattern  = regexp.MustCompile(`^[0-9a-f]{32}$`)
)

// ValidSource reports whether name can be an event's Source (and so a
// watcher's name): 1 to 128 letters, digits, spaces and _.:@/()+-,
// starting with a letter or digit. It never holds ';' or a line break,
// so it is safe in a Nagios external command.
func ValidSource(name string) bool { return sourcePattern.MatchString(name) }

// encodeLine seals e (Minion ignored) into its journal line.
func encodeLine(e Event) ([]byte, string, error) {
	body, err := json.Marshal(line{
		Epoch: e.Epoch, Seq: e.Seq, Time: e.Time.UTC(), Type: e.Type, Severity: e.Severity,
		Source: e.Source, Data: e.Data, PrevHash: e.PrevHash,
	})
	if err != nil {
		return nil, "", fmt.Errorf("events: encode: %w", err)
	}
	return hashchain.Seal(body)
}

// ParseLine decodes one journal line (with or without its newline) and
// checks it: every member present and valid, no other member, a hash
// matching the content, and the bytes exactly those the journal writes
// for it (so no two JSON readers can see different events in one line). It does not check the chain: see Cursor.
// The event's Minion is left empty; a consumer uses Receive, which sets
// it from the sender's certificate.
func ParseLine(b []byte) (Event, error) {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) > MaxLineBytes {
		return Event{}, fmt.Errorf("%w: line of %d bytes, limit %d", ErrMalformed, len(b), MaxLineBytes)
	}
	var l line
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.InputOffset() != int64(len(b)) {
		return Event{}, fmt.Errorf("%w: data after the event", ErrMalformed)
	}
	e := Event{Epoch: l.Epoch, Seq: l.Seq, Time: l.Time, Type: l.Type, Severity: l.Severity,
		Source: l.Source, Data: l.Data, PrevHash: l.PrevHash, Hash: l.Hash}
	if err := e.checkEnvelope(); err != nil {
		return Event{}, err
	}
	hash, err := hashchain.Check(b)
	switch {
	case errors.Is(err, hashchain.ErrMismatch):
		return Event{}, fmt.Errorf("%w: seq %d: %v", ErrTampered, l.Seq, err)
	case err != nil:
		return Event{}, fmt.Errorf("%w: seq %d: %v", ErrMalformed, l.Seq, err)
	case hash != l.Hash:
		return Event{}, fmt.Errorf("%w: seq %d: two hash members", ErrMalformed, l.Seq)
	}
	// Only the exact bytes the journal writes are an event: no duplicate
	// members, reordering, spacing or alternative escapes that two JSON
	// readers could take differently.
	if again, _, err := encodeLine(e); err != nil || !bytes.Equal(again[:len(again)-1], b) {
		return Event{}, fmt.Errorf("%w: seq %d: not in the form the journal writes", ErrMalformed, l.Seq)
	}
	return e, nil
}

// checkEnvelope validates every member but the hash.
func (e *Event) checkEnvelope() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: seq %d: %s", ErrMalformed, e.Seq, fmt.Sprintf(format, args...))
	}
	switch {
	case !epochPattern.MatchString(e.Epoch):
		return bad("epoch %q is not 32 hex digits", e.Epoch)
	case e.Seq == 0:
		return bad("seq 0: seqs start at 1")
	case e.Time.IsZero():
		return bad("no time")
	case !typePattern.MatchString(e.Type):
		return bad("type %q is not a dotted lower-case name", e.Type)
	case !e.Severity.Valid():
		return bad("severity %q is not info, warning or critical", e.Severity)
	case !ValidSource(e.Source):
		return bad("source %q is not a valid name", e.Source)
	case len(e.Data) > MaxDataBytes:
		return bad("data of %d bytes, limit %d", len(e.Data), MaxDataBytes)
	case len(e.Data) == 0 || e.Data[0] != '{':
		return bad("data is not a JSON object")
	case e.PrevHash != "" && !hashchain.IsHash(e.PrevHash):
		return bad("prev_hash is not a hash")
	case e.Seq == 1 && e.PrevHash != "":
		return bad("the first event of a chain has a prev_hash")
	case e.Seq > 1 && e.PrevHash == "":
		return bad("no prev_hash after seq 1")
	}
	return nil
}

// Line returns the event's journal line, without its newline: the
// bytes its Hash covers, as the minion wrote them.
func (e Event) Line() ([]byte, error) {
	b, hash, err := encodeLine(e)
	if err != nil {
		return nil, err
	}
	if hash != e.Hash {
		return nil, fmt.Errorf("%w: seq %d: re-encoding does not give the event's hash", ErrTampered, e.Seq)
	}
	return b[:len(b)-1], nil
}

// Decode returns the event's data as the Go type its Type names (a
// *NagiosState for "nagios.state", ...). An unknown type gives an error
// wrapping ErrUnknownType, data that does not fit the type one wrapping
// ErrMalformed; unknown members are allowed, so that a consumer can read
// events from a newer minion.
func (e Event) Decode() (Data, error) {
	d, err := newData(e.Type)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(e.Data, d); err != nil {
		return nil, fmt.Errorf("%w: seq %d: %s data: %v", ErrMalformed, e.Seq, e.Type, err)
	}
	return d, nil
}

// String formats the event on one line for people.
func (e Event) String() string {
	who := e.Minion
	if who == "" {
		who = "-"
	}
	return fmt.Sprintf("%s #%d %s %s %s %s %s", who, e.Seq, e.Time.UTC().Format(time.RFC3339), e.Severity, e.Type, e.Source, e.Data)
}
