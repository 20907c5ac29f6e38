package xmlrpc

import (
	"bytes"
	"math"
	"strconv"
)

// widenInts rewrites, in a document github.com/kolo/xmlrpc encoded, the
// <int> and <i4> elements whose value does not fit in 32 bits as <i8>,
// for EncodeRequest. kolo writes every Go integer as <int> (unsigned
// ones as <i4>) whatever its size, but XML-RPC's <int> is 32 bits and
// [DecodeCall] refuses more; <i8> is the extension Python, Apache and
// this package read as 64 bits. A document with nothing to rewrite comes
// back as it is.
//
// kolo escapes all text it writes, so "<int>" in its output is always a
// tag; values that are not integers, or beyond 64 bits, are left for the
// decoder to refuse.
func widenInts(body []byte) []byte {
	var out []byte
	last := 0 // body[:last] is in out already
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '<')
		if j < 0 {
			break
		}
		i += j
		tag := intTagAt(body[i:])
		if tag == "" {
			i++
			continue
		}
		open, close := "<"+tag+">", "</"+tag+">"
		textStart := i + len(open)
		k := bytes.Index(body[textStart:], []byte(close))
		if k < 0 {
			break
		}
		text := body[textStart : textStart+k]
		end := textStart + k + len(close)
		if n, err := strconv.ParseInt(string(text), 10, 64); err == nil && (n < math.MinInt32 || n > math.MaxInt32) {
			out = append(out, body[last:i]...)
			out = append(out, "<i8>"...)
			out = append(out, text...)
			out = append(out, "</i8>"...)
			last = end
		}
		i = end
	}
	if out == nil {
		return body
	}
	return append(out, body[last:]...)
}

// intTagAt reports which 32-bit integer tag b starts with, if any.
func intTagAt(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("<int>")):
		return "int"
	case bytes.HasPrefix(b, []byte("<i4>")):
		return "i4"
	}
	return ""
}
