package xmlrpc

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
)

// encodeValue returns what EncodeResponse puts inside <value> for v.
func encodeValue(t *testing.T, v any) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	err := EncodeResponse(&buf, v)
	if err != nil {
		if buf.Len() != 0 {
			t.Errorf("EncodeResponse wrote %q despite failing", buf.String())
		}
		return "", err
	}
	s := buf.String()
	const head = xmlHeader + "<methodResponse><params><param><value>"
	const tail = "</value></param></params></methodResponse>\n"
	if !strings.HasPrefix(s, head) || !strings.HasSuffix(s, tail) {
		t.Fatalf("unexpected envelope: %q", s)
	}
	return s[len(head) : len(s)-len(tail)], nil
}

type level int

type upper string

// MarshalText on a value receiver.
func (u upper) MarshalText() ([]byte, error) { return []byte(strings.ToUpper(string(u))), nil }

type ptrText struct{ n int }

// MarshalText on a pointer receiver: used when the value is addressable.
func (p *ptrText) MarshalText() ([]byte, error) { return []byte(fmt.Sprint("n=", p.n)), nil }

type badText struct{}

func (badText) MarshalText() ([]byte, error) { return nil, errors.New("no text") }

type Base struct {
	ID   int    // promoted: "id"
	Name string `xmlrpc:"base_name"`
}

type inner struct {
	Hidden int // exported field of an unexported embedded struct: promoted
}

type Proc struct {
	Base
	*inner
	PID        int     `xmlrpc:"pid"`
	CPUPercent float64 // "cpu_percent"
	Cmdline    []string
	Skip       string `xmlrpc:"-"`
	Note       string `xmlrpc:",omitempty"`
	Parent     *Proc  `xmlrpc:"parent,omitempty"`
	private    int
	Name       string // shallower than Base.Name's tag "base_name": both kept
}

