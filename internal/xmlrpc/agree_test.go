package xmlrpc

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

// The decoders are held to the encoding/xml decoder they replaced
// (oracle_test.go): on every input both accept with the same value or
// both refuse, with the same fault code while the body is within
// MaxBytes. (Past it, which of "too large" and an earlier error wins
// depends on how far each read ahead, so only the refusal must agree.)

// chunkReader returns its data at most n bytes per Read, so that tokens
// straddle the scanner's window in every possible way.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(c.n, len(p), len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

// outcome is what a decoder made of a body, comparable across decoders.
type outcome struct {
	Value     any // the call or the response's value
	Fault     *gofunc.Fault
	Broken    bool // a *ResponseError (the response itself was bad)
	Code      gofunc.Code
	Refused   bool
	Exceeding bool
}

func callOutcome(call *Call, err error) outcome {
	if err == nil {
		return outcome{Value: call}
	}
	return outcome{Refused: true, Code: gofunc.AsFault(err).Code}
}

func responseOutcome(v any, err error) outcome {
	var re *ResponseError
	switch {
	case err == nil:
		return outcome{Value: v}
	case errors.As(err, &re):
		return outcome{Refused: true, Broken: true, Code: re.Fault.Code}
	}
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		return outcome{Refused: true, Code: -1}
	}
	// A fault the server sent: accepted, and it must be the same fault.
	return outcome{Fault: f}
}

func compareOutcomes(t *testing.T, what string, body []byte, got, want outcome, exceeding bool) {
	t.Helper()
	if exceeding && got.Refused && want.Refused {
		return
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s disagrees with the encoding/xml decoder on %q (-oracle +new):\n%s", what, body, diff)
	}
}

// checkAgreement decodes body as a call and as a response with both
// decoders, and with the new ones again through a reader that returns
// chunk bytes at a time.
func checkAgreement(t *testing.T, body []byte, chunk int) {
	t.Helper()
	lim := fuzzLimits
	exceeding := int64(len(body)) > lim.MaxBytes

	newCall := callOutcome(DecodeCall(bytes.NewReader(body), lim))
	oldCall := callOutcome(oracleDecodeCall(bytes.NewReader(body), lim))
	compareOutcomes(t, "DecodeCall", body, newCall, oldCall, exceeding)
	chunked := callOutcome(DecodeCall(&chunkReader{body, chunk}, lim))
	compareOutcomes(t, "DecodeCall in chunks", body, chunked, newCall, exceeding)

	newResp := responseOutcome(DecodeResponse(bytes.NewReader(body), lim))
	oldResp := responseOutcome(oracleDecodeResponse(bytes.NewReader(body), lim))
	compareOutcomes(t, "DecodeResponse", body, newResp, oldResp, exceeding)
	chunkedResp := responseOutcome(DecodeResponse(&chunkReader{body, chunk}, lim))
	compareOutcomes(t, "DecodeResponse in chunks", body, chunkedResp, newResp, exceeding)
}

