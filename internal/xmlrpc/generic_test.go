package xmlrpc

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodeEncoded is what a peer decodes from EncodeCall(v).
func decodeEncoded(t testing.TB, v any) (any, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "m.x", v); err != nil {
		return nil, err
	}
	call, err := DecodeCall(&buf, Limits{MaxBytes: int64(buf.Len()) + 1})
	if err != nil {
		t.Fatalf("DecodeCall of what EncodeCall wrote: %v", err)
	}
	return call.Params[0], nil
}

type genericInner struct {
	Token string `xmlrpc:"token"`
}

type genericOuter struct {
	*genericInner
	Name     string            `xmlrpc:"name"`
	Skip     string            `xmlrpc:"-"`
	Empty    string            `xmlrpc:"empty,omitempty"`
	When     time.Time         `xmlrpc:"when,omitempty"`
	Env      any               `xmlrpc:"env"`
	Addr     netip.Addr        `xmlrpc:"addr"`
	Ptr      *int              `xmlrpc:"ptr"`
	Ratio    float32           `xmlrpc:"ratio"`
	Blob     [3]byte           `xmlrpc:"blob"`
	Labels   map[string]string `xmlrpc:"labels"`
	Timeout  time.Duration
	private  int    // unexported: never sent
	BadBytes string `xmlrpc:"bad_bytes"`
}

// Generic gives, without the XML, exactly what the peer decodes.
func TestGenericIsWhatThePeerDecodes(t *testing.T) {
	seven := 7
	values := []any{
		nil, 7, int8(-3), uint32(math.MaxUint32), int64(math.MinInt64), true, 0.1, float32(0.1),
		"plain", "tab\t nl\n cr\r <&>", "\x00\x1b\xff", []byte{}, []byte(nil), []byte{0, 255},
		time.Date(2038, 1, 19, 3, 14, 8, 999, time.FixedZone("x", 3600)),
		[]string(nil), []any{"a", nil, 2}, map[string]int(nil), map[string]any{"k": []int{1}},
		netip.MustParseAddr("::1"), &seven, (*int)(nil),
		genericOuter{Name: "n", Skip: "s", Env: map[string]string{"A": "b"}, Ratio: 0.3,
			Labels: map[string]string{"<k>": "v"}, Timeout: time.Second, private: 1, BadBytes: "\x01"},
		genericOuter{genericInner: &genericInner{Token: "t"}, When: time.Unix(1e9, 0), Ptr: &seven},
		[]genericOuter{{}},
	}
	for _, v := range values {
		want, err := decodeEncoded(t, v)
		if err != nil {
			t.Fatalf("EncodeCall(%#v): %v", v, err)
		}
		got, err := Generic(v)
		if err != nil {
			t.Fatalf("Generic(%#v): %v", v, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Generic(%#v) (-decoded +generic):\n%s", v, diff)
		}
	}
}

// What EncodeCall refuses, Generic refuses, with an *EncodeError.
func TestGenericRefusesWhatCannotBeSent(t *testing.T) {
	type cycle struct{ Next *cycle }
	loop := &cycle{}
	loop.Next = loop
	for _, v := range []any{
		math.NaN(), float32(math.Inf(1)), uint64(math.MaxUint64), map[int]string{1: "a"},
		map[string]any{"a\x00": 1}, make(chan int), func() {}, loop,
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		if _, err := decodeEncoded(t, v); err == nil {
			t.Fatalf("EncodeCall(%T) succeeded; the test expects a refusal", v)
		}
		_, err := Generic(v)
		var ee *EncodeError
		if !errors.As(err, &ee) {
			t.Errorf("Generic(%T) = %v, want an *EncodeError", v, err)
		}
	}
}

func FuzzGeneric(f *testing.F) {
	f.Add("s", []byte{1}, int64(1), 1.5, "k")
	f.Add("\x00\xff", []byte(nil), int64(math.MinInt64), math.Copysign(0, -1), "\r")
	f.Fuzz(func(t *testing.T, s string, b []byte, n int64, x float64, key string) {
		v := map[string]any{"s": s, "b": b, "n": n, "x": x, "nested": []any{s, map[string]string{"k": s}}}
		if validText(key) {
			v[key] = s
		}
		want, encErr := decodeEncoded(t, v)
		got, err := Generic(v)
		if (encErr == nil) != (err == nil) {
			t.Fatalf("EncodeCall error %v, Generic error %v", encErr, err)
		}
		if err == nil {
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-decoded +generic):\n%s", diff)
			}
		}
	})
}
