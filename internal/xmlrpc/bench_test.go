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
