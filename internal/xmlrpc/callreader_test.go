package xmlrpc

import (
	"bytes"
	"crypto/sha256"
	"io"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/google/go-cmp/cmp"
)

// afterName returns what follows </methodName> in doc.
func afterName(t *testing.T, doc string) string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, "</methodName>")
	if !ok {
		t.Fatalf("no </methodName> in %q", doc)
	}
	return rest
}

func TestCallReaderParamsMatchDecodeCall(t *testing.T) {
	docs := []string{
		callDoc("<value><int>1</int></value>", "<value><string>a</string></value>", ""),
		callDoc(),
		"<methodCall><methodName> system.list_methods </methodName></methodCall>",
		"<!-- hi --><methodCall><methodName>a.b</methodName><!-- <param> --><params><param><value><string><![CDATA[<param>]]></string></value></param></params></methodCall>\n",
	}
	for _, doc := range docs {
		want, err := DecodeCall(strings.NewReader(doc), DefaultLimits)
		if err != nil {
			t.Fatalf("DecodeCall(%q): %v", doc, err)
		}
		cr, err := ReadCallHead(strings.NewReader(doc), DefaultLimits)
		if err != nil {
			t.Fatalf("ReadCallHead(%q): %v", doc, err)
		}
		params, err := cr.Params()
		if err != nil {
			t.Fatalf("Params(%q): %v", doc, err)
		}
		got := &Call{Method: cr.Method(), Params: params}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%q: staged decoding differs from DecodeCall (-want +got):\n%s", doc, diff)
		}
		cr.Close() // idempotent after Params

		cr, err = ReadCallHead(strings.NewReader(doc), DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := cr.Skip()
		if err != nil {
			t.Fatalf("Skip(%q): %v", doc, err)
		}
		tail := afterName(t, doc)
		if rest.Params != len(want.Params) || rest.Bytes != int64(len(tail)) || rest.SHA256 != sha256.Sum256([]byte(tail)) {
			t.Errorf("Skip(%q) = %d params, %d bytes; want %d params, %d bytes and the digest of %q",
				doc, rest.Params, rest.Bytes, len(want.Params), len(tail), tail)
		}
	}
}

