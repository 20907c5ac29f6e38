package xmlrpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
)

// streamReader produces head, then fill repeated up to total bytes, then
// tail, without ever holding the body: a 100 MB request costs nothing to
// make. It counts what was read from it.
type streamReader struct {
	head, fill, tail []byte
	total            int64 // bytes of head+fill
	off              int64
	tailOff          int
}

func (s *streamReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case s.off < int64(len(s.head)):
			c := copy(p[n:], s.head[s.off:])
			n += c
			s.off += int64(c)
		case s.off < s.total:
			end := min(int64(n)+s.total-s.off, int64(len(p)))
			for n < int(end) {
				c := copy(p[n:end], s.fill[(s.off-int64(len(s.head)))%int64(len(s.fill)):])
				n += c
				s.off += int64(c)
			}
		case s.tailOff < len(s.tail):
			c := copy(p[n:], s.tail[s.tailOff:])
			n += c
			s.tailOff += c
		default:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		}
	}
	return n, nil
}

func wantFault(t *testing.T, err error, code gofunc.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v mentioning %q", code, msg)
	}
	if got := faultCode(t, err); got != code {
		t.Fatalf("code = %v, want %v (%v)", got, code, err)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not mention %q", err, msg)
	}
}

func TestMaxBytesBoundary(t *testing.T) {
	doc := callDoc("<value><string>" + strings.Repeat("x", 1000) + "</string></value>")
	n := int64(len(doc))
	if _, err := DecodeCall(strings.NewReader(doc), Limits{MaxBytes: n}); err != nil {
		t.Fatalf("a body of exactly MaxBytes: %v", err)
	}
	_, err := DecodeCall(strings.NewReader(doc), Limits{MaxBytes: n - 1})
	wantFault(t, err, gofunc.CodeTooLarge, "MaxBytes")
	// The one byte past the limit may be trailing white space: still
	// too large, not silently cut.
	_, err = DecodeCall(strings.NewReader(doc+"\n"), Limits{MaxBytes: n})
	wantFault(t, err, gofunc.CodeTooLarge, fmt.Sprint(n))
}

func TestHundredMegabyteBodyStopsAtLimit(t *testing.T) {
	const total = 100 << 20
	body := &streamReader{
		head:  []byte(`<methodCall><methodName>files.write</methodName><params><param><value><string>`),
		fill:  []byte("abcdefgh"),
		total: total,
		tail:  []byte(`</string></value></param></params></methodCall>`),
	}
	_, err := DecodeCall(body, Limits{})
	wantFault(t, err, gofunc.CodeTooLarge, "8388608 bytes (MaxBytes)")
	if body.off > DefaultLimits.MaxBytes+64<<10 {
		t.Errorf("read %d bytes of a %d-byte body; want to stop right after the %d limit", body.off, total, DefaultLimits.MaxBytes)
	}
}

func TestHundredMegabytesOfValuesStopsAtMaxValues(t *testing.T) {
	body := &streamReader{
		head:  []byte(`<methodCall><methodName>a</methodName><params><param><value><array><data>`),
		fill:  []byte(`<value><int>1</int></value>`),
		total: 100 << 20,
	}
	_, err := DecodeCall(body, Limits{MaxBytes: 200 << 20, MaxValues: 10000})
	wantFault(t, err, gofunc.CodeTooLarge, "more than 10000 values (MaxValues)")
	if body.off > 1<<20 {
		t.Errorf("read %d bytes; want to stop soon after 10000 values", body.off)
	}
}

func TestMaxValuesCountsEmptyParams(t *testing.T) {
	doc := "<methodCall><methodName>a</methodName><params>" + strings.Repeat("<param></param>", 11) + "</params></methodCall>"
	_, err := DecodeCall(strings.NewReader(doc), Limits{MaxValues: 10})
	wantFault(t, err, gofunc.CodeTooLarge, "MaxValues")
	if _, err := DecodeCall(strings.NewReader(doc), Limits{MaxValues: 11}); err != nil {
		t.Fatalf("11 values with MaxValues 11: %v", err)
	}
}

// nested returns a call whose parameter nests depth arrays (or structs).
func nested(depth int, structs bool) string {
	open, close := "<value><array><data>", "</data></array></value>"
	if structs {
		open, close = "<value><struct><member><name>m</name>", "</member></struct></value>"
	}
	return "<methodCall><methodName>a</methodName><params><param>" +
		strings.Repeat(open, depth) + "<value><int>1</int></value>" + strings.Repeat(close, depth) +
		"</param></params></methodCall>"
}

