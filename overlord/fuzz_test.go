package overlord

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseFactFilter(f *testing.F) {
	for _, seed := range []string{"os=debian", "os=debian,arch=x86_64", "cpu_count>=4", "a!=b*", "x<1e3", "=", "a=", "a>b", ",,"} {
		f.Add(seed)
	}
	facts := map[string]any{"os": "debian", "cpu_count": int64(4), "load": 0.5, "ok": true}
	f.Fuzz(func(t *testing.T, expr string) {
		conds, err := parseFactFilter(expr)
		if err != nil {
			if !errors.Is(err, ErrBadFilter) {
				t.Fatalf("error %v is not ErrBadFilter", err)
			}
			return
		}
		for _, c := range conds {
			c.matches(facts) // must not panic
		}
		// The canonical text parses to the same conditions.
		again, err := parseFactFilter(formatConds(conds))
		if err != nil || len(again) != len(conds) {
			t.Fatalf("reparse %q: %v, %v", formatConds(conds), again, err)
		}
	})
}

func FuzzMatchSpec(f *testing.F) {
	for _, seed := range []string{"*", "web*;db1", "@g", "@g:w*", "web[!1]*", "@", ";;", "[", "@loop"} {
		f.Add(seed)
	}
	minions := []Minion{{Name: "web1.test"}, {Name: "web2.test"}, {Name: "db1.test"}}
	groups := map[string]string{"g": "web*", "loop": "@loop", "empty": ""}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := match(spec, minions, groups)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) && !errors.Is(err, ErrUnknownGroup) {
				t.Fatalf("match(%q): %v is neither ErrBadSpec nor ErrUnknownGroup", spec, err)
			}
			return
		}
		for k := range got {
			if k != strings.ToLower(k) {
				t.Fatalf("key %q is not lower-case", k)
			}
		}
	})
}
