package xmlrpc

import (
	"bytes"
	"io"
	"testing"
)

func smallCall(b *testing.B) []byte {
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "command.run", []string{"systemctl", "restart", "nginx"},
		map[string]any{"timeout": "30s", "cwd": "/"}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func largeCall(b *testing.B) []byte {
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "process.restore", processList(2000)); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// The decode benchmarks run each case through the decoder and through
// the encoding/xml decoder it replaced (oracle_test.go), side by side.

func benchDecodeCall(b *testing.B, body []byte, decode func(io.Reader, Limits) (*Call, error)) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		if _, err := decode(r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCall(b *testing.B) {
	for _, c := range []struct {
		name string
		body func(*testing.B) []byte
	}{{"small", smallCall}, {"2000procs", largeCall}} {
		b.Run(c.name, func(b *testing.B) { benchDecodeCall(b, c.body(b), DecodeCall) })
		b.Run(c.name+"-encoding-xml", func(b *testing.B) { benchDecodeCall(b, c.body(b), oracleDecodeCall) })
	}
}

func benchEncodeResponse(b *testing.B, v any) {
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, v); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := EncodeResponse(io.Discard, v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeResponse(b *testing.B) {
	b.Run("small", func(b *testing.B) {
		benchEncodeResponse(b, map[string]any{"rc": 0, "stdout": "active\n", "stderr": ""})
	})
	b.Run("2000procs", func(b *testing.B) { benchEncodeResponse(b, processList(2000)) })
	b.Run("2000procs-decoded", func(b *testing.B) {
		// The same list as a decoded value ([]any of map[string]any):
		// what a relay (or a round trip) encodes.
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, processList(2000)); err != nil {
			b.Fatal(err)
		}
		v, err := DecodeResponse(&buf, Limits{})
		if err != nil {
			b.Fatal(err)
		}
		benchEncodeResponse(b, v)
	})
}

// responseBody is what a minion answers for v.
func responseBody(b *testing.B, v any) []byte {
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, v); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

func benchDecodeResponse(b *testing.B, body []byte, decode func(io.Reader, Limits) (any, error)) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		if _, err := decode(r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeResponse decodes test.ping's answer (the warm path's
// per-host cost), a command.run result, and a 2000-process list (the
// "big answer" of a process listing; ~1.5 MB).
func BenchmarkDecodeResponse(b *testing.B) {
	cases := []struct {
		name  string
		value any
	}{
		{"ping", true},
		{"command", map[string]any{"rc": 0, "stdout": "Linux 6.1.0-18-amd64\n", "stderr": ""}},
		{"2000procs", processList(2000)},
	}
	for _, c := range cases {
		body := responseBody(b, c.value)
		b.Run(c.name, func(b *testing.B) { benchDecodeResponse(b, body, DecodeResponse) })
		b.Run(c.name+"-encoding-xml", func(b *testing.B) { benchDecodeResponse(b, body, oracleDecodeResponse) })
	}
}

// TestDecodeAllocations holds the warm path to its allocation budget:
// once the decoder pool is warm, a test.ping answer costs no allocation
// and a small command result only its values' own.
func TestDecodeAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop decoders")
	}
	tests := []struct {
		name  string
		value any
		max   float64
	}{
		{"ping", true, 0},
		// The map (2) and stdout (its bytes and its box); "" and a small
		// int need no allocation.
		{"command", map[string]any{"rc": 0, "stdout": "Linux 6.1.0-18-amd64\n", "stderr": ""}, 4},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := EncodeResponse(&buf, tt.value); err != nil {
			t.Fatal(err)
		}
		r := bytes.NewReader(nil)
		decode := func() {
			r.Reset(buf.Bytes())
			if _, err := DecodeResponse(r, Limits{}); err != nil {
				t.Fatal(err)
			}
		}
		decode() // warm the pool
		if got := testing.AllocsPerRun(100, decode); got > tt.max {
			t.Errorf("%s: %.1f allocations per decode, want at most %.0f", tt.name, got, tt.max)
		}
	}
}

// BenchmarkDecodeCallChunk decodes a copyfile.append call carrying a
// 4 MiB chunk: one long <base64> text.
func BenchmarkDecodeCallChunk(b *testing.B) {
	var buf bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4<<20/16)
	if err := EncodeCall(&buf, "copyfile.append", "id", int64(0), chunk, "digest"); err != nil {
		b.Fatal(err)
	}
	lim := Limits{MaxBytes: 64 << 20}
	b.Run("new", func(b *testing.B) {
		benchDecodeCall(b, buf.Bytes(), func(r io.Reader, _ Limits) (*Call, error) { return DecodeCall(r, lim) })
	})
	b.Run("encoding-xml", func(b *testing.B) {
		benchDecodeCall(b, buf.Bytes(), func(r io.Reader, _ Limits) (*Call, error) { return oracleDecodeCall(r, lim) })
	})
}
