package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// appendRecord appends rec's JSON encoding to b, byte for byte what
// encoding/json.Marshal(rec) writes (the hash chain depends on those
// bytes), without reflection: a minion encodes two records per call,
// and Marshal's reflection was a tenth of its CPU. ok is false, with b
// unchanged, for what it leaves to Marshal: a time outside years
// 0-9999 (Marshal's error) or not in UTC (the log writes UTC). Args, the one member of no fixed shape,
// are encoded by Marshal; strings that need escaping too.
//
// TestEncoderMatchesMarshal and FuzzEncoderMatchesMarshal hold it to
// Marshal's output.
func appendRecord(b []byte, rec *Record) (out []byte, ok bool) {
	if y := rec.Time.Year(); y < 0 || y > 9999 || rec.Time.Location() != time.UTC {
		return b, false // Marshal's error, or a zone offset Marshal checks
	}
	start := len(b)
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, rec.Seq, 10)
	b = append(b, `,"time":"`...)
	b = rec.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","kind":`...)
	b = appendString(b, rec.Kind)
	b = appendField(b, `,"call_id":`, rec.CallID)
	b = appendField(b, `,"caller":`, rec.Caller)
	b = appendField(b, `,"role":`, rec.Role)
	b = appendField(b, `,"serial":`, rec.Serial)
	b = appendField(b, `,"remote":`, rec.Remote)
	b = appendField(b, `,"method":`, rec.Method)
	if len(rec.Args) > 0 {
		args, err := json.Marshal(rec.Args)
		if err != nil {
			return b[:start], false
		}
		b = append(b, `,"args":`...)
		b = append(b, args...)
	}
	b = appendField(b, `,"args_digest":`, rec.ArgsDigest)
	if len(rec.Targets) > 0 {
		b = append(b, `,"targets":[`...)
		for i, t := range rec.Targets {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, t)
		}
		b = append(b, ']')
	}
	b = appendField(b, `,"outcome":`, rec.Outcome)
	if rec.Code != 0 {
		b = append(b, `,"code":`...)
		b = strconv.AppendInt(b, int64(rec.Code), 10)
	}
	b = appendField(b, `,"error":`, rec.Error)
	if rec.Duration != 0 {
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendInt(b, int64(rec.Duration), 10)
	}
	b = appendField(b, `,"result_digest":`, rec.ResultDigest)
	if len(rec.Details) > 0 {
		b = append(b, `,"details":{`...)
		keys := make([]string, 0, len(rec.Details))
		for k := range rec.Details {
			keys = append(keys, k)
		}
		slices.Sort(keys) // Marshal sorts a map's keys
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, rec.Details[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"prev":`...)
	b = appendString(b, rec.Prev)
	b = append(b, `,"hash":`...)
	b = appendString(b, rec.Hash)
	return append(b, '}'), true
}

// appendField appends an omitempty string member.
func appendField(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	return appendString(append(b, key...), v)
}

// appendString appends s as Marshal quotes it. Printable ASCII other
// than the characters Marshal escapes (the quote, the backslash, and
// <, > and & for HTML) is copied; anything else (control characters,
// non-ASCII, invalid UTF-8) is left to Marshal.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
