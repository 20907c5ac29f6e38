package xmlrpc

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

// callDoc wraps param values (each the inside of a <param>) in a call.
func callDoc(params ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><methodCall><methodName>test.echo</methodName><params>`)
	for _, p := range params {
		b.WriteString("<param>" + p + "</param>")
	}
	b.WriteString("</params></methodCall>")
	return b.String()
}

// faultCode returns the code of err's fault, or fails the test.
func faultCode(t *testing.T, err error) gofunc.Code {
	t.Helper()
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) is not a *gofunc.Fault", err, err)
	}
	return f.Code
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestDecodeCallValues(t *testing.T) {
	tests := []struct {
		name  string
		value string // inside <param>
		want  any
	}{
		{"int", "<value><int>42</int></value>", int64(42)},
		{"i4 negative", "<value><i4>-7</i4></value>", int64(-7)},
		{"int plus sign and spaces", "<value><int> +5 </int></value>", int64(5)},
		{"int at 32-bit max", "<value><int>2147483647</int></value>", int64(2147483647)},
		{"i4 at 32-bit min", "<value><i4>-2147483648</i4></value>", int64(-2147483648)},
		{"i8 beyond 32 bits", "<value><i8>4294967296</i8></value>", int64(1 << 32)},
		{"i8", "<value><i8>-9223372036854775808</i8></value>", int64(-1 << 63)},
		{"i1", "<value><i1>-128</i1></value>", int64(-128)},
		{"i2", "<value><i2>32767</i2></value>", int64(32767)},
		{"ex:i8 declared", `<value><ex:i8 xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions">7</ex:i8></value>`, int64(7)},
		{"ex:i8 undeclared prefix", "<value><ex:i8>8</ex:i8></value>", int64(8)},
		{"boolean 1", "<value><boolean>1</boolean></value>", true},
		{"boolean 0", "<value><boolean>0</boolean></value>", false},
		{"string", "<value><string>a &lt;b&gt; &amp; &quot;c&quot;</string></value>", `a <b> & "c"`},
		{"string keeps spaces", "<value><string>  x\n </string></value>", "  x\n "},
		{"empty string", "<value><string></string></value>", ""},
		{"self-closed string", "<value><string/></value>", ""},
		{"CDATA", "<value><string><![CDATA[<not a tag> & ]]></string></value>", "<not a tag> & "},
		{"comment inside text", "<value><string>ab<!-- c -->de</string></value>", "abde"},
		{"char refs", "<value><string>&#13;&#x1F600;</string></value>", "\r\U0001F600"},
		{"untyped", "<value>plain text</value>", "plain text"},
		{"untyped empty", "<value></value>", ""},
		{"untyped self-closed (kolo nil field)", "<value/>", ""},
		{"spaces around type", "<value>\n  <int>1</int>\n</value>", int64(1)},
		{"double", "<value><double>-1.5</double></value>", -1.5},
		{"double exponent (Python)", "<value><double>1e+20</double></value>", 1e20},
		{"double leading dot", "<value><double>.5</double></value>", 0.5},
		{"double integer", "<value><double>3</double></value>", 3.0},
		{"base64", "<value><base64>aGVsbG8=</base64></value>", []byte("hello")},
		{"base64 wrapped", "<value><base64>\naGVs\n bG8=\n</base64></value>", []byte("hello")},
		{"base64 empty", "<value><base64></base64></value>", []byte{}},
		{"dateTime basic", "<value><dateTime.iso8601>20240229T23:59:58</dateTime.iso8601></value>", utc(2024, 2, 29, 23, 59, 58)},
		{"dateTime hyphens", "<value><dateTime.iso8601>2024-02-29T23:59:58</dateTime.iso8601></value>", utc(2024, 2, 29, 23, 59, 58)},
		{"dateTime Z", "<value><dateTime.iso8601>20240229T23:59:58Z</dateTime.iso8601></value>", utc(2024, 2, 29, 23, 59, 58)},
		{"dateTime offset", "<value><dateTime.iso8601>20240301T01:00:00+02:00</dateTime.iso8601></value>", utc(2024, 2, 29, 23, 0, 0)},
		{"dateTime offset no colon", "<value><dateTime.iso8601>2024-03-01T01:00:00+0200</dateTime.iso8601></value>", utc(2024, 2, 29, 23, 0, 0)},
		{"nil", "<value><nil/></value>", nil},
		{"ex:nil", `<value><ex:nil xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"/></value>`, nil},
		{"empty param (kolo nil)", "", nil},
		{"array", "<value><array><data><value><int>1</int></value><value>two</value></data></array></value>", []any{int64(1), "two"}},
		{"empty array", "<value><array><data/></array></value>", []any{}},
		{"struct", "<value><struct><member><name>a</name><value><int>1</int></value></member>" +
			"<member><name>b c</name><value><struct></struct></value></member></struct></value>",
			map[string]any{"a": int64(1), "b c": map[string]any{}}},
		{"struct empty name", "<value><struct><member><name></name><value>x</value></member></struct></value>", map[string]any{"": "x"}},
		{"nested", "<value><array><data><value><struct><member><name>l</name><value><array><data>" +
			"<value><nil/></value></data></array></value></member></struct></value></data></array></value>",
			[]any{map[string]any{"l": []any{nil}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := DecodeCall(strings.NewReader(callDoc(tt.value)), Limits{})
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if call.Method != "test.echo" {
				t.Errorf("Method = %q", call.Method)
			}
			if diff := cmp.Diff([]any{tt.want}, call.Params); diff != "" {
				t.Errorf("Params (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeCallDocuments(t *testing.T) {
	tests := []struct {
		name, doc string
		want      *Call
	}{
		{"no params", "<methodCall><methodName>system.list_modules</methodName></methodCall>",
			&Call{Method: "system.list_modules", Params: []any{}}},
		{"empty params", "<methodCall><methodName>a</methodName><params/></methodCall>", &Call{Method: "a", Params: []any{}}},
		{"declaration with encoding", `<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>a</methodName></methodCall>`,
			&Call{Method: "a", Params: []any{}}},
		{"lower-case utf-8", `<?xml version='1.0' encoding='utf-8'?><methodCall><methodName>a</methodName></methodCall>`,
			&Call{Method: "a", Params: []any{}}},
		{"us-ascii", `<?xml version="1.0" encoding="us-ascii"?><methodCall><methodName>a</methodName><params><param><value>&#233;</value></param></params></methodCall>`,
			&Call{Method: "a", Params: []any{"é"}}},
		{"byte order mark", "\xEF\xBB\xBF<?xml version=\"1.0\"?><methodCall><methodName>a</methodName></methodCall>",
			&Call{Method: "a", Params: []any{}}},
		{"comments and spaces everywhere", "<!-- hi --><methodCall> <!-- x --> <methodName> ns:a-b_c.d </methodName>\n<params>\n<param>\n<value><int>1</int></value>\n</param>\n</params>\n</methodCall>\n<!-- bye -->\n",
			&Call{Method: "ns:a-b_c.d", Params: []any{int64(1)}}},
		{"method name of 256", "<methodCall><methodName>" + strings.Repeat("a", 256) + "</methodName></methodCall>",
			&Call{Method: strings.Repeat("a", 256), Params: []any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCall(strings.NewReader(tt.doc), Limits{})
			if err != nil {
				t.Fatalf("DecodeCall: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// badDocs are documents DecodeCall must refuse, with the fault code and
// a part of the message.
var badDocs = []struct {
	name, doc string
	code      gofunc.Code
	msg       string
}{
	// Malformed XML.
	{"empty body", "", gofunc.CodeParse, "empty"},
	{"only spaces", "  \n", gofunc.CodeParse, "empty"},
	{"not XML", "hello", gofunc.CodeParse, "text before"},
	{"truncated", "<methodCall><methodName>a</methodName>", gofunc.CodeParse, "EOF"},
	{"mismatched tags", "<methodCall><methodName>a</methodCall>", gofunc.CodeParse, "syntax"},
	{"trailing garbage", "<methodCall><methodName>a</methodName></methodCall>junk", gofunc.CodeParse, "trailing"},
	{"second root", "<methodCall><methodName>a</methodName></methodCall><methodCall/>", gofunc.CodeParse, "trailing"},
	{"trailing end tag", "<methodCall><methodName>a</methodName></methodCall></x>", gofunc.CodeParse, "syntax"},
	{"undefined entity", "<methodCall><methodName>&lol;</methodName></methodCall>", gofunc.CodeParse, "entity"},
	{"NUL char ref", callDoc("<value><string>&#0;</string></value>"), gofunc.CodeParse, "illegal character"},
	{"raw control char", callDoc("<value><string>\x01</string></value>"), gofunc.CodeParse, "illegal character"},
	{"invalid UTF-8", callDoc("<value><string>\xff</string></value>"), gofunc.CodeParse, "UTF-8"},
	{"xml version 1.1", `<?xml version="1.1"?><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeParse, "version"},
	{"non-ascii in us-ascii", "<?xml version=\"1.0\" encoding=\"us-ascii\"?><methodCall><methodName>a</methodName><params><param><value>\xc3\xa9</value></param></params></methodCall>", gofunc.CodeParse, "US-ASCII"},

	// Well-formed, not XML-RPC.
	{"DOCTYPE", `<?xml version="1.0"?><!DOCTYPE methodCall><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "DOCTYPE"},
	{"DOCTYPE inside", `<methodCall><!DOCTYPE x><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "directive"},
	{"processing instruction", `<?xml version="1.0"?><?php echo 1 ?><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "processing instruction"},
	{"late declaration", ` <?xml version="1.0"?><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "processing instruction"},
	{"processing instruction inside", `<methodCall><?x y?><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "processing instruction"},
	{"latin-1", `<?xml version="1.0" encoding="ISO-8859-1"?><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "encoding"},
	{"utf-16", `<?xml version="1.0" encoding="UTF-16"?><methodCall><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "encoding"},
	{"wrong root", "<methodResponse/>", gofunc.CodeInvalid, "root"},
	{"namespaced root", `<methodCall xmlns="urn:x"><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "root"},
	{"attribute", `<methodCall id="1"><methodName>a</methodName></methodCall>`, gofunc.CodeInvalid, "attribute"},
	{"no method name", "<methodCall></methodCall>", gofunc.CodeInvalid, "methodName"},
	{"empty method name", "<methodCall><methodName></methodName></methodCall>", gofunc.CodeInvalid, "method name"},
	{"method name with space", "<methodCall><methodName>a b</methodName></methodCall>", gofunc.CodeInvalid, "method name"},
	{"method name with slash", "<methodCall><methodName>../etc</methodName></methodCall>", gofunc.CodeInvalid, "method name"},
	{"method name of 257", "<methodCall><methodName>" + strings.Repeat("a", 257) + "</methodName></methodCall>", gofunc.CodeInvalid, "method name"},
	{"method name non-ASCII", "<methodCall><methodName>é</methodName></methodCall>", gofunc.CodeInvalid, "method name"},
	{"element in method name", "<methodCall><methodName><b/></methodName></methodCall>", gofunc.CodeInvalid, "unexpected <b>"},
	{"unknown element", "<methodCall><methodName>a</methodName><foo/></methodCall>", gofunc.CodeInvalid, "unexpected <foo>"},
	{"text in params", "<methodCall><methodName>a</methodName><params>x</params></methodCall>", gofunc.CodeInvalid, "unexpected text"},
	{"two values in param", callDoc("<value>a</value><value>b</value>"), gofunc.CodeInvalid, "unexpected <value>"},
	{"unknown type", callDoc("<value><float>1</float></value>"), gofunc.CodeInvalid, "unknown type <float>"},
	{"namespaced string", callDoc("<value><ex:string>1</ex:string></value>"), gofunc.CodeInvalid, "unknown type"},
	{"text beside type", callDoc("<value>x<int>1</int></value>"), gofunc.CodeInvalid, "beside"},
	{"two types", callDoc("<value><int>1</int><int>2</int></value>"), gofunc.CodeInvalid, "unexpected <int>"},
	{"element in int", callDoc("<value><int><b/></int></value>"), gofunc.CodeInvalid, "unexpected <b>"},
	{"bad int", callDoc("<value><int>12a</int></value>"), gofunc.CodeInvalid, "bad <int>"},
	{"empty int", callDoc("<value><int></int></value>"), gofunc.CodeInvalid, "bad <int>"},
	{"int with underscore", callDoc("<value><int>1_000</int></value>"), gofunc.CodeInvalid, "bad <int>"},
	{"float in int", callDoc("<value><int>1.0</int></value>"), gofunc.CodeInvalid, "bad <int>"},
	{"int overflow", callDoc("<value><int>99999999999999999999</int></value>"), gofunc.CodeInvalid, "out of range"},
	{"int beyond 32 bits", callDoc("<value><int>2147483648</int></value>"), gofunc.CodeInvalid, "<int> \"2147483648\" out of range (32 bits)"},
	{"int below 32 bits", callDoc("<value><int>-2147483649</int></value>"), gofunc.CodeInvalid, "out of range (32 bits)"},
	{"i4 beyond 32 bits", callDoc("<value><i4>4294967296</i4></value>"), gofunc.CodeInvalid, "<i4> \"4294967296\" out of range (32 bits)"},
	{"i4 beyond 32 bits, spaced", callDoc("<value><i4> 2147483648 </i4></value>"), gofunc.CodeInvalid, "out of range"},
	{"i8 overflow", callDoc("<value><i8>9223372036854775808</i8></value>"), gofunc.CodeInvalid, "out of range"},
	{"i1 overflow", callDoc("<value><i1>128</i1></value>"), gofunc.CodeInvalid, "out of range"},
	{"boolean true", callDoc("<value><boolean>true</boolean></value>"), gofunc.CodeInvalid, "boolean"},
	{"boolean 2", callDoc("<value><boolean>2</boolean></value>"), gofunc.CodeInvalid, "boolean"},
	{"double NaN", callDoc("<value><double>NaN</double></value>"), gofunc.CodeInvalid, "bad <double>"},
	{"double inf", callDoc("<value><double>inf</double></value>"), gofunc.CodeInvalid, "bad <double>"},
	{"double hex", callDoc("<value><double>0x1p-2</double></value>"), gofunc.CodeInvalid, "bad <double>"},
	{"double overflow", callDoc("<value><double>1e400</double></value>"), gofunc.CodeInvalid, "out of range"},
	{"double bare exponent", callDoc("<value><double>1e</double></value>"), gofunc.CodeInvalid, "bad <double>"},
	{"double dot only", callDoc("<value><double>.</double></value>"), gofunc.CodeInvalid, "bad <double>"},
	{"bad base64 char", callDoc("<value><base64>a*==</base64></value>"), gofunc.CodeInvalid, "base64"},
	{"bad base64 length", callDoc("<value><base64>aGVsbG8</base64></value>"), gofunc.CodeInvalid, "base64"},
	{"base64 data after padding", callDoc("<value><base64>aA==aA==</base64></value>"), gofunc.CodeInvalid, "base64"},
	{"bad date", callDoc("<value><dateTime.iso8601>yesterday</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"date month 13", callDoc("<value><dateTime.iso8601>20241301T00:00:00</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"date Feb 30", callDoc("<value><dateTime.iso8601>20240230T00:00:00</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"date fraction", callDoc("<value><dateTime.iso8601>20240101T00:00:00.5</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"date mixed style", callDoc("<value><dateTime.iso8601>2024-0101T00:00:00</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"date bad zone", callDoc("<value><dateTime.iso8601>20240101T00:00:00 UTC</dateTime.iso8601></value>"), gofunc.CodeInvalid, "dateTime"},
	{"nil with content", callDoc("<value><nil>x</nil></value>"), gofunc.CodeInvalid, "nil"},
	{"array without data", callDoc("<value><array></array></value>"), gofunc.CodeInvalid, "missing <data>"},
	{"array with param", callDoc("<value><array><data><param/></data></array></value>"), gofunc.CodeInvalid, "unexpected <param>"},
	{"array two datas", callDoc("<value><array><data/><data/></array></value>"), gofunc.CodeInvalid, "unexpected <data>"},
	{"member without value", callDoc("<value><struct><member><name>a</name></member></struct></value>"), gofunc.CodeInvalid, "missing <value>"},
	{"member without name", callDoc("<value><struct><member><value>1</value></member></struct></value>"), gofunc.CodeInvalid, "want <name>"},
	{"member value first", callDoc("<value><struct><member><value>1</value><name>a</name></member></struct></value>"), gofunc.CodeInvalid, "want <name>"},
	{"duplicate member", callDoc("<value><struct><member><name>a</name><value>1</value></member><member><name>a</name><value>2</value></member></struct></value>"), gofunc.CodeInvalid, "duplicate"},
	{"text in struct", callDoc("<value><struct>x</struct></value>"), gofunc.CodeInvalid, "unexpected text"},
}

func TestDecodeCallRejects(t *testing.T) {
	for _, tt := range badDocs {
		t.Run(tt.name, func(t *testing.T) {
			call, err := DecodeCall(strings.NewReader(tt.doc), Limits{})
			if err == nil {
				t.Fatalf("DecodeCall accepted it: %#v", call)
			}
			if call != nil {
				t.Errorf("DecodeCall returned a call with its error")
			}
			if got := faultCode(t, err); got != tt.code {
				t.Errorf("code = %v, want %v (%v)", got, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeResponse(t *testing.T) {
	v, err := DecodeResponse(strings.NewReader(`<?xml version="1.0"?>
<methodResponse><params><param><value><array><data><value><i8>99999999999</i8></value><value><nil/></value></data></array></value></param></params></methodResponse>`), Limits{})
	if err != nil {
		t.Fatalf("DecodeResponse: %v", err)
	}
	if diff := cmp.Diff([]any{int64(99999999999), nil}, v); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestDecodeResponseFault(t *testing.T) {
	doc := `<methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>-32601</int></value></member>
<member><name>faultString</name><value><string>no such method: a.b</string></value></member>
</struct></value></fault></methodResponse>`
	v, err := DecodeResponse(strings.NewReader(doc), Limits{})
	if v != nil {
		t.Errorf("value = %v, want nil with a fault", v)
	}
	var f *gofunc.Fault
	if !errors.As(err, &f) || f.Code != gofunc.CodeNoSuchMethod || f.Message != "no such method: a.b" {
		t.Fatalf("err = %#v, want the server's fault", err)
	}
	if !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Errorf("errors.Is(err, ErrNoSuchMethod) = false")
	}
	var re *ResponseError
	if errors.As(err, &re) {
		t.Errorf("a server fault must not be a *ResponseError")
	}
}

func TestDecodeResponseRejects(t *testing.T) {
	tests := []struct {
		name, doc string
		code      gofunc.Code
	}{
		{"call instead", "<methodCall><methodName>a</methodName></methodCall>", gofunc.CodeInvalid},
		{"empty response", "<methodResponse></methodResponse>", gofunc.CodeInvalid},
		{"no param", "<methodResponse><params></params></methodResponse>", gofunc.CodeInvalid},
		{"empty param", "<methodResponse><params><param></param></params></methodResponse>", gofunc.CodeInvalid},
		{"two params", "<methodResponse><params><param><value>a</value></param><param><value>b</value></param></params></methodResponse>", gofunc.CodeInvalid},
		{"params and fault", "<methodResponse><params><param><value>a</value></param></params><fault/></methodResponse>", gofunc.CodeInvalid},
		{"fault not struct", "<methodResponse><fault><value>oops</value></fault></methodResponse>", gofunc.CodeInvalid},
		{"fault without code", "<methodResponse><fault><value><struct><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>", gofunc.CodeInvalid},
		{"fault code string", "<methodResponse><fault><value><struct><member><name>faultCode</name><value>1</value></member><member><name>faultString</name><value>x</value></member></struct></value></fault></methodResponse>", gofunc.CodeInvalid},
		{"fault without string", "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member></struct></value></fault></methodResponse>", gofunc.CodeInvalid},
		{"truncated", "<methodResponse><params><param><value>", gofunc.CodeParse},
		{"trailing", "<methodResponse><params><param><value>a</value></param></params></methodResponse>x", gofunc.CodeParse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := DecodeResponse(strings.NewReader(tt.doc), Limits{})
			var re *ResponseError
			if !errors.As(err, &re) {
				t.Fatalf("DecodeResponse = %v, %v; want a *ResponseError", v, err)
			}
			if re.Fault.Code != tt.code {
				t.Errorf("code = %v, want %v (%v)", re.Fault.Code, tt.code, err)
			}
			if gofunc.AsFault(err).Code != tt.code {
				t.Errorf("AsFault does not see the code through ResponseError")
			}
		})
	}
}

func TestValidMethodName(t *testing.T) {
	for _, name := range []string{"a", "system.list_modules", "async.command.run", "x:y-z_0.9", strings.Repeat("z", 256)} {
		if !ValidMethodName(name) {
			t.Errorf("ValidMethodName(%q) = false", name)
		}
	}
	for _, name := range []string{"", " ", "a b", "a/b", "a\x00", "é", "a;b", strings.Repeat("z", 257)} {
		if ValidMethodName(name) {
			t.Errorf("ValidMethodName(%q) = true", name)
		}
	}
}
