package main

import (
	"testing"

	"github.com/alecthomas/kong"

	"github.com/gofunc/gofunc/internal/readmecheck"
)

// The README's funcd reference names every flag --help shows, and no
// flag funcd lacks.
func TestREADMEMatchesHelp(t *testing.T) {
	parser, err := kong.New(&cli{}, kong.Name("funcd"))
	if err != nil {
		t.Fatal(err)
	}
	section, err := readmecheck.Section("## certmaster and funcd reference")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range readmecheck.Check(parser.Model, readmecheck.Lines(section, "funcd")) {
		t.Error(p)
	}
}
