package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Parsers for the scalar types' text, and the XML-RPC type names used in
// messages.

// parseInt reads a decimal integer of the given width: <int> and <i4>
// are 32 bits, as the XML-RPC spec says (64-bit values go in <i8>).
// The string conversions here stay on the stack: the happy path does
// not allocate beyond boxing the result.
func parseInt(text []byte, tag string, bits int) (any, error) {
	text = trimSpaceBytes(text)
	n, err := strconv.ParseInt(string(text), 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return nil, invalidFault("<%s> %q out of range (%d bits)", tag, clip(string(text)), bits)
		}
		return nil, invalidFault("bad <%s> %q", tag, clip(string(text)))
	}
	return n, nil
}

// parseDouble accepts decimal notation with an optional exponent, which
// Python sends ("1e+20"); not NaN, infinities, hex floats or
// underscores, which strconv would take.
func parseDouble(text []byte) (any, error) {
	text = trimSpaceBytes(text)
	if !isDecimal(text) {
		return nil, invalidFault("bad <double> %q", clip(string(text)))
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return nil, invalidFault("<double> %q out of range", clip(string(text)))
	}
	return f, nil
}

// isDecimal matches [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?.
func isDecimal(s []byte) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseBase64 decodes standard, padded base64, ignoring white space:
// Python wraps its output at 76 columns.
func parseBase64(text []byte) (any, error) {
	clean := text
	if bytes.ContainsAny(text, " \t\r\n") {
		clean = text[:0] // text is scratch: compact it in place
		for _, c := range text {
			if !isSpaceByte(c) {
				clean = append(clean, c)
			}
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, invalidFault("bad <base64>: %v", err)
	}
	return out[:n], nil
}

// parseDateTime is parseTime for <dateTime.iso8601>'s text, with a
// fast path for the form encoders send, 20060102T15:04:05.
func parseDateTime(text []byte) (any, error) {
	text = trimSpaceBytes(text)
	if t, ok := basicTime(text); ok {
		return t, nil
	}
	return parseTime(string(text))
}

// basicTime reads exactly 20060102T15:04:05, a valid date and time, as
// time.Parse would. It reports false for anything else.
func basicTime(s []byte) (time.Time, bool) {
	if len(s) != 17 || s[8] != 'T' || s[11] != ':' || s[14] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range s[i : i+n] {
			if !isDigit(c) {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(4, 2), num(6, 2)
	hour, minute, sec := num(9, 2), num(12, 2), num(15, 2)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 ||
		minute < 0 || minute > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // Feb 30 and the like: time.Parse refuses them
	}
	return t, true
}

// parseTime accepts 20060102T15:04:05 and 2006-01-02T15:04:05, each with
// an optional Z, ±07:00 or ±0700. No fractions: the encoder could not
// give them back. The result is in UTC.
func parseTime(s string) (any, error) {
	var layout string
	switch {
	case len(s) >= 17 && shape(s[:17]) == "99999999T99:99:99":
		layout = "20060102T15:04:05"
	case len(s) >= 19 && shape(s[:19]) == "9999-99-99T99:99:99":
		layout = "2006-01-02T15:04:05"
	default:
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	switch shape(s[len(layout):]) {
	case "":
	case "Z", "+99:99", "-99:99":
		layout += "Z07:00"
	case "+9999", "-9999":
		layout += "Z0700"
	default:
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	return t.UTC(), nil
}

// shape maps every digit of s to '9', to match s against a pattern.
func shape(s string) string {
	b := []byte(s)
	for i, c := range b {
		if isDigit(c) {
			b[i] = '9'
		}
	}
	return string(b)
}

// wireTypeName is the XML-RPC name of a decoded value's type.
func wireTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "nil"
	case int64:
		return "int"
	case bool:
		return "boolean"
	case string:
		return "string"
	case float64:
		return "double"
	case []byte:
		return "base64"
	case time.Time:
		return "dateTime.iso8601"
	case []any:
		return "array"
	case map[string]any:
		return "struct"
	}
	return fmt.Sprintf("%T", v)
}
