package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// Every command's --help shows an example, and bare `certmaster` prints
// the usage (exit 2) instead of complaining about --dir.
func TestHelpHasExamples(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Name("certmaster"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leaf := range parser.Model.Leaves(true) {
		if !strings.Contains(leaf.Detail, "Examples:\n\n    certmaster") {
			t.Errorf("certmaster %s --help has no example: give its command type a Help() method (see help.go)", leaf.Path())
		}
	}
	var out, errOut bytes.Buffer
	if code := run(t.Context(), nil, &out, &errOut); code != exitUsage || out.Len() != 0 ||
		!strings.Contains(errOut.String(), "Usage: certmaster") || !strings.Contains(errOut.String(), "issue-overlord") {
		t.Errorf("bare certmaster: exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}