func TestEncodeValues(t *testing.T) {
	n := 5
	var nilProc *Proc
	var nilIface fmt.Stringer
	addr := netip.MustParseAddr("192.0.2.1")
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"nil", nil, "<nil/>"},
		{"nil pointer", nilProc, "<nil/>"},
		{"nil interface in slice", []fmt.Stringer{nilIface}, "<array><data><value><nil/></value></data></array>"},
		{"pointer", &n, "<int>5</int>"},
		{"pointer to pointer", func() any { p := &n; return &p }(), "<int>5</int>"},
		{"true", true, "<boolean>1</boolean>"},
		{"false", false, "<boolean>0</boolean>"},
		{"int", 42, "<int>42</int>"},
		{"int32 min", int32(math.MinInt32), "<int>-2147483648</int>"},
		{"int32 max", int64(math.MaxInt32), "<int>2147483647</int>"},
		{"beyond int32", int64(math.MaxInt32) + 1, "<i8>2147483648</i8>"},
		{"below int32", int64(math.MinInt32) - 1, "<i8>-2147483649</i8>"},
		{"int64 min", int64(math.MinInt64), "<i8>-9223372036854775808</i8>"},
		{"int8", int8(-3), "<int>-3</int>"},
		{"named int", level(7), "<int>7</int>"},
		{"uint8", uint8(255), "<int>255</int>"},
		{"uint64 max int64", uint64(math.MaxInt64), "<i8>9223372036854775807</i8>"},
		{"duration", 1500 * time.Millisecond, "<int>1500000000</int>"},
		{"long duration", 3 * time.Second, "<i8>3000000000</i8>"},
		{"float", 1.5, "<double>1.5</double>"},
		{"float no exponent", 1e21, "<double>1000000000000000000000</double>"},
		{"small float", 1e-7, "<double>0.0000001</double>"},
		{"float32", float32(0.1), "<double>0.1</double>"},
		{"negative zero", math.Copysign(0, -1), "<double>-0</double>"},
		{"string", "hello", "<string>hello</string>"},
		{"empty string", "", "<string></string>"},
		{"escaped", `a<b>&"c"'d'`, `<string>a&lt;b&gt;&amp;"c"'d'</string>`},
		{"CDATA end", "]]>", "<string>]]&gt;</string>"},
		{"carriage return", "a\r\nb\tc", "<string>a&#13;\nb\tc</string>"},
		{"unicode", "日本 \U0001F600 \u00e9", "<string>日本 \U0001F600 \u00e9</string>"},
		{"DEL and C1 are legal XML", "\x7f\u0085", "<string>\x7f\u0085</string>"},
		{"NUL goes base64", "a\x00b", "<base64>YQBi</base64>"},
		{"ESC goes base64", "\x1b[31mred\x1b[0m", "<base64>G1szMW1yZWQbWzBt</base64>"},
		{"invalid UTF-8 goes base64", "\xff\xfe", "<base64>//4=</base64>"},
		{"U+FFFE goes base64", "\uFFFE", "<base64>77++</base64>"},
		{"named string", upper("abc"), "<string>ABC</string>"},
		{"bytes", []byte("hello"), "<base64>aGVsbG8=</base64>"},
		{"nil bytes", []byte(nil), "<base64></base64>"},
		{"byte array", [3]byte{1, 2, 3}, "<base64>AQID</base64>"},
		{"time", time.Date(2024, 2, 29, 23, 59, 58, 999, time.UTC), "<dateTime.iso8601>20240229T23:59:58</dateTime.iso8601>"},
		{"time other zone", time.Date(2024, 3, 1, 1, 0, 0, 0, time.FixedZone("x", 2*3600)), "<dateTime.iso8601>20240229T23:00:00</dateTime.iso8601>"},
		{"time year 1", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), "<dateTime.iso8601>00010101T00:00:00</dateTime.iso8601>"},
		{"time pointer", func() any { tm := time.Unix(0, 0); return &tm }(), "<dateTime.iso8601>19700101T00:00:00</dateTime.iso8601>"},
		{"TextMarshaler", addr, "<string>192.0.2.1</string>"},
		{"TextMarshaler pointer", &addr, "<string>192.0.2.1</string>"},
		{"pointer-receiver TextMarshaler, addressable", &struct{ P ptrText }{ptrText{3}}, "<struct><member><name>p</name><value><string>n=3</string></value></member></struct>"},
		{"slice", []int{1, 2}, "<array><data><value><int>1</int></value><value><int>2</int></value></data></array>"},
		{"nil slice", []string(nil), "<array><data></data></array>"},
		{"array", [2]bool{true, false}, "<array><data><value><boolean>1</boolean></value><value><boolean>0</boolean></value></data></array>"},
		{"any slice", []any{1, "a", nil}, "<array><data><value><int>1</int></value><value><string>a</string></value><value><nil/></value></data></array>"},
		{"map sorted", map[string]int{"b": 2, "a": 1, "c": 3},
			"<struct><member><name>a</name><value><int>1</int></value></member><member><name>b</name><value><int>2</int></value></member><member><name>c</name><value><int>3</int></value></member></struct>"},
		{"map any sorted", map[string]any{"z": nil, "&": true},
			"<struct><member><name>&amp;</name><value><boolean>1</boolean></value></member><member><name>z</name><value><nil/></value></member></struct>"},
		{"nil map", map[string]int(nil), "<struct></struct>"},
		{"named-key map", map[upper]int{"k": 1}, "<struct><member><name>k</name><value><int>1</int></value></member></struct>"},
		{"empty struct", struct{}{}, "<struct></struct>"},
		{"struct", Proc{
			Base:       Base{ID: 1, Name: "base"},
			inner:      &inner{Hidden: 9},
			PID:        42,
			CPUPercent: 0.5,
			Cmdline:    []string{"sleep", "1"},
			Skip:       "no",
			private:    1,
			Name:       "sleep",
		}, "<struct>" +
			"<member><name>id</name><value><int>1</int></value></member>" +
			"<member><name>base_name</name><value><string>base</string></value></member>" +
			"<member><name>hidden</name><value><int>9</int></value></member>" +
			"<member><name>pid</name><value><int>42</int></value></member>" +
			"<member><name>cpu_percent</name><value><double>0.5</double></value></member>" +
			"<member><name>cmdline</name><value><array><data><value><string>sleep</string></value><value><string>1</string></value></data></array></value></member>" +
			"<member><name>name</name><value><string>sleep</string></value></member>" +
			"</struct>"},
		{"struct with nil embedded pointer and omitempty", Proc{Note: "n", Parent: &Proc{PID: 1}}, "<struct>" +
			"<member><name>id</name><value><int>0</int></value></member>" +
			"<member><name>base_name</name><value><string></string></value></member>" +
			"<member><name>pid</name><value><int>0</int></value></member>" +
			"<member><name>cpu_percent</name><value><double>0</double></value></member>" +
			"<member><name>cmdline</name><value><array><data></data></array></value></member>" +
			"<member><name>note</name><value><string>n</string></value></member>" +
			"<member><name>parent</name><value><struct>" +
			"<member><name>id</name><value><int>0</int></value></member>" +
			"<member><name>base_name</name><value><string></string></value></member>" +
			"<member><name>pid</name><value><int>1</int></value></member>" +
			"<member><name>cpu_percent</name><value><double>0</double></value></member>" +
			"<member><name>cmdline</name><value><array><data></data></array></value></member>" +
			"<member><name>name</name><value><string></string></value></member>" +
			"</struct></value></member>" +
			"<member><name>name</name><value><string></string></value></member>" +
			"</struct>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeValue(t, tt.v)
			if err != nil {
				t.Fatalf("EncodeResponse: %v", err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

type conflict struct {
	UserID int
	UserId int // same snake_case name at the same depth: both dropped, as encoding/json does
	Keep   int
}

type tagWins struct {
	A int `xmlrpc:"b"`
	B int // "b" too, untagged: the tagged field wins
}

type embedA struct{ X int }
type embedB struct{ X int }
type twoEmbeds struct {
	embedA
	embedB // X ambiguous at depth 1: dropped
	Y      int
}

func TestEncodeFieldRules(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{conflict{1, 2, 3}, "<struct><member><name>keep</name><value><int>3</int></value></member></struct>"},
		{tagWins{1, 2}, "<struct><member><name>b</name><value><int>1</int></value></member></struct>"},
		{twoEmbeds{embedA{1}, embedB{2}, 3}, "<struct><member><name>y</name><value><int>3</int></value></member></struct>"},
	}
	for _, tt := range tests {
		got, err := encodeValue(t, tt.v)
		if err != nil || got != tt.want {
			t.Errorf("%T: got %s, %v\nwant %s", tt.v, got, err, tt.want)
		}
	}
}

type node struct {
	Next  *node
	Other *node
}

type selfPtr *selfPtr

func TestEncodeErrors(t *testing.T) {
	cyc := &node{}
	cyc.Next = cyc
	cyc.Other = cyc // two edges back: a naive walk would take 2^128 steps
	loopSlice := []any{nil, nil}
	loopSlice[0] = loopSlice
	loopSlice[1] = loopSlice
	loopMap := map[string]any{}
	loopMap["self"] = loopMap
	var sp selfPtr
	sp = &sp
	var anyLoop any
	anyLoop = &anyLoop
	deep := any(1)
	for range 200 {
		deep = []any{deep}
	}
	tests := []struct {
		name       string
		v          any
		path, text string
	}{
		{"NaN", math.NaN(), "result", "NaN"},
		{"+Inf", math.Inf(1), "result", "+Inf"},
		{"float32 Inf", float32(math.Inf(-1)), "result", "-Inf"},
		{"uint64 too big", uint64(math.MaxInt64) + 1, "result", "exceeds"},
		{"channel", make(chan int), "result", "chan int"},
		{"func", func() {}, "result", "func()"},
		{"complex", complex(1, 2), "result", "complex128"},
		{"int keys", map[int]string{1: "a"}, "result", "map key type int"},
		{"year 10000", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "result", "year 10000"},
		{"negative year", time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), "result", "year -1"},
		{"MarshalText error", badText{}, "result", "no text"},
		{"NaN deep", map[string]any{"a": []any{1, map[string]float64{"x": math.NaN()}}}, `result["a"][1]["x"]`, "NaN"},
		{"in struct field", struct{ Load []float64 }{[]float64{1, math.Inf(1)}}, "result.load[1]", "Inf"},
		{"bad member name", map[string]int{"a\x00": 1}, `result["a\x00"]`, "member name"},
		{"bad tag name", struct {
			X int `xmlrpc:"a\x01"`
		}{}, "result", "member name"},
		{"pointer cycle", cyc, "result", "cycle"},
		{"slice cycle", loopSlice, "result", "cycle"},
		{"map cycle", loopMap, "result", "cycle"},
		{"self pointer", sp, "result", "cycle"},
		{"interface cycle", anyLoop, "result", "cycle"},
		{"too deep", deep, "result", "nested deeper than 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := encodeValue(t, tt.v)
			var ee *EncodeError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *EncodeError", err)
			}
			if !strings.HasPrefix(ee.Path, tt.path) || !strings.Contains(err.Error(), tt.text) {
				t.Errorf("err = %v (path %q), want path %q and %q", err, ee.Path, tt.path, tt.text)
			}
		})
	}
}

