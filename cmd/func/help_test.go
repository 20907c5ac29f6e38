package main

import (
	"io"
	"strings"
	"testing"
)

// Every command's --help shows an example; the global flags are listed
// apart from the command's own, in their groups; --dir states its
// default.
func TestHelpHasExamples(t *testing.T) {
	parser, err := newParser(&cli{}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(parser.Model.Detail, "Examples:") {
		t.Error("func --help has no example")
	}
	for _, leaf := range parser.Model.Leaves(true) {
		if !strings.Contains(leaf.Detail, "Examples:\n\n") {
			t.Errorf("func %s --help has no example: give its command type a Help() method (see cli.go)", leaf.Path())
		}
	}
	o := runFunc(t, "", "x", "call", "--help").want(t, exitOK)
	own := strings.Index(o.stdout, "Flags:")
	strs := strings.Index(o.stdout, "--strings             Send every")
	global := strings.Index(o.stdout, "Identity (global):")
	output := strings.Index(o.stdout, "Output (global):")
	if own < 0 || strs < own || global < strs || output < global || !strings.Contains(o.stdout, "(default: $GOFUNC_DIR, else ~/.gofunc)") {
		t.Errorf("call --help: own flags, then the global groups, and --dir's default:\n%s", o.stdout)
	}
}
