package minion_test

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
)

// Point and Shape are nested structs, maps and lists for round trips.
type Point struct {
	X int64 `xmlrpc:"x"`
	Y int64 `xmlrpc:"y"`
}

type Shape struct {
	Name   string            `xmlrpc:"name"`
	Points []Point           `xmlrpc:"points"`
	Tags   map[string]string `xmlrpc:"tags"`
	When   time.Time         `xmlrpc:"when"`
	Blob   []byte            `xmlrpc:"blob"`
	Inner  *Shape            `xmlrpc:"inner"`
}

// values echoes typed arguments back, so that a round trip through the
// wire, the argument conversion and the encoder can be compared.
type values struct{}

func (values) EchoInt(n int64) int64                           { return n }
func (values) EchoUint(n uint32) uint32                        { return n }
func (values) EchoBytes(b []byte) []byte                       { return b }
func (values) EchoTime(t time.Time) time.Time                  { return t }
func (values) EchoShape(s Shape) Shape                         { return s }
func (values) EchoMap(m map[string][]int64) map[string][]int64 { return m }
func (values) EchoPtr(s *Shape) *Shape                         { return s }
func (values) EchoAny(v any) any                               { return v }
func (values) EchoFloat(f float64) float64                     { return f }
func (values) Greet(ctx context.Context, greeting string, n int) (string, error) {
	if _, ok := gofunc.PeerFromContext(ctx); !ok {
		return "", errors.New("no peer in context")
	}
	out := ""
	for range n {
		out += greeting
	}
	return out, nil
}
func (values) Nothing()       {}
func (values) OnlyErr() error { return nil }

func (values) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Round trips of typed values.",
		Version:     "2.1.0",
		Methods: map[string]gofunc.MethodDoc{
			"EchoInt": {Description: "Returns n.", Args: []gofunc.ArgDoc{{Name: "n", Description: "any 64-bit integer"}}},
			"Greet": {Description: "Repeats a greeting.", Args: []gofunc.ArgDoc{
				{Name: "greeting", Description: "what to say"},
				{Name: "times", Type: "int", Description: "how often", Optional: true, Default: 2},
			}},
		},
	}
}

func startValues(t *testing.T) (*env, func(string, ...any) (any, error)) {
	e := start(t, func(s *minion.Server) {
		if err := s.Register("values", values{}); err != nil {
			t.Fatal(err)
		}
	})
	c := e.client(gofunc.RoleOverlord, "admin")
	t.Cleanup(c.CloseIdleConnections)
	return e, func(m string, args ...any) (any, error) { return e.callKeep(c, m, args...) }
}

func TestValuesRoundTrip(t *testing.T) {
	_, call := startValues(t)
	when := time.Date(2031, 7, 4, 12, 30, 45, 0, time.UTC)
	shape := map[string]any{
		"name":   "tri",
		"points": []any{map[string]any{"x": int64(math.MaxInt64), "y": int64(math.MinInt64)}, map[string]any{"x": int64(1) << 40, "y": int64(-3)}},
		"tags":   map[string]any{"colour": "red", "empty": ""},
		"when":   when,
		"blob":   []byte{0, 1, 2, 0xff, '<', '&'},
		"inner":  map[string]any{"name": "child", "points": []any{}, "tags": map[string]any{}, "when": when, "blob": []byte{}, "inner": nil},
	}
	cases := []struct {
		method string
		arg    any
		want   any
	}{
		{"values.echo_int", int64(math.MaxInt64), int64(math.MaxInt64)},
		{"values.echo_int", int64(math.MinInt64), int64(math.MinInt64)},
		{"values.echo_int", int64(1) << 33, int64(1) << 33},
		{"values.echo_uint", int64(math.MaxUint32), int64(math.MaxUint32)},
		{"values.echo_bytes", []byte("\x00binary\xff\xfe"), []byte("\x00binary\xff\xfe")},
		{"values.echo_bytes", []byte{}, []byte{}},
		{"values.echo_time", when, when},
		{"values.echo_float", 0.1, 0.1},
		{"values.echo_float", -1e300, -1e300},
		{"values.echo_shape", shape, shape},
		{"values.echo_map", map[string]any{"a": []any{int64(1), int64(1) << 50}, "b": []any{}}, map[string]any{"a": []any{int64(1), int64(1) << 50}, "b": []any{}}},
		{"values.echo_ptr", nil, nil},
		{"values.echo_ptr", shape["inner"], shape["inner"]},
		{"values.echo_any", nil, nil},
		{"values.echo_any", []any{nil, "x", []any{int64(7), map[string]any{"k": nil}}}, []any{nil, "x", []any{int64(7), map[string]any{"k": nil}}}},
		{"values.echo_any", "tab\there <&> \u00e9\u4e16", "tab\there <&> \u00e9\u4e16"},
	}
	for _, c := range cases {
		got, err := call(c.method, c.arg)
		if err != nil {
			t.Errorf("%s(%v): %v", c.method, c.arg, err)
			continue
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s round trip (-sent +got):\n%s", c.method, diff)
		}
	}
}

func TestVoidMethodsAnswerTrue(t *testing.T) {
	_, call := startValues(t)
	for _, m := range []string{"values.nothing", "values.only_err"} {
		if got, err := call(m); err != nil || got != true {
			t.Errorf("%s = %v, %v; want true", m, got, err)
		}
	}
}

