// Package hashchain is the line format that gofunc's tamper-evident logs
// share: the audit log (package audit) and the minion's event journal
// (package events). Each record is one line of JSON whose last member is
// "hash": the lower-case hex SHA-256 of the line as it reads with that
// value empty, so that anyone can check a line with sed and sha256sum,
// and a chain is made by each record naming its predecessor's hash.
//
// The package knows nothing of the records' other members: it seals and
// checks lines, splits streams into bounded lines, and locks a log's
// files so that two writers never fork a chain.
package hashchain

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// HexLen is the length of a hash in a line: 64 lower-case hex digits.
const HexLen = 2 * sha256.Size

// emptyTail is how the JSON encoding of every record ends before it is
// sealed: its "hash" member, last and empty.
var emptyTail = []byte(`,"hash":""}`)

// hashKey precedes the hash value in a sealed line.
const hashKey = `,"hash":"`

// tailLen is the sealed line's tail after hashKey: the digits and `"}`.
const tailLen = HexLen + len(`"}`)

// ErrUnsealed is returned by Seal for a body that does not end in an
// empty "hash" member.
var ErrUnsealed = errors.New(`hashchain: JSON does not end with an empty "hash" member`)

// Seal returns the line for body, the JSON encoding of a record whose
// last member is "hash":"" (as encoding/json writes a struct whose last
// field is Hash string `json:"hash"`), with a final newline, and its
// hash: the hex SHA-256 of body, spliced in between the last two quotes.
func Seal(body []byte) (line []byte, hash string, err error) {
	line = make([]byte, 0, len(body)+HexLen+1)
	return SealAppend(append(line, body...), 0)
}

// SealAppend is Seal for a body already at the end of a buffer:
// b[start:] is the body, and the line takes its place there (b grows by
// the hash and the newline, in place when its capacity allows). On
// error b is returned unchanged.
func SealAppend(b []byte, start int) (out []byte, hash string, err error) {
	body := b[start:]
	if !bytes.HasSuffix(body, emptyTail) {
		return b, "", ErrUnsealed
	}
	sum := sha256.Sum256(body)
	var hexSum [HexLen]byte
	hex.Encode(hexSum[:], sum[:])
	b = b[:len(b)-2] // up to and including the opening quote
	b = append(b, hexSum[:]...)
	b = append(b, "\"}\n"...)
	return b, string(hexSum[:]), nil
}

// ErrMismatch is the error Check gives for a well-formed line whose hash
// is not the SHA-256 of its content: an edited record.
var ErrMismatch = errors.New("hash mismatch: the record was edited")

// Check checks that line (without its newline) ends with its "hash"
// member holding 64 lower-case hex digits and that they are the SHA-256
// of the line with the member emptied. It returns the hash; its error
// (whose text says why, for people) is ErrMismatch for a well-formed
// line whose content was changed. It does not parse the rest of the
// JSON: the caller decodes the record and compares its hash member with
// the one returned, which rules out a second "hash" member earlier in
// the line.
func Check(line []byte) (hash string, err error) {
	n := len(line)
	if n < len(hashKey)+tailLen || string(line[n-tailLen-len(hashKey):n-tailLen]) != hashKey ||
		string(line[n-2:]) != `"}` {
		return "", errors.New(`not a record: it does not end with its "hash" field`)
	}
	hash = string(line[n-tailLen : n-2])
	if !IsHash(hash) {
		return "", errors.New("malformed hash field")
	}
	h := sha256.New()
	h.Write(line[:n-tailLen])
	h.Write([]byte(`"}`))
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return "", ErrMismatch
	}
	return hash, nil
}

// IsHash reports whether s is 64 lower-case hex digits.
func IsHash(s string) bool {
	if len(s) != HexLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ErrLineTooLong is returned by LineReader.Next for a line longer than
// its limit.
var ErrLineTooLong = errors.New("line longer than the longest record")

// LineReader splits a stream into lines of at most Max bytes, keeping
// count of lines and offsets for error messages.
type LineReader struct {
	r   *bufio.Reader
	max int
	n   int   // lines returned so far
	off int64 // offset of the next line
	buf []byte
}

// NewLineReader reads r in lines of at most max bytes (newline not
// counted).
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Lines returns how many lines Next has returned, the current one
// included: the 1-based number of the last line read.
func (lr *LineReader) Lines() int { return lr.n }

// Next returns the next line without its newline, its offset, and
// whether a newline ended it (false only for the last line of the
// stream). The line is valid until the next call. It returns io.EOF at
// the end, and an error wrapping ErrLineTooLong for a line over the
// limit.
func (lr *LineReader) Next() (line []byte, off int64, complete bool, err error) {
	lr.buf = lr.buf[:0]
	off = lr.off
	for {
		chunk, err := lr.r.ReadSlice('\n')
		lr.buf = append(lr.buf, chunk...)
		lr.off += int64(len(chunk))
		if len(lr.buf) > lr.max+1 {
			lr.n++
			return nil, off, false, fmt.Errorf("%w (%d bytes)", ErrLineTooLong, lr.max)
		}
		switch {
		case err == nil:
			lr.n++
			return lr.buf[:len(lr.buf)-1], off, true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(lr.buf) > 0:
			lr.n++
			return lr.buf, off, false, nil
		default:
			return nil, off, false, err
		}
	}
}