func TestMaxDepth(t *testing.T) {
	for _, structs := range []bool{false, true} {
		t.Run(fmt.Sprint("structs=", structs), func(t *testing.T) {
			if _, err := DecodeCall(strings.NewReader(nested(32, structs)), Limits{}); err != nil {
				t.Fatalf("depth 32: %v", err)
			}
			_, err := DecodeCall(strings.NewReader(nested(33, structs)), Limits{})
			wantFault(t, err, gofunc.CodeTooLarge, "deeper than 32 levels (MaxDepth)")
			_, err = DecodeCall(strings.NewReader(nested(10000, structs)), Limits{})
			wantFault(t, err, gofunc.CodeTooLarge, "MaxDepth")
		})
	}
}

func TestTenThousandLevelsWithLimitsRaised(t *testing.T) {
	// With the depth limit lifted the decoder still copes (no stack
	// trouble), and the encoder refuses to send such a value back.
	doc := nested(10000, false)
	call, err := DecodeCall(strings.NewReader(doc), Limits{MaxDepth: 1 << 20})
	if err != nil {
		t.Fatalf("DecodeCall: %v", err)
	}
	var buf bytes.Buffer
	err = EncodeCall(&buf, "a", call.Params...)
	var ee *EncodeError
	if !errors.As(err, &ee) || !strings.Contains(ee.Reason, "nested deeper") {
		t.Fatalf("EncodeCall of 10000 levels = %v, want a depth EncodeError", err)
	}
	if buf.Len() != 0 {
		t.Errorf("EncodeCall wrote %d bytes despite failing", buf.Len())
	}
}

func TestBillionLaughs(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">`)
	prev := "lol"
	for i := 1; i <= 9; i++ {
		name := fmt.Sprintf("lol%d", i)
		fmt.Fprintf(&b, `<!ENTITY %s "%s">`, name, strings.Repeat("&"+prev+";", 10))
		prev = name
	}
	b.WriteString(`]><methodCall><methodName>a</methodName><params><param><value>&lol9;</value></param></params></methodCall>`)
	_, err := DecodeCall(strings.NewReader(b.String()), Limits{})
	wantFault(t, err, gofunc.CodeInvalid, "DOCTYPE")

	// Without the DOCTYPE the entity is simply undefined.
	_, err = DecodeCall(strings.NewReader(callDoc("<value>&lol9;</value>")), Limits{})
	wantFault(t, err, gofunc.CodeParse, "entity")
}

func TestExternalEntity(t *testing.T) {
	doc := `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>` +
		`<methodCall><methodName>a</methodName><params><param><value>&x;</value></param></params></methodCall>`
	_, err := DecodeCall(strings.NewReader(doc), Limits{})
	wantFault(t, err, gofunc.CodeInvalid, "DOCTYPE")
}

// errReader fails after giving its data.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestReadErrors(t *testing.T) {
	head := []byte("<methodCall><methodName>a</methodName><params>")
	_, err := DecodeCall(&errReader{head, errors.New("connection reset")}, Limits{})
	wantFault(t, err, gofunc.CodeParse, "connection reset")

	_, err = DecodeCall(&errReader{head, fmt.Errorf("read tcp: %w", os.ErrDeadlineExceeded)}, Limits{})
	wantFault(t, err, gofunc.CodeTimeout, "reading request body")

	_, err = DecodeCall(&errReader{head, context.Canceled}, Limits{})
	wantFault(t, err, gofunc.CodeCanceled, "reading request body")

	_, err = DecodeResponse(&errReader{nil, errors.New("boom")}, Limits{})
	var re *ResponseError
	if !errors.As(err, &re) || re.Fault.Code != gofunc.CodeParse || !strings.Contains(err.Error(), "boom") {
		t.Errorf("DecodeResponse on a failing reader = %v", err)
	}
}

func TestNilReader(t *testing.T) {
	_, err := DecodeCall(nil, Limits{})
	wantFault(t, err, gofunc.CodeParse, "empty request")
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxDepth: 3}.withDefaults()
	want := Limits{MaxBytes: 8 << 20, MaxDepth: 3, MaxValues: 1 << 20}
	if got != want {
		t.Errorf("withDefaults = %+v, want %+v", got, want)
	}
	if got := (Limits{MaxBytes: -1}).withDefaults(); got != DefaultLimits {
		t.Errorf("negative limits = %+v, want defaults", got)
	}
}
