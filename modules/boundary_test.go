package modules_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestModulesRunProcessesThroughProcrun keeps the process runner in one
// place: no module imports another module's package to run a program
// (only the registry, package modules, imports command, to register it).
func TestModulesRunProcessesThroughProcrun(t *testing.T) {
	const command = "github.com/gofunc/gofunc/modules/command"
	out, err := exec.Command("go", "list", "-e", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Skipf("go list is not available: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		if pkg == "github.com/gofunc/gofunc/modules" {
			continue
		}
		for imp := range strings.FieldsSeq(imports) {
			if imp == command {
				t.Errorf("%s imports %s; run processes with internal/procrun", pkg, command)
			}
		}
	}
}

// TestModulesDoNotImportSiblings keeps modules independent: what two
// modules share (the mount table, disk usage, wire numbers) lives in
// internal packages, and only the registry imports module packages.
func TestModulesDoNotImportSiblings(t *testing.T) {
	t.Parallel()
	const prefix = "github.com/gofunc/gofunc/modules/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		if pkg == "github.com/gofunc/gofunc/modules" {
			continue
		}
		for imp := range strings.FieldsSeq(imports) {
			if strings.HasPrefix(imp, prefix) && imp != pkg {
				t.Errorf("%s imports the module %s; share code through internal/", pkg, imp)
			}
		}
	}
}