func TestContextFirstAndOptionalArguments(t *testing.T) {
	_, call := startValues(t)
	if got, err := call("values.greet", "hi", 3); err != nil || got != "hihihi" {
		t.Errorf("greet(hi, 3) = %v, %v", got, err)
	}
	if got, err := call("values.greet", "yo"); err != nil || got != "yoyo" {
		t.Errorf("greet(yo) with the default of 2 = %v, %v", got, err)
	}
}

// A wrong count or type of argument is a CodeBadArgs fault that names
// the argument, by its documented name or by position.
func TestBadArgumentsNameTheArgument(t *testing.T) {
	_, call := startValues(t)
	cases := []struct {
		method  string
		args    []any
		mention []string
	}{
		{"values.echo_int", []any{"seven"}, []string{"argument 1", "n", "string"}},
		{"values.echo_int", []any{}, []string{"missing argument 1", "(n)"}},
		{"values.echo_int", []any{1, 2}, []string{"takes 1 arguments, got 2"}},
		{"values.echo_uint", []any{-1}, []string{"argument 1", "arg1"}},
		{"values.echo_uint", []any{int64(1) << 40}, []string{"argument 1"}},
		{"values.echo_bytes", []any{"not base64"}, []string{"argument 1"}},
		{"values.echo_time", []any{42}, []string{"argument 1"}},
		{"values.echo_shape", []any{map[string]any{"name": "x", "colour": "red"}}, []string{"argument 1", "colour"}},
		{"values.echo_shape", []any{map[string]any{"points": []any{map[string]any{"x": "one"}}}}, []string{"argument 1", "points[0].x"}},
		{"values.greet", []any{"hi", "many"}, []string{"argument 2", "times"}},
		{"values.greet", []any{}, []string{"missing argument 1", "greeting"}},
	}
	for _, c := range cases {
		_, err := call(c.method, c.args...)
		var f *gofunc.Fault
		if !errors.As(err, &f) || f.Code != gofunc.CodeBadArgs {
			t.Errorf("%s%v = %v, want a bad-arguments fault", c.method, c.args, err)
			continue
		}
		for _, m := range c.mention {
			if !strings.Contains(f.Message, m) {
				t.Errorf("%s%v: fault %q does not mention %q", c.method, c.args, f.Message, m)
			}
		}
	}
}

func TestRegisterRefusesBadModules(t *testing.T) {
	var s minion.Server
	cases := []struct {
		name string
		v    any
		want error
	}{
		{"Bad-Name", values{}, minion.ErrBadModuleName},
		{"system", values{}, minion.ErrBadModuleName},
		{"jobs", values{}, minion.ErrBadModuleName},
		{"async", values{}, minion.ErrBadModuleName},
		{"empty", struct{}{}, minion.ErrNoMethods},
	}
	for _, c := range cases {
		if err := s.Register(c.name, c.v); !errors.Is(err, c.want) {
			t.Errorf("Register(%q, %T) = %v, want %v", c.name, c.v, err, c.want)
		}
	}
	if err := s.Register("values", values{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register("values", values{}); !errors.Is(err, minion.ErrDuplicate) {
		t.Errorf("second Register = %v, want ErrDuplicate", err)
	}
	for _, bad := range []any{variadic{}, twoResults{}, introspectionClash{}, badDoc{}} {
		if err := s.Register("bad", bad); err == nil {
			t.Errorf("Register(%T) succeeded, want an error", bad)
		}
	}
	if err := s.Register("nilmod", nil); err == nil {
		t.Error("Register(nil) succeeded")
	}
}

type variadic struct{}

func (variadic) Many(xs ...int) int { return len(xs) }

type twoResults struct{}

func (twoResults) Pair() (int, int) { return 1, 2 }

type introspectionClash struct{}

func (introspectionClash) ListMethods() []string { return nil }

type badDoc struct{}

func (badDoc) Run(a, b string) string { return a + b }
func (badDoc) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Methods: map[string]gofunc.MethodDoc{"Run": {Args: []gofunc.ArgDoc{{Name: "only"}}}}}
}

// A nil interface and nil pointer reach the method as nil values.
func TestNilArgumentsReachTheMethod(t *testing.T) {
	_, call := startValues(t)
	got, err := call("values.echo_any", nil)
	if err != nil || got != nil {
		t.Fatalf("echo_any(nil) = %#v, %v", got, err)
	}
	if reflect.TypeOf(got) != nil {
		t.Fatalf("echo_any(nil) type %T", got)
	}
}

// The same round trips through the overlord's client (kolo/xmlrpc), as
// a fleet uses them.
func TestValuesRoundTripThroughOverlord(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{
		NoBuiltins: true,
		Modules:    func(_ string, srv *minion.Server) error { return srv.Register("values", values{}) },
	})
	when := time.Date(2029, 2, 3, 4, 5, 6, 0, time.UTC)
	cases := []struct {
		method string
		arg    any
		want   any
	}{
		{"echo_int", int64(1) << 40, int64(1) << 40},
		{"echo_int", int64(math.MinInt64), int64(math.MinInt64)},
		{"echo_bytes", []byte{0, 0xff, '<'}, []byte{0, 0xff, '<'}},
		{"echo_time", when, when},
		{"echo_map", map[string]any{"a": []any{int64(1) << 35}}, map[string]any{"a": []any{int64(1) << 35}}},
	}
	for _, c := range cases {
		res, err := f.Overlord().Targets("*").Call(t.Context(), "values", c.method, c.arg)
		if err != nil {
			t.Errorf("values.%s(%v): %v", c.method, c.arg, err)
			continue
		}
		if diff := cmp.Diff(c.want, res["m1.test"].Value); diff != "" {
			t.Errorf("values.%s through the overlord (-sent +got):\n%s", c.method, diff)
		}
	}
}
