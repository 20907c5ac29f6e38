package gofunc_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The package list is the architecture: these imports must never
// appear, checked with go list -deps rather than hoped for.
func TestBoundaries(t *testing.T) {
	forbid := map[string][]string{
		"./overlord": {"/minion", "/modules"},
		"./minion":   {"/overlord", "/modules"},
		"./ca":       {"/minion", "/overlord", "/modules"},
		"./audit":    {"/minion", "/overlord", "/ca", "/modules"},
		"./modules":  {"/overlord", "/minion", "/ca"},
		".":          {"/minion", "/overlord", "/ca", "/audit", "/modules"},
	}
	for pkg, bad := range forbid {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range bad {
				if strings.HasPrefix(dep, "github.com/gofunc/gofunc"+b) {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
