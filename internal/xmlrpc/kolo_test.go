package xmlrpc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
	kolo "github.com/kolo/xmlrpc"
)

// The overlord speaks through github.com/kolo/xmlrpc: what it sends must
// decode here, and what the minion answers must decode there.

func TestKoloCallDecodes(t *testing.T) {
	type host struct {
		Name  string `xmlrpc:"name"`
		Port  int    `xmlrpc:"port"`
		Owner *string
		Tags  []string `xmlrpc:"tags"`
	}
	when := time.Date(2026, 11, 3, 14, 5, 6, 0, time.UTC)
	body, err := kolo.EncodeMethodCall("command.run",
		int64(1)<<40,            // kolo sends it as <int>: beyond 32 bits
		-int64(1)<<33,           //
		uint32(4000000000),      // kolo: <i4> beyond int32
		kolo.Base64("aGVsbG8="), // the way to send bytes
		[]byte("hi"),            // kolo's quirk: an array of ints
		when,
		true, 2.5, "a<b>&c",
		host{Name: "web1", Port: 443, Tags: []string{"a", "b"}},
		map[string]any{"nested": map[string]any{"list": []any{1, "x", map[string]int{"k": 2}}}},
		[]any{nil, 1},
		nil,
	)
	if err != nil {
		t.Fatal(err)
	}
	// As kolo wrote it, the call is refused: <int> and <i4> are 32 bits.
	_, err = DecodeCall(bytes.NewReader(body), Limits{})
	if !errors.Is(err, gofunc.ErrInvalid) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("DecodeCall of kolo's <int> beyond 32 bits = %v, want CodeInvalid, out of range", err)
	}
	// As the overlord sends it, widened.
	call, err := DecodeCall(bytes.NewReader(widenInts(body)), Limits{})
	if err != nil {
		t.Fatalf("DecodeCall(%s): %v", widenInts(body), err)
	}
	want := &Call{Method: "command.run", Params: []any{
		int64(1) << 40,
		-int64(1) << 33,
		int64(4000000000),
		[]byte("hello"),
		[]any{int64('h'), int64('i')},
		when,
		true, 2.5, "a<b>&c",
		// kolo keeps Go field names without a tag and sends a nil
		// pointer as <value/>, which the spec reads as "".
		map[string]any{"name": "web1", "port": int64(443), "Owner": "", "tags": []any{"a", "b"}},
		map[string]any{"nested": map[string]any{"list": []any{int64(1), "x", map[string]any{"k": int64(2)}}}},
		// A nil inside a slice is also <value/>; a nil argument is an
		// empty <param>, decoded as nil.
		[]any{"", int64(1)},
		nil,
	}}
	if diff := cmp.Diff(want, call); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// kolo's []byte quirk still converts into a []byte parameter.
	b, err := Convert(call.Params[4], reflect.TypeFor[[]byte]())
	if err != nil || string(b.Bytes()) != "hi" {
		t.Errorf("Convert(kolo []byte) = %v, %v", b, err)
	}
}

func TestKoloReadsResponses(t *testing.T) {
	type proc struct {
		PID     int64     `xmlrpc:"pid"`
		Cmdline []string  `xmlrpc:"cmdline"`
		CPU     float64   `xmlrpc:"cpu_percent"`
		Started time.Time `xmlrpc:"started"`
		Raw     string    `xmlrpc:"raw"` // kolo reads <base64> as its text
		Up      bool      `xmlrpc:"up"`
		Parent  *int      `xmlrpc:"parent"`
	}
	type result struct {
		Host  string `xmlrpc:"host"`
		Procs []proc `xmlrpc:"procs"`
		Big   int64  `xmlrpc:"big"`
	}
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sent := map[string]any{
		"host": "web1",
		"big":  int64(1) << 42,
		"procs": []map[string]any{
			{"pid": 1, "cmdline": []string{"init"}, "cpu_percent": 0.25, "started": started, "raw": []byte("hi"), "up": true, "parent": nil},
		},
	}
	var buf bytes.Buffer
	if err := EncodeResponse(&buf, sent); err != nil {
		t.Fatal(err)
	}
	resp := kolo.Response(buf.Bytes())
	if err := resp.Err(); err != nil {
		t.Fatalf("kolo sees a fault: %v", err)
	}
	var got result
	if err := resp.Unmarshal(&got); err != nil {
		t.Fatalf("kolo Unmarshal(%s): %v", buf.Bytes(), err)
	}
	want := result{Host: "web1", Big: 1 << 42, Procs: []proc{
		// kolo allocates a pointer before it reads the value: <nil/>
		// into a *int gives a pointer to 0, not nil.
		{PID: 1, Cmdline: []string{"init"}, CPU: 0.25, Started: started, Raw: "aGk=", Up: true, Parent: ptr(0)},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kolo typed (-want +got):\n%s", diff)
	}

	var loose any
	if err := resp.Unmarshal(&loose); err != nil {
		t.Fatalf("kolo Unmarshal into any: %v", err)
	}
	m, _ := loose.(map[string]any)
	if m["big"] != int64(1)<<42 || m["host"] != "web1" {
		t.Errorf("kolo untyped = %#v", loose)
	}
}

func TestKoloReadsFaults(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFault(&buf, gofunc.Errorf(gofunc.CodeDenied, "overlord alice may not call command.run")); err != nil {
		t.Fatal(err)
	}
	err := kolo.Response(buf.Bytes()).Err()
	var fe kolo.FaultError
	if !errors.As(err, &fe) {
		t.Fatalf("kolo Err() = %v (%T), want a FaultError", err, err)
	}
	if fe.Code != int(gofunc.CodeDenied) || fe.String != "overlord alice may not call command.run" {
		t.Errorf("kolo fault = %+v", fe)
	}
}
