package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// tail is the end of a log file, read backwards so that Open costs the
// same whatever the file's size.
type tail struct {
	good int64   // offset just past the last newline: where complete records end
	last *Record // the last complete record; nil if there is none
	torn []byte  // the bytes after the last newline; nil if none
}

// readTail reads the end of a file of the given size. The last complete
// line must be an intact record (its own hash; the chain is Verify's
// job), else readTail returns a *VerifyError wrapping ErrTampered.
func readTail(r io.ReaderAt, name string, size int64) (tail, error) {
	var t tail
	if size == 0 {
		return t, nil
	}
	const window = MaxRecordBytes + 1 // the longest line, with its newline
	nl, err := lastNewline(r, size, size-window)
	if err != nil {
		return t, fmt.Errorf("audit: read %s: %w", name, err)
	}
	if nl < 0 && size > window {
		return t, &VerifyError{File: name, Offset: size - window, Reason: "the file ends in more than a record's length of bytes without a newline", Err: ErrTampered}
	}
	t.good = nl + 1
	if t.good < size {
		t.torn = make([]byte, size-t.good)
		if _, err := r.ReadAt(t.torn, t.good); err != nil {
			return t, fmt.Errorf("audit: read %s: %w", name, err)
		}
	}
	if nl < 0 {
		return t, nil
	}
	prev, err := lastNewline(r, nl, nl-window)
	if err != nil {
		return t, fmt.Errorf("audit: read %s: %w", name, err)
	}
	if prev < 0 && nl > window {
		return t, &VerifyError{File: name, Offset: nl - window, Reason: errLineTooLong.Error(), Err: ErrTampered}
	}
	line := make([]byte, nl-(prev+1))
	if _, err := r.ReadAt(line, prev+1); err != nil {
		return t, fmt.Errorf("audit: read %s: %w", name, err)
	}
	rec, err := ParseLine(line)
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			ve.File, ve.Offset = name, prev+1
			ve.Reason = "last record: " + ve.Reason
		}
		return t, err
	}
	t.last = &rec
	return t, nil
}

// lastNewline returns the offset of the last '\n' in r's bytes
// [max(lo, 0), end), or -1 if there is none.
func lastNewline(r io.ReaderAt, end, lo int64) (int64, error) {
	lo = max(lo, 0)
	buf := make([]byte, 64<<10)
	for end > lo {
		start := max(end-int64(len(buf)), lo)
		chunk := buf[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return -1, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i), nil
		}
		end = start
	}
	return -1, nil
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
