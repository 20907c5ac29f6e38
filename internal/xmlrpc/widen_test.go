package xmlrpc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	kolo "github.com/kolo/xmlrpc"
)

func TestWidenInts(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"int32 max stays", "<value><int>2147483647</int></value>", "<value><int>2147483647</int></value>"},
		{"int32 min stays", "<value><int>-2147483648</int></value>", "<value><int>-2147483648</int></value>"},
		{"one past max", "<value><int>2147483648</int></value>", "<value><i8>2147483648</i8></value>"},
		{"one past min", "<value><int>-2147483649</int></value>", "<value><i8>-2147483649</i8></value>"},
		{"i4 (kolo's unsigned)", "<value><i4>4000000000</i4></value>", "<value><i8>4000000000</i8></value>"},
		{"several", "<int>1</int><int>1099511627776</int><string>x</string><i4>-8589934592</i4><int>2</int>",
			"<int>1</int><i8>1099511627776</i8><string>x</string><i8>-8589934592</i8><int>2</int>"},
		{"escaped text is not a tag", "<string>&lt;int&gt;99999999999&lt;/int&gt;</string>", "<string>&lt;int&gt;99999999999&lt;/int&gt;</string>"},
		{"beyond 64 bits: left for the decoder to refuse", "<int>99999999999999999999</int>", "<int>99999999999999999999</int>"},
		{"not a number", "<int>1e20</int>", "<int>1e20</int>"},
		{"unterminated", "<int>99999999999", "<int>99999999999"},
		{"i8 already", "<i8>99999999999</i8>", "<i8>99999999999</i8>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(widenInts([]byte(tt.in))); got != tt.want {
				t.Errorf("widenInts(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// Nothing to rewrite: the same bytes come back, not a copy.
	body := []byte("<value><int>5</int></value>")
	if got := widenInts(body); &got[0] != &body[0] {
		t.Errorf("widenInts copied a document it had nothing to change in")
	}
}

// FuzzWidenInts: any integer the overlord sends through kolo and
// widenInts arrives as itself, whatever else is in the call.
func FuzzWidenInts(f *testing.F) {
	f.Add(int64(1)<<40, uint64(4000000000), int32(-7), "<int>99999999999</int>")
	f.Add(int64(-1)<<63, uint64(1)<<63-1, int32(1)<<30, "")
	f.Fuzz(func(t *testing.T, n int64, u uint64, m int32, s string) {
		// Only characters XML can carry: kolo would escape the others
		// into references the decoder refuses, which is not the point.
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r >= 0x20 && isXMLChar(r) {
				return r
			}
			return -1
		}, s)
		if u > 1<<63-1 {
			u >>= 1 // beyond int64: refused by the decoder in any tag
		}
		type args struct {
			N int64  `xmlrpc:"n"`
			S string `xmlrpc:"s"`
		}
		body, err := kolo.EncodeMethodCall("test.echo", n, u, m, s, []any{n, m, u}, args{N: n, S: s})
		if err != nil {
			t.Fatal(err)
		}
		call, err := DecodeCall(bytes.NewReader(widenInts(body)), Limits{})
		if err != nil {
			t.Fatalf("DecodeCall(widenInts(%q)): %v", body, err)
		}
		want := []any{n, int64(u), int64(m), s, []any{n, int64(m), int64(u)}, map[string]any{"n": n, "s": s}}
		if diff := cmp.Diff(want, call.Params); diff != "" {
			t.Fatalf("(-sent +received):\n%s", diff)
		}
	})
}
