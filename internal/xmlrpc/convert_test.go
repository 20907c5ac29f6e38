package xmlrpc

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

type RunOptions struct {
	Timeout time.Duration
	Dir     string `xmlrpc:"cwd"`
	Env     map[string]string
	Retries *int
	Limits  struct {
		MaxOutput uint32
	}
	*Extra
}

type Extra struct {
	Tag string
}

type named string

func ptr[T any](v T) *T { return &v }

func TestConvert(t *testing.T) {
	when := utc(2024, 1, 2, 3, 4, 5)
	tests := []struct {
		name string
		v    any
		want any // its type is the target
	}{
		{"int64 to int", int64(-5), int(-5)},
		{"int64 to int8", int64(127), int8(127)},
		{"int64 to uint16", int64(65535), uint16(65535)},
		{"int64 to uint64", int64(math.MaxInt64), uint64(math.MaxInt64)},
		{"int64 to float64", int64(3), float64(3)},
		{"int64 to float32", int64(3), float32(3)},
		{"double to float32", 0.5, float32(0.5)},
		{"bool", true, true},
		{"string", "x", "x"},
		{"string to named", "x", named("x")},
		{"base64 to string", []byte("\x1b[0m"), "\x1b[0m"},
		{"base64 to []byte", []byte{1, 2}, []byte{1, 2}},
		{"base64 to [N]byte", []byte{1, 2, 3}, [3]byte{1, 2, 3}},
		{"ints to []byte (kolo sends []byte so)", []any{int64(1), int64(255)}, []byte{1, 255}},
		{"time", when, when},
		{"duration from int", int64(1500), 1500 * time.Nanosecond},
		{"duration from string", "1m30s", 90 * time.Second},
		{"TextUnmarshaler", "2001:db8::1", netip.MustParseAddr("2001:db8::1")},
		{"nil to pointer", nil, (*int)(nil)},
		{"nil to slice", nil, []string(nil)},
		{"nil to map", nil, map[string]int(nil)},
		{"nil to any", nil, any(nil)},
		{"pointer allocated", int64(3), ptr(3)},
		{"pointer to struct", map[string]any{"tag": "t"}, &Extra{Tag: "t"}},
		{"slice", []any{"a", "b"}, []string{"a", "b"}},
		{"empty slice", []any{}, []int{}},
		{"array", []any{int64(1), int64(2)}, [2]int{1, 2}},
		{"slice of slices", []any{[]any{int64(1)}, []any{}}, [][]int{{1}, {}}},
		{"map", map[string]any{"a": int64(1), "b": int64(2)}, map[string]int{"a": 1, "b": 2}},
		{"map named key", map[string]any{"a": "x"}, map[named]string{"a": "x"}},
		{"any takes array as is", []any{int64(1), "x"}, any([]any{int64(1), "x"})},
		{"any takes struct as is", map[string]any{"k": nil}, any(map[string]any{"k": nil})},
		{"[]any as is", []any{int64(1)}, []any{int64(1)}},
		{"struct", map[string]any{
			"timeout": "30s",
			"cwd":     "/tmp",
			"env":     map[string]any{"A": "1"},
			"retries": int64(2),
			"limits":  map[string]any{"max_output": int64(1024)},
			"tag":     "promoted through a nil embedded pointer",
		}, RunOptions{
			Timeout: 30 * time.Second,
			Dir:     "/tmp",
			Env:     map[string]string{"A": "1"},
			Retries: ptr(2),
			Limits:  struct{ MaxOutput uint32 }{1024},
			Extra:   &Extra{Tag: "promoted through a nil embedded pointer"},
		}},
		{"struct missing members keep zero", map[string]any{"cwd": "/"}, RunOptions{Dir: "/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := reflect.TypeOf(&tt.want).Elem() // interface type when want is nil
			if tt.want != nil {
				typ = reflect.TypeOf(tt.want)
			}
			got, err := Convert(tt.v, typ)
			if err != nil {
				t.Fatalf("Convert: %v", err)
			}
			if got.Type() != typ {
				t.Fatalf("type %v, want %v", got.Type(), typ)
			}
			if diff := cmp.Diff(tt.want, got.Interface(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		name string
		root string
		v    any
		typ  reflect.Type
		msg  string
	}{
		{"argv element", "argv", []any{"ls", "-l", int64(3)}, reflect.TypeFor[[]string](), "argv[2]: want string, got int"},
		{"option type", "options", map[string]any{"retries": "x"}, reflect.TypeFor[RunOptions](), "options.retries: want int, got string"},
		{"unknown field", "options", map[string]any{"x": int64(1)}, reflect.TypeFor[RunOptions](), `options: unknown field "x"`},
		{"nested field", "options", map[string]any{"limits": map[string]any{"max_output": int64(-1)}}, reflect.TypeFor[RunOptions](), "options.limits.max_output: -1 out of range for uint32"},
		{"map entry", "env", map[string]any{"a b": int64(1)}, reflect.TypeFor[map[string]string](), `env["a b"]: want string, got int`},
		{"no root name", "", []any{true}, reflect.TypeFor[[]int](), "[0]: want int, got boolean"},
		{"scalar at root", "", "x", reflect.TypeFor[int](), "want int, got string"},
		{"nil to int", "n", nil, reflect.TypeFor[int](), "n: want int, got nil"},
		{"nil to string", "s", nil, reflect.TypeFor[string](), "s: want string, got nil"},
		{"nil to struct", "o", nil, reflect.TypeFor[RunOptions](), "o: want struct, got nil"},
		{"nil to time", "t", nil, reflect.TypeFor[time.Time](), "t: want dateTime.iso8601, got nil"},
		{"int overflow", "n", int64(128), reflect.TypeFor[int8](), "n: 128 out of range for int8"},
		{"negative to uint", "n", int64(-1), reflect.TypeFor[uint](), "n: -1 out of range for uint"},
		{"float to int", "n", 1.0, reflect.TypeFor[int](), "n: want int, got double"},
		{"float32 overflow", "f", 1e300, reflect.TypeFor[float32](), "f: 1e+300 out of range for float32"},
		{"string to []byte", "data", "aGk=", reflect.TypeFor[[]byte](), "data: want base64, got string"},
		{"string to bool", "b", "true", reflect.TypeFor[bool](), "b: want boolean, got string"},
		{"int to bool", "b", int64(1), reflect.TypeFor[bool](), "b: want boolean, got int"},
		{"array length", "a", []any{int64(1)}, reflect.TypeFor[[2]int](), "a: want an array of 2, got 1"},
		{"[N]byte length", "a", []byte{1}, reflect.TypeFor[[2]byte](), "a: want 2 bytes, got 1"},
		{"byte overflow", "a", []any{int64(256)}, reflect.TypeFor[[]byte](), "a[0]: 256 out of range for uint8"},
		{"bad duration", "timeout", "soon", reflect.TypeFor[time.Duration](), `timeout: bad duration "soon"`},
		{"duration from double", "timeout", 1.5, reflect.TypeFor[time.Duration](), "timeout: want duration"},
		{"bad TextUnmarshaler", "addr", "999.1.1.1", reflect.TypeFor[netip.Addr](), `addr: bad netip.Addr "999.1.1.1"`},
		{"TextUnmarshaler from int", "addr", int64(1), reflect.TypeFor[netip.Addr](), "addr: want string, got int"},
		{"struct from array", "o", []any{}, reflect.TypeFor[RunOptions](), "o: want struct, got array"},
		{"array from struct", "l", map[string]any{}, reflect.TypeFor[[]int](), "l: want array, got struct"},
		{"int keys", "m", map[string]any{}, reflect.TypeFor[map[int]int](), "m: want struct, got struct"},
		{"interface not implemented", "s", int64(1), reflect.TypeFor[fmt.Stringer](), "s: want fmt.Stringer, got int"},
		{"unsupported type", "c", int64(1), reflect.TypeFor[chan int](), "c: parameter type chan int cannot be decoded"},
		{"pointer elem error", "p", "x", reflect.TypeFor[*int](), "p: want int, got string"},
		{"field behind nil unexported embedded pointer", "p", map[string]any{"hidden": int64(1)}, reflect.TypeFor[Proc](), "p.hidden: cannot set embedded pointer to unexported struct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := ConvertNamed(tt.root, tt.v, tt.typ)
			if err == nil {
				t.Fatalf("ConvertNamed gave %v", v)
			}
			var f *gofunc.Fault
			if !errors.As(err, &f) || f.Code != gofunc.CodeBadArgs {
				t.Fatalf("err = %#v, want a CodeBadArgs fault", err)
			}
			if !strings.HasPrefix(f.Message, tt.msg) {
				t.Errorf("message %q, want it to start with %q", f.Message, tt.msg)
			}
			if v.IsValid() {
				t.Errorf("a value came back with the error")
			}
		})
	}
}

func TestConvertNilType(t *testing.T) {
	if _, err := Convert(1, nil); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Convert(1, nil) = %v", err)
	}
}

func TestConvertUnknownFieldIsDeterministic(t *testing.T) {
	v := map[string]any{"zz": int64(1), "aa": int64(2), "mm": int64(3)}
	for range 20 {
		_, err := Convert(v, reflect.TypeFor[Extra]())
		if err == nil || !strings.Contains(err.Error(), `unknown field "aa"`) {
			t.Fatalf("err = %v, want the first unknown field in sorted order", err)
		}
	}
}

func TestConvertInvertsEncode(t *testing.T) {
	// What EncodeResponse sends, DecodeResponse reads and Convert turns
	// back into the same Go value.
	in := RunOptions{
		Timeout: 3 * time.Second,
		Dir:     "/srv",
		Env:     map[string]string{"PATH": "/bin", "BAD": "\x00\x1b"},
		Retries: ptr(0),
		Extra:   &Extra{Tag: "x"},
	}
	in.Limits.MaxOutput = 1 << 31
	decoded := roundTripResponse(t, in)
	out, err := Convert(decoded, reflect.TypeFor[RunOptions]())
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	if diff := cmp.Diff(in, out.Interface()); diff != "" {
		t.Errorf("(-sent +converted):\n%s", diff)
	}
}
