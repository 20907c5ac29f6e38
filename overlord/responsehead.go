package overlord

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
)

// errResponseHead is a minion's answer whose status line or headers
// are not HTTP/1.1 as a minion sends it. It wraps ErrProtocol.
var errResponseHead = fmt.Errorf("%w: malformed HTTP answer", ErrProtocol)

// responseHead is what the direct transport needs of an answer's
// status line and headers. callID and auditHead alias the reader's
// buffer: copy them before reading on.
type responseHead struct {
	status    int
	reason    string // only for a status other than 200
	length    int64  // Content-Length; -1 when absent
	chunked   bool   // Transfer-Encoding: chunked
	close     bool   // the minion closes the connection after this answer
	callID    []byte // Gofunc-Call-Id
	auditHead []byte // Gofunc-Audit-Head
}

// readResponseHead reads one answer's status line and headers from br,
// strictly and without allocating for a 200: "HTTP/1.1" or "HTTP/1.0",
// a three-digit status, header lines of a token, a colon and a value,
// at most maxHeadBytes in all (a line must fit in br's buffer). What
// could make two readers frame the body differently is refused: a
// Content-Length that is not a number or is given twice differently, a
// transfer coding other than chunked, both a length and chunked, and
// folded (obsolete) header lines.
func readResponseHead(br *bufio.Reader) (responseHead, error) {
	h := responseHead{length: -1}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return h, headReadError(err, "the status line")
	}
	total := len(line)
	line = trimEOL(line)
	if len(line) < 12 || line[8] != ' ' || len(line) > 12 && line[12] != ' ' {
		return h, fmt.Errorf("%w: status line %q", errResponseHead, clip(line))
	}
	if hasCTL(line) {
		return h, fmt.Errorf("%w: control character in status line %q", errResponseHead, clip(line))
	}
	http11 := bytes.HasPrefix(line, []byte("HTTP/1.1"))
	if !http11 && !bytes.HasPrefix(line, []byte("HTTP/1.0")) {
		return h, fmt.Errorf("%w: status line %q", errResponseHead, clip(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return h, fmt.Errorf("%w: status line %q", errResponseHead, clip(line))
		}
		h.status = h.status*10 + int(c-'0')
	}
	if h.status < 100 {
		return h, fmt.Errorf("%w: status line %q", errResponseHead, clip(line))
	}
	if h.status != 200 && len(line) > 13 {
		h.reason = string(clip(line[13:]))
	}
	h.close = !http11 // HTTP/1.0 keeps a connection only when asked to, and a minion never is
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return h, headReadError(err, "the headers")
		}
		if total += len(line); total > maxHeadBytes {
			return h, fmt.Errorf("%w: head over %d bytes", errResponseHead, maxHeadBytes)
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		if err := h.header(line); err != nil {
			return h, err
		}
	}
	if h.chunked && !http11 {
		return h, fmt.Errorf("%w: chunked in an HTTP/1.0 answer", errResponseHead)
	}
	if h.chunked && h.length >= 0 {
		return h, fmt.Errorf("%w: both Content-Length and chunked", errResponseHead)
	}
	if h.status < 200 || h.status == 204 || h.status == 304 {
		h.length, h.chunked = 0, false // no body
	}
	return h, nil
}

// header takes in one header line.
func (h *responseHead) header(line []byte) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !isToken(line[:colon]) {
		return fmt.Errorf("%w: header line %q", errResponseHead, clip(line))
	}
	if hasCTL(line[colon+1:]) {
		return fmt.Errorf("%w: control character in header line %q", errResponseHead, clip(line))
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	switch {
	case asciiEqualFold(name, "Content-Length"):
		n, ok := parseLength(value)
		if !ok || h.length >= 0 && h.length != n {
			return fmt.Errorf("%w: Content-Length %q", errResponseHead, clip(value))
		}
		h.length = n
	case asciiEqualFold(name, "Transfer-Encoding"):
		if !asciiEqualFold(value, "chunked") || h.chunked {
			return fmt.Errorf("%w: Transfer-Encoding %q", errResponseHead, clip(value))
		}
		h.chunked = true
	case asciiEqualFold(name, "Connection"):
		for tok := range bytes.SplitSeq(value, []byte(",")) {
			if asciiEqualFold(bytes.Trim(tok, " \t"), "close") {
				h.close = true
			}
		}
	case asciiEqualFold(name, "Gofunc-Call-Id"):
		h.callID = value
	case asciiEqualFold(name, "Gofunc-Audit-Head"):
		h.auditHead = value
	}
	return nil
}

func headReadError(err error, what string) error {
	if errors.Is(err, bufio.ErrBufferFull) {
		return fmt.Errorf("%w: a line of %s is over %d bytes", errResponseHead, what, readBufferSize)
	}
	return fmt.Errorf("reading %s: %w", what, err)
}

// parseLength reads a Content-Length: decimal digits only, at most 18.
func parseLength(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasCTL reports a control character other than a tab.
func hasCTL(b []byte) bool {
	for _, c := range b {
		if c < ' ' && c != '\t' || c == 0x7f {
			return true
		}
	}
	return false
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line
}

// isToken reports whether b is an HTTP token (a header name).
func isToken(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || bytes.IndexByte([]byte(`"(),/:;<=>?@[\]{}`), c) >= 0 {
			return false
		}
	}
	return true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// clip bounds what of a bad line goes into an error.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