func TestEncodeCall(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeCall(&buf, "test.add", 2, int64(1)<<40); err != nil {
		t.Fatal(err)
	}
	want := xmlHeader + "<methodCall><methodName>test.add</methodName><params>" +
		"<param><value><int>2</int></value></param><param><value><i8>1099511627776</i8></value></param>" +
		"</params></methodCall>\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}

	buf.Reset()
	err := EncodeCall(&buf, "bad name")
	var ee *EncodeError
	if !errors.As(err, &ee) || ee.Path != "method" {
		t.Errorf("EncodeCall with a bad name = %v", err)
	}
	err = EncodeCall(&buf, "a.b", 1, math.NaN())
	if !errors.As(err, &ee) || ee.Path != "param[1]" {
		t.Errorf("EncodeCall with NaN = %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("failed EncodeCalls wrote %q", buf.String())
	}
}

func TestEncodeFault(t *testing.T) {
	var buf bytes.Buffer
	if err := EncodeFault(&buf, gofunc.Errorf(gofunc.CodeDenied, "no <way> & \x00 \xff")); err != nil {
		t.Fatal(err)
	}
	want := xmlHeader + "<methodResponse><fault><value><struct>" +
		"<member><name>faultCode</name><value><int>-32001</int></value></member>" +
		"<member><name>faultString</name><value><string>no &lt;way&gt; &amp; \uFFFD \uFFFD</string></value></member>" +
		"</struct></value></fault></methodResponse>\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
	_, err := DecodeResponse(&buf, Limits{})
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("decoding the fault gives %v", err)
	}
	if err := EncodeFault(&buf, nil); err == nil {
		t.Errorf("EncodeFault(nil) succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestEncodeWriterError(t *testing.T) {
	for name, err := range map[string]error{
		"call":     EncodeCall(failWriter{}, "a"),
		"response": EncodeResponse(failWriter{}, 1),
		"fault":    EncodeFault(failWriter{}, gofunc.ErrBusy),
	} {
		if err == nil || err.Error() != "disk full" {
			t.Errorf("%s: err = %v, want the writer's error", name, err)
		}
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"ListModules":  "list_modules",
		"IsPortOpen":   "is_port_open",
		"CPUInfo":      "cpu_info",
		"JobID":        "job_id",
		"ID":           "id",
		"Ping":         "ping",
		"MD5Sum":       "md5_sum",
		"X509Cert":     "x509_cert",
		"HTTPServer":   "http_server",
		"Already_Cut":  "already_cut",
		"lower":        "lower",
		"A":            "a",
		"":             "",
		"ÜberÄnderung": "über_änderung",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEncoderConcurrentFirstUse(t *testing.T) {
	// Many goroutines meeting a new recursive type at once must all get
	// a working encoder (the cache hands out an indirection while the
	// real one is built).
	type tree struct {
		Kids []tree
		N    int
	}
	v := tree{N: 1, Kids: []tree{{N: 2}}}
	want := xmlHeader + "<methodResponse><params><param><value><struct>" +
		"<member><name>kids</name><value><array><data><value><struct>" +
		"<member><name>kids</name><value><array><data></data></array></value></member>" +
		"<member><name>n</name><value><int>2</int></value></member>" +
		"</struct></value></data></array></value></member>" +
		"<member><name>n</name><value><int>1</int></value></member>" +
		"</struct></value></param></params></methodResponse>\n"
	errs := make(chan error, 16)
	for range 16 {
		go func() {
			var buf bytes.Buffer
			err := EncodeResponse(&buf, v)
			if err == nil && buf.String() != want {
				err = fmt.Errorf("got %s", buf.String())
			}
			errs <- err
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

type jobRow struct {
	ID       string    `xmlrpc:"id"`
	Started  time.Time `xmlrpc:"started"`
	Finished time.Time `xmlrpc:"finished,omitempty"`
}

type hiddenTimes struct{ jobRow } // reached through an unexported embedded struct

// omitempty leaves out a zero time.Time (a running job's finish), in UTC
// or any other location, and keeps a set one; without omitempty a zero
// time is still sent.
func TestEncodeOmitEmptyTime(t *testing.T) {
	start := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"zero finish", jobRow{ID: "a", Started: start}, "<struct>" +
			"<member><name>id</name><value><string>a</string></value></member>" +
			"<member><name>started</name><value><dateTime.iso8601>20240506T07:08:09</dateTime.iso8601></value></member>" +
			"</struct>"},
		{"zero finish in another zone", jobRow{ID: "a", Started: start, Finished: time.Time{}.In(paris)}, "<struct>" +
			"<member><name>id</name><value><string>a</string></value></member>" +
			"<member><name>started</name><value><dateTime.iso8601>20240506T07:08:09</dateTime.iso8601></value></member>" +
			"</struct>"},
		{"set finish", jobRow{ID: "a", Started: start, Finished: start.Add(time.Second)}, "<struct>" +
			"<member><name>id</name><value><string>a</string></value></member>" +
			"<member><name>started</name><value><dateTime.iso8601>20240506T07:08:09</dateTime.iso8601></value></member>" +
			"<member><name>finished</name><value><dateTime.iso8601>20240506T07:08:10</dateTime.iso8601></value></member>" +
			"</struct>"},
		{"zero start without omitempty", jobRow{ID: "a"}, "<struct>" +
			"<member><name>id</name><value><string>a</string></value></member>" +
			"<member><name>started</name><value><dateTime.iso8601>00010101T00:00:00</dateTime.iso8601></value></member>" +
			"</struct>"},
		{"embedded unexported", hiddenTimes{jobRow{ID: "a", Started: start}}, "<struct>" +
			"<member><name>id</name><value><string>a</string></value></member>" +
			"<member><name>started</name><value><dateTime.iso8601>20240506T07:08:09</dateTime.iso8601></value></member>" +
			"</struct>"},
	}
	for _, tt := range tests {
		got, err := encodeValue(t, tt.v)
		if err != nil || got != tt.want {
			t.Errorf("%s: got %s, %v\nwant %s", tt.name, got, err, tt.want)
		}
	}
}
