package xmlrpc

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

// fuzzLimits are small enough for the fuzzer to reach every limit.
var fuzzLimits = Limits{MaxBytes: 64 << 10, MaxDepth: 10, MaxValues: 1000}

// checkDecodeError fails unless err is a fault a decoder may return.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) is not a *gofunc.Fault", err, err)
	}
	switch f.Code {
	case gofunc.CodeParse, gofunc.CodeInvalid, gofunc.CodeTooLarge:
	default:
		t.Fatalf("unexpected code %v: %v", f.Code, err)
	}
}

func addSeeds(f *testing.F) {
	for _, tt := range badDocs {
		f.Add([]byte(tt.doc))
	}
	f.Add([]byte(callDoc("<value><array><data><value><struct><member><name>a</name><value><i8>1</i8></value></member></struct></value></data></array></value>",
		"<value><base64>aGk=</base64></value>", "<value><dateTime.iso8601>20240101T00:00:00Z</dateTime.iso8601></value>",
		"<value><double>-1.5e3</double></value>", "<value><nil/></value>", "<value>text</value>", "")))
	f.Add([]byte(nested(12, true)))
}

func FuzzDecodeCall(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		call, err := DecodeCall(bytes.NewReader(body), fuzzLimits)
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		// Whatever decodes must encode, and decode to the same call.
		var buf bytes.Buffer
		if err := EncodeCall(&buf, call.Method, call.Params...); err != nil {
			t.Fatalf("EncodeCall of a decoded call: %v", err)
		}
		again, err := DecodeCall(&buf, Limits{MaxBytes: 1 << 30, MaxDepth: fuzzLimits.MaxDepth, MaxValues: fuzzLimits.MaxValues})
		if err != nil {
			t.Fatalf("DecodeCall of %q: %v", buf.Bytes(), err)
		}
		if diff := cmp.Diff(call, again); diff != "" {
			t.Fatalf("round trip changed the call (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("<methodResponse><params><param><value><struct><member><name>x</name><value><array><data/></array></value></member></struct></value></param></params></methodResponse>"))
	f.Add([]byte("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := DecodeResponse(bytes.NewReader(body), fuzzLimits)
		var re *ResponseError
		var buf bytes.Buffer
		switch {
		case errors.As(err, &re):
			checkDecodeError(t, re.Fault)
			return
		case err != nil:
			var fault *gofunc.Fault
			if !errors.As(err, &fault) {
				t.Fatalf("error %v (%T) is neither a fault nor a ResponseError", err, err)
			}
			if err := EncodeFault(&buf, fault); err != nil {
				t.Fatalf("EncodeFault: %v", err)
			}
		default:
			if err := EncodeResponse(&buf, v); err != nil {
				t.Fatalf("EncodeResponse of a decoded value: %v", err)
			}
		}
		v2, err2 := DecodeResponse(&buf, Limits{MaxBytes: 1 << 30, MaxDepth: fuzzLimits.MaxDepth, MaxValues: fuzzLimits.MaxValues})
		if diff := cmp.Diff(v, v2); diff != "" {
			t.Fatalf("round trip changed the value (-first +second):\n%s", diff)
		}
		if diff := cmp.Diff(err, err2); diff != "" {
			t.Fatalf("round trip changed the fault (-first +second):\n%s", diff)
		}
	})
}

// convertTargets are parameter types a module might declare.
var convertTargets = []reflect.Type{
	reflect.TypeFor[RunOptions](),
	reflect.TypeFor[*Extra](),
	reflect.TypeFor[[]string](),
	reflect.TypeFor[[2]int](),
	reflect.TypeFor[[]byte](),
	reflect.TypeFor[[4]byte](),
	reflect.TypeFor[map[string]int](),
	reflect.TypeFor[map[string][]float32](),
	reflect.TypeFor[int8](),
	reflect.TypeFor[uint](),
	reflect.TypeFor[string](),
	reflect.TypeFor[bool](),
	reflect.TypeFor[time.Time](),
	reflect.TypeFor[time.Duration](),
	reflect.TypeFor[any](),
	reflect.TypeFor[[]any](),
}

func FuzzConvert(f *testing.F) {
	addSeeds(f)
	f.Add([]byte(callDoc(`<value><struct><member><name>timeout</name><value>30s</value></member><member><name>env</name><value><struct><member><name>A</name><value>1</value></member></struct></value></member></struct></value>`)))
	f.Fuzz(func(t *testing.T, body []byte) {
		call, err := DecodeCall(bytes.NewReader(body), fuzzLimits)
		if err != nil {
			return
		}
		for _, p := range call.Params {
			for _, typ := range convertTargets {
				v, err := Convert(p, typ)
				if err != nil {
					var fault *gofunc.Fault
					if !errors.As(err, &fault) || fault.Code != gofunc.CodeBadArgs {
						t.Fatalf("Convert(%#v, %v) error %v is not CodeBadArgs", p, typ, err)
					}
					continue
				}
				if v.Type() != typ {
					t.Fatalf("Convert to %v gave a %v", typ, v.Type())
				}
				// A converted value is always sendable back.
				if err := EncodeResponse(&bytes.Buffer{}, v.Interface()); err != nil {
					t.Fatalf("EncodeResponse of %#v converted to %v: %v", p, typ, err)
				}
			}
		}
	})
}
