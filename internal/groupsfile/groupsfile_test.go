package groupsfile

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"[web]\nhosts = web*;cache1\n",
		"# c\n; c\n[a]\nhost = x\nhosts = @b:y*\n[b]\nhosts = b[!0-9]*\n",
		"[empty]\n",
		"hosts = x\n",
		"[a\n",
		"[a]\n[a]\n",
		"[a]\nfoo = x\n",
		"[a]\nhosts = web 1\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadGroups) {
				t.Fatalf("error %v is not ErrBadGroups", err)
			}
			return
		}
		// Round trip: what Format writes, Parse reads back the same.
		out, err := Format(g)
		if err != nil {
			t.Fatalf("Format(%v): %v", g, err)
		}
		again, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("reparse %q: %v", out, err)
		}
		if !maps.Equal(g, again) {
			t.Fatalf("round trip: %v != %v", g, again)
		}
	})
}

// Edit adds and removes terms and groups; the file it writes parses
// back. Bad names and terms are refused before anything is written.
func TestEdit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "groups")
	if spec, err := Edit(path, "web", "web*;cache1", false); err != nil || spec != "web*;cache1" {
		t.Fatalf("add to a new file = %q, %v", spec, err)
	}
	if spec, err := Edit(path, "web", "db1.test;WEB*", false); err != nil || spec != "web*;cache1;db1.test" {
		t.Fatalf("add again = %q, %v (want no duplicate, any case)", spec, err)
	}
	if spec, err := Edit(path, "web", "web*;cache1", true); err != nil || spec != "db1.test" {
		t.Fatalf("remove terms = %q, %v", spec, err)
	}
	if _, err := Edit(path, "nosuch", "", true); !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("removing an unknown group: %v", err)
	}
	before, _ := os.ReadFile(path)
	for _, bad := range [][2]string{{"bad name", "x"}, {"web", "web 1"}, {"web", "web[1"}} {
		if _, err := Edit(path, bad[0], bad[1], false); !errors.Is(err, ErrBadSpec) {
			t.Errorf("Edit(%q, %q) = %v, want ErrBadSpec", bad[0], bad[1], err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a refused edit changed the file")
	}
	g, err := Load(path)
	if err != nil || !maps.Equal(g, map[string]string{"web": "db1.test"}) {
		t.Errorf("Load = %v, %v", g, err)
	}
	if _, err := Edit(path, "web", "", true); err != nil {
		t.Fatal(err)
	}
	if g, err := Load(path); err != nil || len(g) != 0 {
		t.Errorf("after removing the group: %v, %v", g, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want 0600", fi, err)
	}
}
