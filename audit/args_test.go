package audit

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

func sizeHash(s string) map[string]any {
	return map[string]any{"size": int64(len(s)), "sha256": sha256Hex([]byte(s))}
}

func TestSummarizeArgs(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6000 bytes, two per character
	docs := []gofunc.ArgDoc{{Name: "user"}, {Name: "password", Secret: true}, {Name: "body", Content: true}}
	when := time.Date(2025, 1, 1, 9, 0, 0, 0, time.FixedZone("X", 3600))
	tests := []struct {
		name string
		args []any
		docs []gofunc.ArgDoc
		want []any
	}{
		{"secret and content", []any{"alice", "hunter2", "file body"}, docs,
			[]any{"alice", Redacted, sizeHash("file body")}},
		{"content bytes", []any{"a", int64(1), []byte{0, 1, 2}}, docs,
			[]any{"a", Redacted, sizeHash("\x00\x01\x02")}},
		{"plain bytes at any depth", []any{[]any{[]byte("xy")}, map[string]any{"k": []byte("z")}}, nil,
			[]any{[]any{sizeHash("xy")}, map[string]any{"k": sizeHash("z")}}},
		{"long string", []any{long}, nil,
			[]any{map[string]any{"head": strings.Repeat("é", 2048), "size": int64(6000), "sha256": sha256Hex([]byte(long))}}},
		{"scalars", []any{nil, true, int64(math.MaxInt64), 1.5, math.NaN(), math.Inf(-1), when}, nil,
			[]any{nil, true, int64(math.MaxInt64), 1.5, "NaN", "-Inf", when.UTC()}},
		{"more args than docs", []any{"a", "b", "c", "d"}, docs[:1],
			[]any{"a", "b", "c", "d"}},
		{"go values", []any{[]string{"ls", "-l"}, struct{ N int }{3}, make(chan int)}, nil,
			[]any{[]any{"ls", "-l"}, map[string]any{"N": json.Number("3")}, map[string]any{"type": "chan int", "error": "not encodable"}}},
		{"none", nil, docs, []any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, digest := SummarizeArgs(tt.args, tt.docs)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("summary (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
				t.Errorf("digest %q is not sha256:<hex>", digest)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("summary does not encode: %v", err)
			}
		})
	}
}

// No arguments (nil or empty) take a shortcut that must give what the
// general path gives.
func TestSummarizeNoArgs(t *testing.T) {
	want := Digest(canonicalValue([]any{}))
	for _, args := range [][]any{nil, {}} {
		sum, digest := SummarizeArgs(args, nil)
		if len(sum) != 0 || sum == nil || digest != want || digest != "sha256:"+sha256Hex([]byte("[]")) {
			t.Errorf("SummarizeArgs(%#v) = %#v, %s; want an empty summary and %s", args, sum, digest, want)
		}
	}
}

func TestSummarizeArgsLongStringHead(t *testing.T) {
	s := "a" + strings.Repeat("€", 2000) // 6001 bytes; byte 4096 is inside a character
	sum, _ := SummarizeArgs([]any{s}, nil)
	head := sum[0].(map[string]any)["head"].(string)
	if !utf8.ValidString(head) || len(head) > MaxStringBytes || len(head) < MaxStringBytes-3 || !strings.HasPrefix(s, head) {
		t.Errorf("head is %d bytes, valid UTF-8 %v: want a prefix of at most %d bytes cut at a character", len(head), utf8.ValidString(head), MaxStringBytes)
	}
}

func TestSummarizeArgsBoundsHugeArgs(t *testing.T) {
	huge := make([]any, 5000)
	for i := range huge {
		huge[i] = int64(i)
	}
	sum, _ := SummarizeArgs([]any{huge}, nil)
	want := map[string]any{"size": int64(len(canonical(huge))), "sha256": sha256Hex(canonical(huge))}
	if diff := cmp.Diff(want, sum[0]); diff != "" {
		t.Errorf("huge argument summary (-want +got):\n%s", diff)
	}
}