// agreementSeeds reach every corner of XML the scanner handles.
var agreementSeeds = []string{
	"<methodCall><methodName>a</methodName></methodCall>",
	"\xEF\xBB\xBF<?xml version='1.0' encoding='US-ASCII'?><methodCall><methodName>a</methodName><params><param><value>&#xe9;</value></param></params></methodCall>",
	"<?xml version=\"1.0\" encoding=\"us-ascii\"?><methodCall><methodName>a</methodName><params><param><value>\xc3\xa9</value></param></params></methodCall>",
	"<?xml encoding=\"latin1\" version=\"1.1\"?><methodCall/>",
	"<?xml version=\"1.0\"?>\r\n<!-- c --><methodCall>\r\n<methodName>\ra.b\r\n</methodName></methodCall>\r\n<!-- -- -->",
	callDoc("<value><string>a\r\nb\rc&#13;&#10;]]&gt;]]]></string></value>"),
	callDoc("<value><string><![CDATA[a]]b]]]>x<![CDATA[\r\n<&>]]></string></value>"),
	callDoc("<value><string>&lt;&gt;&amp;&apos;&quot;&#65;&#x41;&#xD800;&#0;&#x110000;&#65</string></value>"),
	callDoc("<value><string>&lt</string></value>"),
	callDoc("<value><string>&#X41;&#;&#x;&é;&a.b;</string></value>"),
	callDoc("<value><string>\xef\xbf\xbe\xf4\x90\x80\x80\xed\xa0\x80\x01\x7f\u0085</string></value>"),
	callDoc(`<value xmlns:ex="http://ws.apache.org/xmlrpc/namespaces/extensions"><ex:i8>1</ex:i8></value>`),
	callDoc(`<value><i8 xmlns="urn:x">1</i8></value><value xmlns="urn:y"><int>1</int></value>`),
	callDoc(`<value><p:string xmlns:p="">x</p:string></value>`),
	callDoc(`<value><string xmlns="">x</string><xml:nil/><xmlns:nil/></value>`),
	callDoc(`<value><struct xmlns=""><member xmlns:a='' xmlns:a="b"><name>n</name><value><a:int>1</a:int></value></member></struct></value>`),
	callDoc(`<value><int a="1"b='2'>1</int></value>`),
	callDoc(`<value><int a>1</int></value>`),
	callDoc(`<value><int a=1>1</int></value>`),
	callDoc(`<value><int a="<">1</int></value>`),
	callDoc(`<value><int xmlns:="x">1</int></value>`),
	callDoc(`<value><int xmlns:a:b="x">1</int></value>`),
	callDoc("<value><ex:float>1</ex:float></value><value><float>&bad;</float></value>"),
	callDoc("<value><a:b:c/></value>"),
	callDoc("<value><:int>1</:int></value><value><int:>1</int:></value>"),
	callDoc("<value><\xc3\xa9>1</\xc3\xa9></value>"),
	callDoc("<value><\xcc\x80>1</\xcc\x80></value>"),
	callDoc("<value><int >1</int ></value><value><int/></value>"),
	callDoc("<value><int>1</int\n></value><value><int>1</int x></value>"),
	callDoc("<value><dateTime.iso8601>20240230T00:00:00</dateTime.iso8601></value><value><dateTime.iso8601> 20240229T24:00:00 </dateTime.iso8601></value>"),
	callDoc("<value><dateTime.iso8601>00000101T00:00:60</dateTime.iso8601></value>"),
	callDoc("<value><dateTime.iso8601>2024-02-29T23:59:59+14:00</dateTime.iso8601></value>"),
	callDoc("<value><double> -0.0e-0 </double></value><value><double>1_0</double></value>"),
	callDoc("<value><i2>-32768</i2></value><value><i1>+127</i1></value><value><boolean> 1 </boolean></value>"),
	callDoc("<value><base64>  YQ==\n</base64></value><value><nil> </nil></value>"),
	`<!DOCTYPE x [<!ENTITY a "<!-- > -->" > <!ATTLIST x y '>'>]><methodCall/>`,
	`<!DOCTYPE x <!-y> >`,
	`<!-`, `<!--`, `<!---->`, `<!-- a -- b -->`, `<![CDATA[x]]>`, `<![CDAT`, `<?`, `<??>`, `<?xml`, `<?xml?><?xml?>`, `<?pi?>`, `<?xml-x?>`,
	"<methodResponse><params><param><value>x</value></param></params></methodResponse><!-- x --> \n",
	"<methodResponse><params><param><value>x</value></param></params></methodResponse><?xml encoding='latin1'?>",
	"<methodResponse><params><param><value>x</value></param></params></methodResponse><?xml version='2'?>",
	"<methodResponse><params><param><value>x</value></param></params></methodResponse><!DOCTYPE x>",
	"<methodResponse><params><param><value>x</value></param></params></methodResponse></x>",
	"<methodResponse/>", "<methodResponse><fault/></methodResponse>",
	"<methodResponse><fault><value><struct><member><name>faultCode</name><value><i4>7</i4></value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>",
	"<methodResponse><params><param><value><struct>" + strings.Repeat("<member><name>m</name><value>1</value></member>", 1) +
		"<member><name>n</name><value/></member></struct></value></param></params></methodResponse>",
	"<methodResponse><params><param><value><array><data>" + strings.Repeat("<value><i4>-1</i4></value>", 40) + "</data></array></value></param></params></methodResponse>",
	"<methodCall><methodName>a</methodName><params>text<!-- -->&bad;</params></methodCall>",
	"<methodCall><methodName>a</methodName><params><param>x",
	"<methodCall x='",
	"<methodCall><methodName>a</methodName><params><param><value>abc",
}

func addAgreementSeeds(f *testing.F) {
	for _, tt := range badDocs {
		f.Add([]byte(tt.doc), uint8(len(tt.doc)%7))
	}
	f.Add([]byte(nested(12, true)), uint8(2))
	f.Add([]byte(nested(11, false)), uint8(1))
	for _, s := range agreementSeeds {
		f.Add([]byte(s), uint8(3))
	}
	// The corpora of the other decoder fuzz targets.
	for _, target := range []string{"FuzzDecodeCall", "FuzzDecodeResponse"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		for _, file := range files {
			if body, err := readCorpusBytes(file); err == nil {
				f.Add(body, uint8(len(body)%7))
			}
		}
	}
	// A struct big enough for the map-as-you-go path, with a duplicate
	// at the end.
	var big strings.Builder
	for i := range smallStruct + 3 {
		big.WriteString("<member><name>m" + string(rune('a'+i)) + "</name><value>1</value></member>")
	}
	big.WriteString("<member><name>ma</name><value>1</value></member>")
	f.Add([]byte(callDoc("<value><struct>"+big.String()+"</struct></value>")), uint8(5))
}

func FuzzDecoderAgrees(f *testing.F) {
	addAgreementSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, chunk uint8) {
		checkAgreement(t, body, int(chunk%16)+1)
	})
}

// TestDecoderAgreesOnSeeds runs the agreement check over the seeds with
// every small chunk size, in the ordinary test run.
func TestDecoderAgreesOnSeeds(t *testing.T) {
	var bodies [][]byte
	for _, s := range agreementSeeds {
		bodies = append(bodies, []byte(s))
	}
	for _, tt := range badDocs {
		bodies = append(bodies, []byte(tt.doc))
	}
	for _, dir := range []string{"FuzzDecodeCall", "FuzzDecodeResponse", "FuzzDecoderAgrees"} {
		files, _ := filepath.Glob(filepath.Join("testdata", "fuzz", dir, "*"))
		for _, file := range files {
			body, err := readCorpusBytes(file)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			bodies = append(bodies, body)
		}
	}
	for _, body := range bodies {
		for chunk := 1; chunk <= 5; chunk++ {
			checkAgreement(t, body, chunk)
		}
	}
}

// readCorpusBytes reads the first []byte value of a corpus file in the
// "go test fuzz v1" format.
func readCorpusBytes(file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "[]byte("); ok {
			s, err := strconv.Unquote(strings.TrimSuffix(rest, ")"))
			return []byte(s), err
		}
	}
	return nil, errors.New("no []byte value")
}
