package clip

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestString(t *testing.T) {
	if got := String("short", 10); got != "short" {
		t.Errorf("String(short) = %q", got)
	}
	long := strings.Repeat(">", 60000)
	got := String(long, 64)
	if len(got) > 64+64 || !strings.HasPrefix(got, strings.Repeat(">", 64)+"…[60000 bytes, sha256:") {
		t.Errorf("String(60000 '>') = %q", got)
	}
	if String(long, 64) == String(long+"x", 64) {
		t.Error("two different long inputs clip to the same text")
	}
	if got := String(strings.Repeat("é", 40), 5); !utf8.ValidString(got) || !strings.HasPrefix(got, "éé…") {
		t.Errorf("a character was split: %q", got)
	}
}

func FuzzString(f *testing.F) {
	f.Add("hello", 3)
	f.Add(strings.Repeat("é", 10), 7)
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max < 0 || max > 1<<16 {
			return
		}
		got := String(s, max)
		if len(s) <= max && got != s {
			t.Fatalf("short input changed: %q -> %q", s, got)
		}
		if len(s) > max && len(got) > max+64 {
			t.Fatalf("clipped to %d bytes, want at most %d", len(got), max+64)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("valid input became invalid UTF-8: %q", got)
		}
	})
}
