package web

import (
	"math"
	"strings"
	"testing"
	"time"
)

// parseWhen never panics, and a time it reads from a duration or a day
// count is not after now.
func FuzzParseWhen(f *testing.F) {
	for _, s := range []string{"", "2h", "3d", "90m", "2026-01-02", "2026-01-02T15:04", "2026-01-02T15:04:05Z", "-1d", "1e9h", "99999999999d"} {
		f.Add(s)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseWhen(s, now)
		if err != nil || strings.TrimSpace(s) == "" {
			return
		}
		_, derr := time.ParseDuration(strings.TrimSpace(s))
		if (derr == nil || strings.HasSuffix(strings.TrimSpace(s), "d")) && got.After(now) {
			t.Errorf("parseWhen(%q) = %v, after now", s, got)
		}
	})
}

// convertArg never panics and gives the argument's type: int64 for
// int, a finite float64 for double, bool for boolean, the text for
// string.
func FuzzConvertArg(f *testing.F) {
	for _, c := range [][2]string{{"int", "42"}, {"double", "NaN"}, {"double", "1e400"}, {"boolean", "on"},
		{"string", "x"}, {"list", "[1, 2.5, \"a\"]"}, {"struct", `{"a": {"b": [1]}}`}, {"any", "plain text"}, {"list", "[1] 2"}} {
		f.Add(c[0], c[1])
	}
	f.Fuzz(func(t *testing.T, typ, v string) {
		got, err := convertArg(argInfo{Type: typ}, v)
		if err != nil {
			return
		}
		switch typ {
		case "int":
			if _, ok := got.(int64); !ok {
				t.Errorf("int %q gave %T", v, got)
			}
		case "double":
			x, ok := got.(float64)
			if !ok || math.IsNaN(x) || math.IsInf(x, 0) {
				t.Errorf("double %q gave %T %v", v, got, got)
			}
		case "boolean":
			if _, ok := got.(bool); !ok {
				t.Errorf("boolean %q gave %T", v, got)
			}
		case "string":
			if got != v {
				t.Errorf("string %q gave %v", v, got)
			}
		}
	})
}

// unquote reads one word as a POSIX shell would, for the quoting
// shellQuote produces: bare characters, '...' and \'.
func unquote(w string) (string, bool) {
	var b strings.Builder
	for w != "" {
		switch {
		case w[0] == '\\' && len(w) > 1:
			b.WriteByte(w[1])
			w = w[2:]
		case w[0] == '\'':
			end := strings.IndexByte(w[1:], '\'')
			if end < 0 {
				return "", false
			}
			b.WriteString(w[1 : 1+end])
			w = w[2+end:]
		case strings.ContainsRune(" \t\n\"$`\\|&;<>()*?[]#~!{}", rune(w[0])):
			return "", false // the shell would read this character itself
		default:
			b.WriteByte(w[0])
			w = w[1:]
		}
	}
	return b.String(), true
}

// "Copy as CLI" gives each argument back to the shell as it was.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "it's", "$HOME", "a b", "'", "''", "*", "web*;@db", "x\ny", "ü"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := shellQuote(s)
		if got, ok := unquote(q); !ok || got != s {
			t.Errorf("shellQuote(%q) = %s, which the shell reads as %q (ok %v)", s, q, got, ok)
		}
	})
}

// naturalCompare is an order: antisymmetric, and equal for equal names.
func FuzzNaturalCompare(f *testing.F) {
	for _, p := range [][2]string{{"m2", "m10"}, {"a01", "a1"}, {"", "0"}, {"web9.x", "web10.x"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if naturalCompare(a, a) != 0 {
			t.Errorf("naturalCompare(%q, %q) != 0", a, a)
		}
		if x, y := naturalCompare(a, b), naturalCompare(b, a); x != -y && !(x > 0 && y < 0 || x < 0 && y > 0) {
			t.Errorf("naturalCompare(%q, %q) = %d but (%q, %q) = %d", a, b, x, b, a, y)
		}
	})
}
