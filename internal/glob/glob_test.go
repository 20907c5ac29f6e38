package glob

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"testing"
)

var cases = []struct {
	pattern, name string
	want          bool
}{
	{"*", "", true},
	{"*", "web1.example.com", true},
	{"web*", "web1", true},
	{"web*", "WEB1", true},
	{"WEB*", "web1", true},
	{"web*", "db1", false},
	{"web?", "web1", true},
	{"web?", "web12", false},
	{"web[0-9]", "web7", true},
	{"web[0-9]", "webx", false},
	{"web[!0-9]", "webx", true},
	{"web[!0-9]", "web7", false},
	{"web[", "web[", true},
	{"web[", "webx", false},
	{"[]]", "]", true},
	{"[!]]", "a", true},
	{"*.example.com", "a.b.example.com", true},
	{"a*b*c", "aXXbYYc", true},
	{"a*b*c", "aXXbYY", false},
	{"*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},
	{"", "", true},
	{"", "x", false},
	{"m1.test", "m1.test", true},
}

func TestMatch(t *testing.T) {
	for _, c := range cases {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

// TestAgainstPython checks Match against Python's fnmatch (on
// lower-cased input) for the table and some extra pairs.
func TestAgainstPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed: differential test against fnmatch skipped")
	}
	var pairs [][2]string
	for _, c := range cases {
		pairs = append(pairs, [2]string{c.pattern, c.name})
	}
	extra := []string{"a", "ab", "abc", "a-c", "[a-c]", "[!a]", "*[", "[*]", "?*?", "a]b", "[a-]", "[-a]"}
	for _, p := range extra {
		for _, n := range []string{"a", "b", "-", "]", "[", "*", "abc", "a]b", ""} {
			pairs = append(pairs, [2]string{p, n})
		}
	}
	in, _ := json.Marshal(pairs)
	script := `import fnmatch, json, sys
pairs = json.load(sys.stdin)
print(json.dumps([fnmatch.fnmatchcase(n.lower(), p.lower()) for p, n in pairs]))`
	cmd := exec.Command(py, "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	var want []bool
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, p := range pairs {
		if got := Match(p[0], p[1]); got != want[i] {
			t.Errorf("Match(%q, %q) = %v, fnmatch says %v", p[0], p[1], got, want[i])
		}
	}
}

func FuzzMatch(f *testing.F) {
	for _, c := range cases {
		f.Add(c.pattern, c.name)
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := Match(pattern, name)
		if !HasMeta(pattern) && got != (lower(pattern) == lower(name)) {
			t.Fatalf("literal pattern %q vs %q: %v", pattern, name, got)
		}
		if Match("*", name) != true {
			t.Fatalf("* does not match %q", name)
		}
	})
}
