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

func benchDecodeCall(b *testing.B, body []byte) {
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		if _, err := DecodeCall(r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCall(b *testing.B) {
	b.Run("small", func(b *testing.B) { benchDecodeCall(b, smallCall(b)) })
	b.Run("2000procs", func(b *testing.B) { benchDecodeCall(b, largeCall(b)) })
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

func BenchmarkDecodeResponse(b *testing.B) {
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, processList(2000)); err != nil {
		b.Fatal(err)
	}
	body := buf.Bytes()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	r := bytes.NewReader(body)
	for b.Loop() {
		r.Reset(body)
		if _, err := DecodeResponse(r, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
