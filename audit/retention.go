package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// anchorSuffix names the file beside a log that holds the checkpoint of
// the last record deleted by Prune: path.anchor.
const anchorSuffix = ".anchor"

// Anchor is the content of path.anchor: where the chain of the files
// that remain begins.
type Anchor struct {
	Checkpoint
	// Through is the base name of the newest rotated file deleted.
	Through string    `json:"through"`
	Time    time.Time `json:"time"`
}

// Prune deletes the oldest rotated files of the log whose live file is
// path until at most keep remain (keep < 1 keeps one). Before deleting
// it writes path.anchor (atomically, 0600) with the checkpoint of the
// last record of the newest file it deletes, so Verify can check the
// remaining files from there. It is what Config.KeepRotated does at each
// rotation; the certmaster's --audit-keep sets it.
//
// The anchor is as writable as the log itself: like the chain, it shows
// records edited, inserted or deleted inside the files kept, not that
// whole files are gone. Ship the files elsewhere before they are pruned
// if they must be kept.
func Prune(path string, keep int) error {
	keep = max(keep, 1)
	rotated, err := rotatedFiles(path)
	if err != nil {
		return err
	}
	if len(rotated) <= keep {
		return nil
	}
	drop := rotated[:len(rotated)-keep]
	newest := drop[len(drop)-1]
	last, err := lastRecordOf(newest.path)
	if err != nil {
		return err
	}
	if last == nil {
		return fmt.Errorf("audit: prune: %s is empty", newest.path)
	}
	a := Anchor{Checkpoint: Checkpoint{Seq: last.Seq, Hash: last.Hash}, Through: filepath.Base(newest.path), Time: time.Now().UTC()}
	if err := writeAnchor(path+anchorSuffix, a); err != nil {
		return err
	}
	var errs []error
	for _, r := range drop {
		if err := os.Remove(r.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := fsutil.SyncDir(filepath.Dir(path)); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: prune: %w", err)
	}
	return nil
}

func writeAnchor(path string, a Anchor) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("audit: anchor: %w", err)
	}
	return nil
}

// ReadAnchor returns the anchor Prune left beside the log whose live
// file is path; the error wraps fs.ErrNotExist when there is none.
func ReadAnchor(path string) (Anchor, error) {
	var a Anchor
	b, err := os.ReadFile(path + anchorSuffix)
	if err != nil {
		return a, fmt.Errorf("audit: %w", err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("audit: %s: %w", path+anchorSuffix, err)
	}
	return a, nil
}

// logBase returns the live file of the log a file belongs to: path
// itself, or path without its rotation suffix.
func logBase(path string) string {
	dir, name := filepath.Split(path)
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		if _, ok := rotatedIndex(name[:i], name); ok {
			return filepath.Join(dir, name[:i])
		}
	}
	return path
}

// startOf returns where a chain given as files begins: the genesis, or
// the anchor Prune left when the first file starts right after it.
func startOf(first string) Checkpoint {
	a, err := ReadAnchor(logBase(first))
	if err != nil {
		return Checkpoint{}
	}
	f, err := os.Open(first)
	if err != nil {
		return Checkpoint{}
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 64<<10).ReadSlice('\n')
	if err != nil {
		return Checkpoint{}
	}
	rec, err := ParseLine(line)
	if err != nil || rec.Seq != a.Seq+1 {
		return Checkpoint{}
	}
	return a.Checkpoint
}
