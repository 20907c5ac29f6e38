package xmlrpc

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
)

// EncodeRequest sends what kolo would send wrongly in a form this
// package's decoder (and so every gofunc server) reads right.
func TestEncodeRequestFixesKolo(t *testing.T) {
	t.Parallel()
	body, err := EncodeRequest("copyfile.write", []byte("hi\x00"),
		[]any{[]byte{1, 2}}, map[string]any{"data": []byte("x")}, int64(1)<<40)
	if err != nil {
		t.Fatal(err)
	}
	call, err := DecodeCall(bytes.NewReader(body), Limits{})
	if err != nil {
		t.Fatalf("DecodeCall(%s): %v", body, err)
	}
	want := []any{[]byte("hi\x00"), []any{[]byte{1, 2}}, map[string]any{"data": []byte("x")}, int64(1) << 40}
	if call.Method != "copyfile.write" || !cmp.Equal(call.Params, want) {
		t.Errorf("decoded %s %#v, want %#v", call.Method, call.Params, want)
	}
	// A member name cannot change the document's structure.
	injected := map[string]any{"a</name><value><string>x</string></value></member><member><name>env": "v"}
	body, err = EncodeRequest("command.run", injected)
	if err != nil {
		t.Fatal(err)
	}
	if call, err := DecodeCall(bytes.NewReader(body), Limits{}); err != nil || !cmp.Equal(call.Params, []any{injected}) {
		t.Errorf("a member name with markup decoded as %#v, %v; want it unchanged", call.Params, err)
	}
	if _, err := EncodeRequest("test.ping", map[string]any{"\x00": 1}); err == nil {
		t.Error("a member name XML cannot carry was sent")
	}
	for _, args := range [][]any{{nil}, {[]any{1, nil}}, {map[string]any{"k": nil}}} {
		if _, err := EncodeRequest("test.ping", args...); err == nil || !strings.Contains(err.Error(), "nil cannot be sent") {
			t.Errorf("EncodeRequest(%v) = %v, want a refusal of nil", args, err)
		}
	}
}

// Unmarshal is Convert with one difference: members the target has no
// field for are ignored, not refused.
func TestUnmarshal(t *testing.T) {
	t.Parallel()
	type stat struct {
		Type    string
		Size    int64
		SHA256  string `xmlrpc:"sha256"`
		Changed time.Time
	}
	when := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	value := map[string]any{"type": "file", "size": int64(3), "sha256": "ab", "changed": when, "mode": int64(0o644), "owner": "root"}
	var got stat
	if err := Unmarshal(value, &got); err != nil {
		t.Fatal(err)
	}
	if want := (stat{"file", 3, "ab", when}); got != want {
		t.Errorf("Unmarshal = %+v, want %+v", got, want)
	}
	var list []stat
	if err := Unmarshal([]any{value, map[string]any{"extra": true}}, &list); err != nil || len(list) != 2 || list[0] != got {
		t.Errorf("Unmarshal into a slice = %+v, %v", list, err)
	}
	// Arguments stay strict.
	if _, err := Convert(value, reflect.TypeFor[stat]()); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Convert with extra members = %v, want bad arguments", err)
	}
	// Known members are still checked.
	if err := Unmarshal(map[string]any{"size": "big"}, &got); !errors.Is(err, gofunc.ErrBadArgs) || !strings.Contains(err.Error(), "size") {
		t.Errorf("Unmarshal of a wrong type = %v, want a bad-arguments fault naming size", err)
	}
	for _, v := range []any{got, (*stat)(nil), nil} {
		if err := Unmarshal(value, v); err == nil {
			t.Errorf("Unmarshal into %T succeeded", v)
		}
	}
}
