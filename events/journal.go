package events

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/hashchain"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxEvents = 10_000
	DefaultMaxBytes  = 32 << 20
)

// segmentsPerJournal is how many segments a full journal is cut into:
// dropping the oldest segment drops about 1/segmentsPerJournal of it.
const segmentsPerJournal = 8

// Config configures a Journal. The zero Config is ready to use.
type Config struct {
	// MaxEvents bounds the events kept; zero means DefaultMaxEvents
	// (10,000). Past it the oldest events are dropped, a segment (about
	// an eighth of MaxEvents) at a time, and an "events.dropped" event
	// says which.
	MaxEvents int
	// MaxBytes bounds the journal's files the same way; zero means
	// DefaultMaxBytes (32 MiB). It must leave room for a few full-size
	// events: at least 8 * MaxLineBytes.
	MaxBytes int64
	// Logger receives warnings (recoveries, drops, failures); nil means
	// hclog.NewNullLogger(). It never sees event data.
	Logger hclog.Logger
	// Clock stamps events; nil means time.Now.
	Clock func() time.Time
}

// Errors of a Journal.
var (
	// ErrClosed is returned by a Journal after Close.
	ErrClosed = errors.New("events: journal is closed")
	// ErrLocked is returned by Open when another Journal, in this
	// process or another, has the directory open.
	ErrLocked = errors.New("events: journal is in use")
	// ErrWrite wraps a failure to write an event durably; the event is
	// then not in the journal.
	ErrWrite = errors.New("events: event not written")
	// ErrBadRequest wraps a Since request that cannot be answered: a
	// seq without its epoch, a negative limit.
	ErrBadRequest = errors.New("events: bad request")
)

// Journal is a minion's bounded, hash-chained event journal: a
// directory of segment files of event lines (see Event), oldest dropped
// first. Its methods are safe for concurrent use.
//
// Writers are serialized and each event is fsynced before Emit
// returns; readers (Since, Poll) run alongside and never see an event
// before it is durable.
type Journal struct {
	dir       string
	maxEvents int
	maxBytes  int64
	segEvents int
	segBytes  int64
	logger    hclog.Logger
	clock     func() time.Time
	epoch     string
	lock      *os.File

	wmu    sync.Mutex // serializes writers; held across file I/O
	broken error      // a write failed and could not be undone; under wmu

	mu       sync.RWMutex // guards what follows; writers take it briefly
	segs     []*segment   // oldest first; the last one is written to
	index    []entry      // index[i] is the event with seq first+i
	first    uint64       // seq of index[0]; 0 when empty
	head     uint64       // seq of the last event; 0 before the first
	lastHash string
	size     int64         // bytes in all segments
	changed  chan struct{} // closed and replaced when head moves or on Close
	closed   bool
}

type segment struct {
	first  uint64 // seq of its first event, also its name
	path   string
	f      *os.File
	events int
	size   int64
}

type entry struct {
	seg   *segment
	off   int64
	n     int32 // line length without the newline
	epoch string
	time  int64 // unix nanoseconds
}

