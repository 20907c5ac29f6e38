package fsutil

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// MaxRememberedBytes bounds the small JSON files the daemons and func
// remember settings in (certmaster.json, broker.json, funcd.json).
const MaxRememberedBytes = 64 << 10

// ReadJSON decodes the JSON file at path into v. A file over max bytes
// is refused, not cut short; a missing file's error matches
// fs.ErrNotExist.
func ReadJSON(path string, max int64, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// WriteJSON writes v to path as indented JSON, atomically (see
// WriteFileAtomic).
func WriteJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return WriteFileAtomic(path, append(b, '\n'), perm)
}
