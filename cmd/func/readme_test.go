package main

import (
	"io"
	"testing"

	"github.com/gofunc/gofunc/internal/readmecheck"
)

// The README's func reference names every command and flag --help
// shows, and no flag func lacks.
func TestREADMEMatchesHelp(t *testing.T) {
	parser, err := newParser(&cli{}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	section, err := readmecheck.Section("## The func command line")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range readmecheck.Check(parser.Model, section) {
		t.Error(p)
	}
}
