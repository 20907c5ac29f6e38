package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// marshalled is the encoding the hash chain was defined by.
func marshalled(t testing.TB, rec Record) []byte {
	t.Helper()
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatalf("json.Marshal(%+v): %v", rec, err)
	}
	return b
}

// checkEncoding fails unless appendRecord writes exactly Marshal's bytes,
// or leaves rec to Marshal (and then leaves b as it was).
func checkEncoding(t testing.TB, rec Record) {
	t.Helper()
	prefix := []byte("prefix")
	got, ok := appendRecord(bytes.Clone(prefix), &rec)
	if !ok {
		if !bytes.Equal(got, prefix) {
			t.Fatalf("appendRecord declined %+v but changed b to %q", rec, got)
		}
		return
	}
	if want := marshalled(t, rec); !bytes.Equal(got[len(prefix):], want) {
		t.Fatalf("appendRecord(%+v)\n got %s\nwant %s", rec, got[len(prefix):], want)
	}
}

// trickyStrings are strings Marshal escapes or rewrites, and plain ones.
var trickyStrings = []string{"", "plain", "call.start", `a"b`, `back\slash`, "<script>&amp;</script>", "tab\there", "nl\n\r",
	"\x00\x01\x1f\x7f", "é ü 日本", "\u2028\u2029", "bad \xff\xfe utf8", "\xc3", "emoji 🙂", "sha256:" + string(bytes.Repeat([]byte("a"), 64))}

func randomString(r *rand.Rand) string {
	if r.IntN(3) > 0 {
		return trickyStrings[r.IntN(len(trickyStrings))]
	}
	b := make([]byte, r.IntN(40))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randomRecord(r *rand.Rand) Record {
	s := func() string {
		if r.IntN(2) == 0 {
			return ""
		}
		return randomString(r)
	}
	rec := Record{Seq: r.Uint64() >> r.IntN(64), Kind: randomString(r), CallID: s(), Caller: s(), Role: s(), Serial: s(),
		Remote: s(), Method: s(), ArgsDigest: s(), Outcome: s(), Error: s(), ResultDigest: s(), Prev: s(), Hash: s()}
	switch r.IntN(4) {
	case 0:
		rec.Time = time.Time{}.UTC()
	case 1:
		rec.Time = time.Unix(r.Int64N(1<<34), r.Int64N(1e9)).UTC()
	case 2:
		rec.Time = time.Date(r.IntN(10000), time.Month(1+r.IntN(12)), 1+r.IntN(28), r.IntN(24), r.IntN(60), r.IntN(60), r.IntN(4)*250_000_000, time.UTC)
	default:
		rec.Time = time.Now().UTC()
	}
	if r.IntN(2) == 0 {
		rec.Code = r.IntN(70000) - 35000
	}
	if r.IntN(2) == 0 {
		rec.Duration = time.Duration(r.Int64() >> r.IntN(63))
		if r.IntN(4) == 0 {
			rec.Duration = -rec.Duration
		}
	}
	for range r.IntN(3) {
		rec.Targets = append(rec.Targets, randomString(r))
	}
	if n := r.IntN(4); n > 0 {
		rec.Details = map[string]string{}
		for range n {
			rec.Details[randomString(r)] = randomString(r)
		}
	}
	if r.IntN(2) == 0 {
		args := []any{randomString(r), int64(r.IntN(1000)), r.Float64() * 1e6, true, nil, json.Number("12345678901234567890"),
			[]any{randomString(r), math.MaxInt64}, map[string]any{randomString(r): randomString(r), "z": 1.5}}
		rec.Args = args[:r.IntN(len(args)+1)]
	}
	return rec
}

// TestEncoderMatchesMarshal: the hand-written encoder writes Marshal's
// bytes for many random records (strings Marshal escapes, invalid UTF-8,
// every optional member present or not, args of every type a summary
// holds) and for the records the minion and overlord write.
func TestEncoderMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(16, 2026))
	for range 20000 {
		checkEncoding(t, randomRecord(r))
	}
	checkEncoding(t, benchRecord())
	checkEncoding(t, Record{Kind: KindCallEnd, Time: time.Now().UTC(), Outcome: OutcomeOK, Duration: 1234, ResultDigest: Digest("x")})
	// Left to Marshal: years it refuses, and zones other than UTC.
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2025, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))} {
		if _, ok := appendRecord(nil, &Record{Kind: "k", Time: tm}); ok {
			t.Errorf("appendRecord encoded time %v itself; want it left to Marshal", tm)
		}
	}
	// And encode still gives Marshal's result, error or line, for them.
	if _, _, err := encode(Record{Kind: "k", Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("encode of a year-10000 record: no error, want Marshal's")
	}
}

// FuzzEncoderMatchesMarshal: whatever the strings and numbers, the
// encoder writes Marshal's bytes.
func FuzzEncoderMatchesMarshal(f *testing.F) {
	for _, s := range trickyStrings {
		f.Add(s, s, "k", "v", int64(7), uint64(1), int64(0))
	}
	f.Fuzz(func(t *testing.T, kind, caller, key, val string, code int64, seq uint64, nanos int64) {
		rec := Record{Seq: seq, Time: time.Unix(0, nanos).UTC(), Kind: kind, Caller: caller, Error: val, Code: int(code),
			Duration: time.Duration(code), Targets: []string{key, val}, Details: map[string]string{key: val, val: key},
			Args: []any{caller, code, map[string]any{key: val}}, Prev: val, Hash: key}
		checkEncoding(t, rec)
	})
}

func BenchmarkEncode(b *testing.B) {
	rec := benchRecord()
	rec.Time, rec.Seq, rec.Prev = time.Now().UTC(), 12345, Digest("prev")[7:]
	b.Run("appendRecord", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := encode(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
