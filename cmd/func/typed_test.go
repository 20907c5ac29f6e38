package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestTransmitTyped sends every XML-RPC type through test.echo on real
// minions and reads the answer back: the values arrive as they were
// sent, types included, which plain JSON cannot do (binary comes back
// as a string, 2.0 as 2).
func TestTransmitTyped(t *testing.T) {
	_, dir := fleetDir(t, 2)
	const value = `{
		"big": 4398046511104, "neg": -9007199254740993, "small": 7,
		"yes": true, "no": false, "float": 2.0, "tiny": 1e-300, "text": "ünï <&>",
		"bin": {"$binary": "AAEC/4CBgg=="}, "when": {"$datetime": "2026-12-07T10:02:03+01:00"},
		"nested": [[1, {"deep": [{"$binary": ""}]}], {}, []],
		"dollar": {"$map": {"$binary": "not base64: a struct member"}}
	}`
	req := `{"spec": "*", "module": "test", "method": "echo", "typed": true, "args": [` + value + `]}`
	o := runFunc(t, req, "--dir", dir, "transmit").want(t, exitOK)
	var got map[string]struct {
		OK    bool            `json:"ok"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || len(got) != 2 {
		t.Fatalf("transmit: %v\n%s", err, o.stdout)
	}
	// The answer in typed JSON: dates in UTC, the double with its
	// fraction, the binary tagged, the "$" struct wrapped again.
	want := normalizeJSON(t, `{
		"big": 4398046511104, "neg": -9007199254740993, "small": 7,
		"yes": true, "no": false, "float": 2.0, "tiny": 1e-300, "text": "ünï <&>",
		"bin": {"$binary": "AAEC/4CBgg=="}, "when": {"$datetime": "2026-12-07T09:02:03Z"},
		"nested": [[1, {"deep": [{"$binary": ""}]}], {}, []],
		"dollar": {"$map": {"$binary": "not base64: a struct member"}}
	}`)
	for host, r := range got {
		if !r.OK || normalizeJSON(t, string(r.Value)) != want {
			t.Errorf("%s: ok=%v value\n%s\nwant\n%s", host, r.OK, r.Value, want)
		}
		if !bytes.Contains(r.Value, []byte(`"float": 2.0`)) {
			t.Errorf("%s: the double lost its fraction: %s", host, r.Value)
		}
	}
	// Without "typed", the same answer is plain JSON, as --json prints.
	plain := `{"spec": "m1*", "module": "test", "method": "echo", "args": [{"b": {"$binary": "AAE="}, "f": 2.0}]}`
	o = runFunc(t, plain, "--dir", dir, "transmit").want(t, exitOK)
	if !strings.Contains(o.stdout, `"$binary": "AAE="`) || !strings.Contains(o.stdout, `"f": 2`+"\n") {
		t.Errorf("untyped transmit:\n%s", o.stdout)
	}
}

// normalizeJSON re-indents a JSON document with its numbers as written.
func normalizeJSON(t *testing.T, s string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%v:\n%s", err, s)
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestTransmitTypedErrors(t *testing.T) {
	_, dir := fleetDir(t, 1)
	for args, msg := range map[string]string{
		`[{"$binary": "***"}]`:                      "not standard base64",
		`[{"$binary": 7}]`:                          "wants a base64 string, got a number",
		`[{"$datetime": "yesterday"}]`:              "not an RFC 3339 time",
		`[{"$datetime": "2026-12-07T10:00:00.5Z"}]`: "fraction of a second",
		`[{"$map": [1]}]`:                           "wants an object, got a list",
		`[[{"$decimal": "1.5"}]]`:                   `[0]: unknown tag \"$decimal`,
		`[{"a": {"$b": 1}}]`:                        `a: unknown tag \"$b`,
	} {
		req := `{"spec": "*", "module": "test", "method": "echo", "typed": true, "args": ` + args + `}`
		o := runFunc(t, req, "--dir", dir, "transmit").want(t, exitUsage)
		if !strings.Contains(o.stdout, `"field": "args"`) || !strings.Contains(o.stdout, msg) {
			t.Errorf("%s: %s", args, o.stdout)
		}
	}
	o := runFunc(t, `{"spec": "*", "module": "test", "method": "ping", "typed": "yes"}`, "--dir", dir, "transmit").want(t, exitUsage)
	if !strings.Contains(o.stdout, `"field": "typed"`) {
		t.Errorf("typed: \"yes\": %s", o.stdout)
	}
}

// TestTypedValueRoundTrip: what typedValue writes, decodeArgs reads
// back as the same value, for every type the overlord decodes.
func TestTypedValueRoundTrip(t *testing.T) {
	when := time.Date(2026, 12, 7, 10, 2, 3, 0, time.UTC)
	v := []any{int64(1) << 40, -2.0, 0.5, true, "s", []byte{0, 255}, []byte{}, when,
		[]any{map[string]any{"$x": int64(1)}, map[string]any{"$x": int64(1), "y": false}}}
	b, err := json.Marshal(typedValue(v))
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeArgs(b, true)
	if err != nil {
		t.Fatalf("decodeArgs(%s): %v", b, err)
	}
	if diff := cmp.Diff(v, got); diff != "" {
		t.Errorf("round trip through %s (-sent +read):\n%s", b, diff)
	}
}

// FuzzReadTransmit: no request panics readTransmit, and the args of a
// typed request read back the same after typedValue writes them.
func FuzzReadTransmit(f *testing.F) {
	f.Add([]byte(`{"spec": "*", "module": "test", "method": "echo", "typed": true, "args": [{"$binary": "AAE="}, 2.0, {"$map": {"$x": 1}}]}`))
	f.Add([]byte(`{"spec": "*", "module": "test", "method": "add", "args": [1, 2], "timeout": "5s", "exclude": ["m2*"]}`))
	f.Add([]byte(`{"spec": "*", "module": "m", "method": "x", "typed": true, "args": [{"$datetime": "2026-01-02T03:04:05Z"}, [{"a": {"$binary": ""}}]]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := readTransmit(bytes.NewReader(body))
		if err != nil || !req.Typed {
			return
		}
		b, err := json.Marshal(typedValue(req.Args))
		if err != nil {
			t.Fatalf("typed args do not encode: %v", err)
		}
		again, err := decodeArgs(b, true)
		if err != nil {
			t.Fatalf("decodeArgs(%s): %v", b, err)
		}
		if diff := cmp.Diff(req.Args, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip through %s:\n%s", b, diff)
		}
	})
}
