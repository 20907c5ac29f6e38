package events

import (
	"bytes"
	"errors"
	"testing"

	"github.com/gofunc/gofunc/internal/hashchain"
)

func sealForTest(body []byte) ([]byte, string, error) { return hashchain.Seal(body) }

// FuzzParseLine: never panics; every error is ErrMalformed or
// ErrTampered; an accepted line re-encodes to itself.
func FuzzParseLine(f *testing.F) {
	j, err := Open(f.TempDir(), Config{})
	if err != nil {
		f.Fatal(err)
	}
	j.Lifecycle(Lifecycle{Phase: PhaseStarted, Version: "1"})
	j.Emit("disk root", &NagiosState{Plugin: "check_disk", State: "WARNING", Perfdata: []Perf{{Label: "/", Value: 1.5}}})
	b, _ := j.Since(Request{})
	j.Close()
	for _, l := range b.Lines {
		f.Add([]byte(l))
		f.Add([]byte(l[:len(l)/2]))
		f.Add(bytes.Replace([]byte(l), []byte(`"seq":`), []byte(`"minion":"x","seq":`), 1))
	}
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := ParseLine(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTampered) {
				t.Fatalf("ParseLine error %v is neither ErrMalformed nor ErrTampered", err)
			}
			return
		}
		again, err := e.Line()
		if err != nil || !bytes.Equal(again, bytes.TrimSuffix(line, []byte("\n"))) {
			t.Fatalf("accepted a line that is not in canonical form: %q, %v", line, err)
		}
	})
}

// FuzzParseCursors: never panics; what parses prints back the same.
func FuzzParseCursors(f *testing.F) {
	f.Add("")
	f.Add("db1=0")
	f.Add("a=3.00112233445566778899aabbccddeeff.0000000000000000000000000000000000000000000000000000000000000000,b=0")
	f.Add("a=1.x.y")
	f.Fuzz(func(t *testing.T, s string) {
		cs, err := ParseCursors(s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("error %v is not ErrBadCursor", err)
			}
			return
		}
		if cs.String() != s {
			back, err := ParseCursors(cs.String())
			if err != nil || back.String() != cs.String() {
				t.Fatalf("%q parses to %q which does not round-trip: %v", s, cs.String(), err)
			}
		}
	})
}
