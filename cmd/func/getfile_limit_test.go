package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --max-size refuses a host's file larger than it before a byte is
// written, and says why.
func TestGetfileMaxSize(t *testing.T) {
	_, dir := fleetDir(t, 1)
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, []byte(strings.Repeat("y", 2<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o := runFunc(t, "", "--dir", dir, "--json", "*", "getfile", "--max-size", "1MiB", src, out).want(t, exitFailed)
	if !strings.Contains(o.stdout, "over the limit of 1048576 bytes") {
		t.Errorf("no size refusal in the output:\n%s", o.stdout)
	}
	if entries, _ := os.ReadDir(filepath.Join(out, "m1.test")); len(entries) != 0 {
		t.Errorf("files written: %v", entries)
	}
	runFunc(t, "", "--dir", dir, "*", "getfile", "--max-size", "2MiB", src, out).want(t, exitOK)
}