func TestArgsDigest(t *testing.T) {
	docs := []gofunc.ArgDoc{{Name: "user"}, {Name: "password", Secret: true}, {Name: "body", Content: true}}
	_, base := SummarizeArgs([]any{"alice", "hunter2", "body"}, docs)
	if _, d := SummarizeArgs([]any{"alice", "other secret", "body"}, docs); d != base {
		t.Error("the digest depends on a secret argument: it could be used to test guesses")
	}
	if _, d := SummarizeArgs([]any{"alice", "hunter2", "bodY"}, docs); d == base {
		t.Error("the digest does not cover Content arguments")
	}
	if _, d := SummarizeArgs([]any{"bob", "hunter2", "body"}, docs); d == base {
		t.Error("the digest does not cover plain arguments")
	}
	if want := Digest([]any{"alice", Redacted, "body"}); base != want {
		t.Errorf("digest = %s, want Digest of the args with secrets redacted, %s", base, want)
	}
	long := strings.Repeat("x", 10000)
	_, d1 := SummarizeArgs([]any{long}, nil)
	_, d2 := SummarizeArgs([]any{long[:9999] + "y"}, nil)
	if d1 == d2 {
		t.Error("the digest covers only the summary of a long string, not the string")
	}
}

func TestDigestCanonicalEncoding(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{[]any{int64(1), "a", []byte{1, 2}}, `[1,"a",{"$base64":"AQI="}]`},
		{map[string]any{"b": 1.5, "a": math.NaN()}, `{"a":"NaN","b":1.5}`},
		{time.Date(2025, 1, 1, 10, 0, 0, 5, time.FixedZone("X", 3600)), `"2025-01-01T09:00:00.000000005Z"`},
		{"<&>", `"\u003c\u0026\u003e"`},
	}
	for _, tt := range tests {
		if got, want := Digest(tt.v), "sha256:"+sha256Hex([]byte(tt.want)); got != want {
			t.Errorf("Digest(%#v) = %s, want the SHA-256 of %s (%s)", tt.v, got, tt.want, want)
		}
	}
	if Digest([]byte("AQI=")) == Digest("AQI=") {
		t.Error("bytes and the string of their base64 digest alike")
	}
}

func TestSecretsStayOutOfTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openLog(t, path, Config{})
	args, digest := SummarizeArgs([]any{"alice", "hunter2-secret", []byte("binary-blob"), "content-body"},
		[]gofunc.ArgDoc{{Name: "user"}, {Name: "pw", Secret: true}, {Name: "blob"}, {Name: "body", Content: true}})
	mustAppend(t, l, Record{Kind: KindCallStart, Method: "users.passwd", Args: args, ArgsDigest: digest})
	l.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2-secret", "binary-blob", "content-body", "YmluYXJ5LWJsb2I="} {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the log file contains %q", secret)
		}
	}
	if !bytes.Contains(data, []byte(`"alice"`)) || !bytes.Contains(data, []byte(Redacted)) {
		t.Errorf("the log file lacks the plain argument or the redaction mark: %s", data)
	}
}

// Hundreds of large arguments still make a record that fits: the
// arguments past MaxArgsBytes are folded into one digest entry, and the
// args digest still covers them all.
func TestSummarizeArgsBoundsTheTotal(t *testing.T) {
	args := make([]any, 300)
	for i := range args {
		args[i] = strings.Repeat(string(rune('a'+i%26)), MaxStringBytes+1)
	}
	summary, digest := SummarizeArgs(args, nil)
	if digest != Digest(args) {
		t.Errorf("digest %s does not cover every argument", digest)
	}
	more, ok := summary[len(summary)-1].(map[string]any)
	if !ok || more["more_args"] == nil {
		t.Fatalf("last summary entry = %v, want the folded rest", summary[len(summary)-1])
	}
	kept := len(summary) - 1
	if n := more["more_args"].(int64); kept+int(n) != len(args) || kept == 0 {
		t.Errorf("kept %d summaries and folded %d, want %d in all", kept, n, len(args))
	}
	rest := canonical(args[kept:])
	if more["sha256"] != sha256Hex(rest) || more["size"] != int64(len(rest)) {
		t.Errorf("folded entry %v does not describe the rest", more)
	}
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(Record{Kind: KindCallStart, Args: summary, ArgsDigest: digest}); err != nil {
		t.Errorf("Append of 300 large arguments: %v", err)
	}
}