// The head is judged before the rest of the body has even arrived.
func TestReadCallHeadStopsAtTheName(t *testing.T) {
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte(`<?xml version="1.0"?><methodCall><methodName>command.shell</methodName>`))
		// The parameters never come: a reader that waited for them
		// would block here until the pipe is closed below.
	}()
	cr, err := ReadCallHead(pr, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if cr.Method() != "command.shell" {
		t.Errorf("Method = %q", cr.Method())
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
	_, err = cr.Params()
	if faultCode(t, err) != gofunc.CodeParse {
		t.Errorf("Params after a cut body = %v, want a parse fault", err)
	}
}

func TestReadCallHeadIsBounded(t *testing.T) {
	long := strings.Repeat("a", MaxHeadBytes)
	for name, doc := range map[string]string{
		"long name":    "<methodCall><methodName>" + long + "</methodName></methodCall>",
		"long comment": "<!--" + long + "--><methodCall><methodName>a.b</methodName></methodCall>",
		"long space":   "<methodCall>" + strings.Repeat(" ", MaxHeadBytes) + "<methodName>a.b</methodName></methodCall>",
	} {
		_, err := ReadCallHead(strings.NewReader(doc), DefaultLimits)
		if faultCode(t, err) != gofunc.CodeTooLarge || !strings.Contains(err.Error(), "first 16384 bytes") {
			t.Errorf("%s: %v, want a too-large fault naming the head limit", name, err)
		}
	}
	// The bound is on the head only: a large body with a short head is
	// fine up to MaxBytes.
	doc := callDoc("<value><string>" + strings.Repeat("x", 4*MaxHeadBytes) + "</string></value>")
	cr, err := ReadCallHead(strings.NewReader(doc), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if params, err := cr.Params(); err != nil || len(params[0].(string)) != 4*MaxHeadBytes {
		t.Errorf("Params = %d params, %v", len(params), err)
	}
}

func TestCallReaderKeepsMaxBytes(t *testing.T) {
	doc := callDoc(strings.Repeat("<value><int>1</int></value></param><param>", 100) + "<value><int>1</int></value>")
	lim := Limits{MaxBytes: int64(len(doc) / 2)}
	cr, err := ReadCallHead(strings.NewReader(doc), lim)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cr.Params(); faultCode(t, err) != gofunc.CodeTooLarge {
		t.Errorf("Params over MaxBytes = %v", err)
	}
	cr, err = ReadCallHead(strings.NewReader(doc), lim)
	if err != nil {
		t.Fatal(err)
	}
	rest, err := cr.Skip()
	if faultCode(t, err) != gofunc.CodeTooLarge {
		t.Errorf("Skip over MaxBytes = %v", err)
	}
	if rest.Params < 40 || rest.Params > 51 || rest.Bytes >= int64(len(doc)) {
		t.Errorf("Skip over MaxBytes saw %d params in %d bytes; want about half of 101", rest.Params, rest.Bytes)
	}
	if _, err := cr.Params(); err == nil {
		t.Error("Params after Skip succeeded")
	}
}

func TestSkipAcrossWrites(t *testing.T) {
	// Markup split at every byte boundary still counts the same.
	tail := "<params><param><value><string><![CDATA[<param>]]></string></value></param><!-- <param> --><param/><param ><value/></param></params></methodCall>"
	for cut := range len(tail) {
		sk := skimmer{h: sha256.New()}
		sk.Write([]byte(tail[:cut]))
		sk.Write([]byte(tail[cut:]))
		if sk.params != 3 {
			t.Fatalf("cut at %d (%q | %q): %d params, want 3", cut, tail[:cut], tail[cut:], sk.params)
		}
	}
}

func FuzzCallReader(f *testing.F) {
	addSeeds(f)
	f.Add([]byte("<methodCall><methodName>a</methodName><params><param><value><string><![CDATA[<param>]]></string></value></param><!-- <param> --><param/></params></methodCall>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		want, wantErr := DecodeCall(bytes.NewReader(body), fuzzLimits)
		cr, err := ReadCallHead(bytes.NewReader(body), fuzzLimits)
		if err != nil {
			checkDecodeError(t, err)
			if wantErr == nil && len(body) < MaxHeadBytes {
				t.Fatalf("ReadCallHead refused what DecodeCall accepts: %v", err)
			}
			return
		}
		params, err := cr.Params()
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("staged decoding error %v, DecodeCall error %v", err, wantErr)
		}
		if err != nil {
			checkDecodeError(t, err)
			return
		}
		if diff := cmp.Diff(want, &Call{Method: cr.Method(), Params: params}); diff != "" {
			t.Fatalf("staged decoding differs (-DecodeCall +staged):\n%s", diff)
		}
		cr, err = ReadCallHead(bytes.NewReader(body), fuzzLimits)
		if err != nil {
			t.Fatal(err)
		}
		rest, err := cr.Skip()
		if err != nil {
			t.Fatalf("Skip of a valid call: %v", err)
		}
		if rest.Params != len(params) {
			t.Fatalf("Skip counted %d params, DecodeCall decoded %d", rest.Params, len(params))
		}
	})
}

// BenchmarkSkip skims a body with a tag every ten bytes, the costliest
// kind for the <param> count.
func BenchmarkSkip(b *testing.B) {
	doc := []byte(strings.Repeat("<value><string>xxxxxxxx</string></value>", 50000))
	b.SetBytes(int64(len(doc)))
	for b.Loop() {
		sk := skimmer{h: sha256.New()}
		for i := 0; i < len(doc); i += 16 << 10 {
			sk.Write(doc[i:min(i+16<<10, len(doc))])
		}
	}
}
