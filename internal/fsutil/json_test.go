package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJSONRoundTripAndLimits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.json")
	type entry struct{ Name string }
	var got entry
	if err := ReadJSON(path, 100, &got); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := WriteJSON(path, entry{Name: "web1"}, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(path, 100, &got); err != nil || got.Name != "web1" {
		t.Fatalf("read back %+v, %v", got, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	if err := os.WriteFile(path, []byte(`{"Name":"`+strings.Repeat("x", 200)+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(path, 100, &got); err == nil || !strings.Contains(err.Error(), "larger than 100 bytes") {
		t.Fatalf("oversized file: %v, want refused", err)
	}
	if err := os.WriteFile(path, []byte(`{"Name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ReadJSON(path, 100, &got); err == nil {
		t.Fatal("truncated JSON accepted")
	}
}
