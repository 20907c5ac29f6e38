package events

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/hashchain"
)

var segmentPattern = regexp.MustCompile(`^[0-9]{20}\.jsonl$`)

// damagedPrefix starts the directories damaged journals are moved to.
const damagedPrefix = "damaged-"

// keepDamaged is how many damaged-* directories Open keeps.
const keepDamaged = 3

// damage says why a journal's files cannot be continued.
type damage struct {
	path   string
	line   int
	reason string
}

func (d *damage) Error() string {
	return fmt.Sprintf("%s:%d: %s", filepath.Base(d.path), d.line, d.reason)
}

// torn is a final line cut short by a crash.
type torn struct {
	seg   *segment
	off   int64
	bytes []byte
}

// load reads the segments into the index and repairs what Open
// promises to repair.
func (j *Journal) load() error {
	paths, err := j.segmentPaths()
	if err != nil {
		return err
	}
	var t *torn
	var dmg *damage
	for i, p := range paths {
		last := i == len(paths)-1
		seg, tt, err := j.loadSegment(p, last)
		if seg != nil {
			j.segs = append(j.segs, seg)
		}
		if errors.As(err, &dmg) {
			break
		}
		if err != nil {
			return err
		}
		t = tt
	}
	if dmg != nil {
		return j.reset(dmg, paths)
	}
	if t != nil {
		return j.cutTorn(t)
	}
	return nil
}

// segmentPaths lists the segment files, oldest first, and removes an
// empty last one (a crash right after it was created).
func (j *Journal) segmentPaths() ([]string, error) {
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if segmentPattern.MatchString(e.Name()) {
			paths = append(paths, filepath.Join(j.dir, e.Name()))
		}
	}
	slices.Sort(paths) // fixed-width names: lexical order is seq order
	return paths, nil
}

// loadSegment opens and checks one segment, appending its events to the
// index. A problem is returned as a *damage; a torn final line of the
// last segment as a *torn to cut off.
func (j *Journal) loadSegment(path string, last bool) (*segment, *torn, error) {
	first, _ := strconv.ParseUint(strings.TrimSuffix(filepath.Base(path), ".jsonl"), 10, 64)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|hashchain.NoFollow, 0o600)
	if err != nil {
		return nil, nil, &damage{path: path, reason: err.Error()}
	}
	seg := &segment{first: first, path: path, f: f}
	lr := hashchain.NewLineReader(f, MaxLineBytes)
	for {
		b, off, complete, err := lr.Next()
		if err == io.EOF {
			break
		}
		fail := func(reason string) (*segment, *torn, error) {
			return seg, nil, &damage{path: path, line: lr.Lines(), reason: reason}
		}
		if err != nil {
			return fail(err.Error())
		}
		if !complete {
			if !last {
				return fail("incomplete line in a segment that is not the last")
			}
			return seg, &torn{seg: seg, off: off, bytes: append([]byte(nil), b...)}, nil
		}
		e, err := ParseLine(b)
		if err != nil {
			return fail(err.Error())
		}
		if reason := j.follows(e, seg); reason != "" {
			return fail(reason)
		}
		j.index = append(j.index, entry{seg: seg, off: off, n: int32(len(b)), epoch: e.Epoch, time: e.Time.UnixNano()})
		if j.first == 0 {
			j.first = e.Seq
		}
		j.head, j.lastHash = e.Seq, e.Hash
		seg.events++
		seg.size = off + int64(len(b)) + 1
	}
	j.size += seg.size
	if seg.events == 0 && last {
		// A crash right after the segment was created: the next write
		// starts it again.
		f.Close()
		if err := os.Remove(path); err != nil {
			return nil, nil, fmt.Errorf("events: %w", err)
		}
		return nil, nil, nil
	}
	if seg.events == 0 {
		return seg, nil, &damage{path: path, reason: "empty segment"}
	}
	return seg, nil, nil
}

// follows says why e cannot come next in the chain, or "".
func (j *Journal) follows(e Event, seg *segment) string {
	if seg.events == 0 && e.Seq != seg.first {
		return fmt.Sprintf("segment named for seq %d starts with seq %d", seg.first, e.Seq)
	}
	if j.head == 0 {
		return "" // the oldest event kept: anything before it was dropped
	}
	switch {
	case e.Seq != j.head+1:
		return fmt.Sprintf("seq %d after seq %d: events missing, reordered or inserted", e.Seq, j.head)
	case e.PrevHash != j.lastHash:
		return fmt.Sprintf("seq %d: prev_hash does not match the previous event: events replaced or inserted", e.Seq)
	}
	return ""
}

// cutTorn cuts a torn final line off and reports it.
func (j *Journal) cutTorn(t *torn) error {
	if err := t.seg.f.Truncate(t.off); err != nil {
		return fmt.Errorf("events: cut torn event: %w", err)
	}
	if err := t.seg.f.Sync(); err != nil {
		return fmt.Errorf("events: cut torn event: %w", err)
	}
	j.size -= t.seg.size - t.off
	t.seg.size = t.off
	sum := sha256.Sum256(t.bytes)
	j.logger.Warn("event journal had a torn final line; cut off", "segment", t.seg.path, "offset", t.off, "bytes", len(t.bytes))
	_, err := j.write([]item{{source: SourceJournal, data: &Recovered{
		Segment: filepath.Base(t.seg.path), Offset: t.off, Bytes: len(t.bytes), SHA256: hex.EncodeToString(sum[:]),
	}}})
	return err
}

// reset moves the damaged journal's segment files aside and starts a
// new chain whose first event says why.
func (j *Journal) reset(d *damage, paths []string) error {
	lastSeq := j.head
	for _, s := range j.segs {
		s.f.Close()
	}
	moved, err := j.moveAside(paths)
	if err != nil {
		return fmt.Errorf("events: journal %s is damaged (%v) and could not be moved aside: %w", j.dir, d, err)
	}
	j.segs, j.index, j.first, j.head, j.lastHash, j.size = nil, nil, 0, 0, "", 0
	j.logger.Error("event journal damaged; moved aside, starting a new chain", "reason", d.Error(), "moved_to", moved)
	_, err = j.write([]item{{source: SourceJournal, data: &JournalReset{Reason: d.Error(), MovedTo: moved, LastSeq: lastSeq}}})
	return err
}

// moveAside moves every segment into a new damaged-* directory and
// removes the oldest such directories beyond keepDamaged.
func (j *Journal) moveAside(paths []string) (string, error) {
	name := damagedPrefix + j.clock().UTC().Format("20060102T150405.000000000Z")
	dst := filepath.Join(j.dir, name)
	if err := os.Mkdir(dst, 0o700); err != nil {
		return "", err
	}
	for _, p := range paths {
		if err := os.Rename(p, filepath.Join(dst, filepath.Base(p))); err != nil {
			return "", err
		}
	}
	if err := fsutil.SyncDir(j.dir); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(j.dir)
	if err != nil {
		return "", err
	}
	var damaged []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), damagedPrefix) {
			damaged = append(damaged, e.Name())
		}
	}
	slices.Sort(damaged)
	for len(damaged) > keepDamaged {
		if err := os.RemoveAll(filepath.Join(j.dir, damaged[0])); err != nil {
			j.logger.Warn("removing an old damaged journal failed", "dir", damaged[0], "error", err)
		}
		damaged = damaged[1:]
	}
	return name, nil
}