// Open opens the journal in dir (created 0700 if missing) and goes on
// with its chain under a new epoch. It takes an exclusive lock on
// dir/journal.lock (ErrLocked if another Journal holds it).
//
// Open reads and checks every event. A torn final line, left by a
// crash in the middle of a write, is cut off and reported by an
// "events.recovered" event. Anything else wrong (an edited, missing or
// reordered event, a line that is not an event) moves the journal's
// files aside into dir/damaged-<time>/ (the newest three such
// directories are kept) and starts a new chain at seq 1 whose first
// event, "events.reset", says why: the minion keeps running and the
// break is reported, never hidden. Open fails only when the directory
// cannot be locked, read or written.
func Open(dir string, cfg Config) (*Journal, error) {
	j := &Journal{dir: dir, logger: cfg.Logger, clock: cfg.Clock, maxEvents: cfg.MaxEvents, maxBytes: cfg.MaxBytes,
		changed: make(chan struct{})}
	if j.logger == nil {
		j.logger = hclog.NewNullLogger()
	}
	if j.clock == nil {
		j.clock = time.Now
	}
	if j.maxEvents <= 0 {
		j.maxEvents = DefaultMaxEvents
	}
	if j.maxBytes <= 0 {
		j.maxBytes = DefaultMaxBytes
	}
	if j.maxBytes < segmentsPerJournal*MaxLineBytes {
		return nil, fmt.Errorf("events: MaxBytes %d is below the minimum %d", j.maxBytes, segmentsPerJournal*MaxLineBytes)
	}
	j.segEvents = max(1, j.maxEvents/segmentsPerJournal)
	j.segBytes = j.maxBytes / segmentsPerJournal
	var b [16]byte
	rand.Read(b[:])
	j.epoch = hex.EncodeToString(b[:])

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		// Events hold plugin output, file hashes and paths.
		j.logger.Warn("event journal directory is open to others; it should be mode 0700", "dir", dir, "mode", fi.Mode().Perm().String())
	}
	lock, err := hashchain.Lock(filepath.Join(dir, "journal.lock"))
	if errors.Is(err, hashchain.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("events: lock: %w", err)
	}
	j.lock = lock
	if err := j.load(); err != nil {
		j.closeFiles()
		return nil, err
	}
	return j, nil
}

// Epoch returns the epoch of the events this Journal writes.
func (j *Journal) Epoch() string { return j.epoch }

// HeadCursor returns the cursor of the newest event (the zero Cursor
// when the journal is empty): a reader that starts there gets only the
// events written after it.
func (j *Journal) HeadCursor() Cursor {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if len(j.index) == 0 {
		return Cursor{}
	}
	return Cursor{Epoch: j.index[len(j.index)-1].epoch, Seq: j.head, Hash: j.lastHash}
}

// Dir returns the journal's directory.
func (j *Journal) Dir() string { return j.dir }

// Stats describes a journal's content.
type Stats struct {
	Epoch    string `json:"epoch"`
	First    uint64 `json:"first"` // oldest seq kept; 0 when empty
	Head     uint64 `json:"head"`  // newest seq; 0 before the first event
	Events   int    `json:"events"`
	Bytes    int64  `json:"bytes"`
	Segments int    `json:"segments"`
}

// Stats returns the journal's current bounds and size.
func (j *Journal) Stats() Stats {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return Stats{Epoch: j.epoch, First: j.first, Head: j.head, Events: len(j.index), Bytes: j.size, Segments: len(j.segs)}
}

// Emit writes an event from source with data d, stamped with the
// journal's epoch, the next seq and the clock's time, and returns it
// once it is on stable storage. Source must satisfy ValidSource; d's
// JSON must be an object of at most MaxDataBytes (ErrTooLarge). Every
// other error wraps ErrWrite or ErrClosed.
func (j *Journal) Emit(source string, d Data) (Event, error) {
	evs, err := j.write([]item{{source: source, data: d}})
	if err != nil {
		return Event{}, err
	}
	return evs[len(evs)-1], nil
}

// item is an event to write.
type item struct {
	source string
	data   Data
	raw    json.RawMessage
}

func (it *item) encode() error {
	if !ValidSource(it.source) {
		return fmt.Errorf("%w: source %q is not a valid name", ErrWrite, it.source)
	}
	if it.data == nil {
		return fmt.Errorf("%w: nil data", ErrWrite)
	}
	if t := it.data.EventType(); !typePattern.MatchString(t) {
		return fmt.Errorf("%w: event type %q", ErrWrite, t)
	}
	if !it.data.EventSeverity().Valid() {
		return fmt.Errorf("%w: severity %q", ErrWrite, it.data.EventSeverity())
	}
	raw, err := json.Marshal(it.data)
	if err != nil {
		return fmt.Errorf("%w: encode %s data: %w", ErrWrite, it.data.EventType(), err)
	}
	if len(raw) > MaxDataBytes {
		return fmt.Errorf("%w: %s data is %d bytes, limit %d", ErrTooLarge, it.data.EventType(), len(raw), MaxDataBytes)
	}
	if len(raw) == 0 || raw[0] != '{' {
		return fmt.Errorf("%w: %s data is not a JSON object", ErrWrite, it.data.EventType())
	}
	it.raw = raw
	return nil
}

