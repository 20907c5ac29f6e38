package users

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fakeTool writes an executable script standing in for a system tool: it
// records its argv, prints stdout and exits with exitCode. argv returns
// what the last run received (nil if it never ran).
func fakeTool(t *testing.T, name, stdout string, exitCode int) (bin string, argv func() []string) {
	t.Helper()
	dir := t.TempDir()
	bin = filepath.Join(dir, name)
	if err := os.WriteFile(filepath.Join(dir, "stdout"), []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\0' \"$0\" \"$@\" > %q/argv\ncat %q/stdout\nexit %d\n", dir, dir, exitCode)
	if err := os.WriteFile(bin, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return bin, func() []string {
		b, err := os.ReadFile(filepath.Join(dir, "argv"))
		if err != nil {
			return nil
		}
		var out []string
		for _, f := range bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0}) {
			out = append(out, string(f))
		}
		return out
	}
}