// envelopeBytes is a generous size of a line without its data, for
// planning how much to drop before the exact lines are known.
const envelopeBytes = 512

// write appends items (and, when room must be made, an events.dropped
// event before them) as one durable write.
func (j *Journal) write(items []item) ([]Event, error) {
	for i := range items {
		if err := items[i].encode(); err != nil {
			return nil, err
		}
	}
	j.wmu.Lock()
	defer j.wmu.Unlock()
	if j.isClosed() {
		return nil, fmt.Errorf("%w: %w", ErrWrite, ErrClosed)
	}
	if j.broken != nil {
		return nil, fmt.Errorf("%w: the journal failed earlier and must be reopened: %w", ErrWrite, j.broken)
	}
	var want int64
	for _, it := range items {
		want += int64(len(it.raw)) + envelopeBytes
	}
	rotate := j.mustRotate(want)
	if dropped := j.makeRoom(len(items), want, rotate); dropped != nil {
		notice := item{source: SourceJournal, data: dropped}
		if err := notice.encode(); err != nil {
			return nil, err
		}
		items = append([]item{notice}, items...)
	}
	return j.append(items, rotate)
}

func (j *Journal) isClosed() bool {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.closed
}

// mustRotate reports whether a write of about want bytes needs a new
// segment.
func (j *Journal) mustRotate(want int64) bool {
	if len(j.segs) == 0 {
		return true
	}
	last := j.segs[len(j.segs)-1]
	return last.events >= j.segEvents || (last.size > 0 && last.size+want > j.segBytes)
}

// makeRoom drops the oldest segments until n more events of about want
// bytes (and a notice) fit the bounds, and returns what it dropped, or
// nil. The segment being written to is kept unless rotate retires it.
func (j *Journal) makeRoom(n int, want int64, rotate bool) *Dropped {
	keep := 1 // the active segment
	if rotate {
		keep = 0
	}
	count, size, drop := len(j.index), j.size, 0
	for drop < len(j.segs)-keep {
		extra := 0
		if drop > 0 {
			extra = 1 // the notice
		}
		if count+n+extra <= j.maxEvents && size+want+int64(extra)*envelopeBytes <= j.maxBytes {
			break
		}
		count -= j.segs[drop].events
		size -= j.segs[drop].size
		drop++
	}
	if drop == 0 {
		return nil
	}
	j.mu.Lock()
	gone := j.segs[:drop]
	from := gone[0].first
	to := j.segs[drop].first - 1
	if drop == len(j.segs) {
		to = j.head
	}
	dropped := 0
	for _, s := range gone {
		s.f.Close()
		if err := os.Remove(s.path); err != nil {
			j.logger.Warn("removing a dropped event segment failed", "path", s.path, "error", err)
		}
		dropped += s.events
		j.size -= s.size
	}
	j.segs = append([]*segment(nil), j.segs[drop:]...)
	j.index = append([]entry(nil), j.index[dropped:]...)
	if len(j.index) == 0 {
		j.first = 0
	} else {
		j.first += uint64(dropped)
	}
	j.mu.Unlock()
	if err := fsutil.SyncDir(j.dir); err != nil {
		j.logger.Warn("syncing the journal directory failed", "error", err)
	}
	j.logger.Warn("event journal full; dropped the oldest events", "from", from, "to", to, "count", dropped)
	return &Dropped{Count: uint64(dropped), From: from, To: to}
}

// append encodes items onto the chain, writes and syncs them, and
// publishes them to readers.
func (j *Journal) append(items []item, rotate bool) ([]Event, error) {
	now := j.clock().UTC()
	seq, prev := j.head+1, j.lastHash
	evs := make([]Event, 0, len(items))
	var buf []byte
	lens := make([]int32, 0, len(items))
	for _, it := range items {
		e := Event{Epoch: j.epoch, Seq: seq, Time: now, Type: it.data.EventType(), Severity: it.data.EventSeverity(),
			Source: it.source, Data: it.raw, PrevHash: prev}
		line, hash, err := encodeLine(e)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrite, err)
		}
		if len(line)-1 > MaxLineBytes {
			return nil, fmt.Errorf("%w: line of %d bytes", ErrTooLarge, len(line))
		}
		e.Hash = hash
		evs = append(evs, e)
		buf = append(buf, line...)
		lens = append(lens, int32(len(line)-1))
		seq, prev = seq+1, hash
	}
	if rotate {
		if err := j.newSegment(evs[0].Seq); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWrite, err)
		}
	}
	seg := j.segs[len(j.segs)-1]
	n, err := seg.f.Write(buf)
	if err == nil {
		err = seg.f.Sync()
	}
	if err != nil {
		j.undo(seg, n, err)
		return nil, fmt.Errorf("%w: %w", ErrWrite, err)
	}
	j.mu.Lock()
	off := seg.size
	for i, e := range evs {
		if len(j.index) == 0 {
			j.first = e.Seq
		}
		j.index = append(j.index, entry{seg: seg, off: off, n: lens[i], epoch: j.epoch, time: e.Time.UnixNano()})
		off += int64(lens[i]) + 1
	}
	seg.events += len(evs)
	seg.size += int64(len(buf))
	j.size += int64(len(buf))
	j.head, j.lastHash = seq-1, prev
	close(j.changed)
	j.changed = make(chan struct{})
	j.mu.Unlock()
	return evs, nil
}

// undo takes back the n bytes a failed write left, or marks the
// journal broken if it cannot.
func (j *Journal) undo(seg *segment, n int, cause error) {
	if n == 0 {
		return
	}
	err := seg.f.Truncate(seg.size)
	if err == nil {
		err = seg.f.Sync()
	}
	if err != nil {
		j.broken = fmt.Errorf("%w (and truncating back failed: %w)", cause, err)
		j.logger.Error("event write failed and could not be undone; refusing further events", "path", seg.path, "error", j.broken)
		return
	}
	j.logger.Error("event write failed; the journal is back at its last good event", "path", seg.path, "error", cause)
}

// segmentName is the file name of the segment whose first seq is first.
func segmentName(first uint64) string { return fmt.Sprintf("%020d.jsonl", first) }

// newSegment starts the segment whose first event will be first.
func (j *Journal) newSegment(first uint64) error {
	path := filepath.Join(j.dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND|hashchain.NoFollow, 0o600)
	if err != nil {
		return err
	}
	if err := fsutil.SyncDir(j.dir); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	j.mu.Lock()
	j.segs = append(j.segs, &segment{first: first, path: path, f: f})
	j.mu.Unlock()
	return nil
}

// Close closes the journal: waiters in Wait and Poll return, later
// calls fail with ErrClosed. It waits for a write in progress and is
// idempotent.
func (j *Journal) Close() error {
	j.wmu.Lock()
	defer j.wmu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.changed)
	j.mu.Unlock()
	return j.closeFiles()
}

func (j *Journal) closeFiles() error {
	var first error
	for _, s := range j.segs {
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	if j.lock != nil {
		if err := j.lock.Close(); err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return fmt.Errorf("events: close: %w", first)
	}
	return nil
}

// readLine returns the line of index entry e (held under mu).
func readLine(e entry) ([]byte, error) {
	b := make([]byte, e.n)
	if _, err := e.seg.f.ReadAt(b, e.off); err != nil && !(errors.Is(err, io.EOF) && len(b) == int(e.n)) {
		return nil, fmt.Errorf("events: read %s: %w", e.seg.path, err)
	}
	return b, nil
}
