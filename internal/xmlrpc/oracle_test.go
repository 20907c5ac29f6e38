package xmlrpc

// The decoder gofunc used before scan.go: encoding/xml in strict mode,
// driven by the XML-RPC grammar. It is the differential fuzz tests'
// oracle (FuzzDecoderAgrees): the new decoder must accept exactly what
// it accepts, with the same values.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
)

// oracleDecodeCall is DecodeCall as it was.
func oracleDecodeCall(r io.Reader, lim Limits) (*Call, error) {
	d := newOracleDecoder(r, lim, "request")
	defer d.release()
	call, err := d.call()
	if err != nil {
		return nil, d.fault(err)
	}
	return call, nil
}

// oracleDecodeResponse is DecodeResponse as it was.
func oracleDecodeResponse(r io.Reader, lim Limits) (any, error) {
	d := newOracleDecoder(r, lim, "response")
	defer d.release()
	v, fault, err := d.response()
	if err != nil {
		return nil, &ResponseError{Fault: d.fault(err)}
	}
	if fault != nil {
		return nil, fault
	}
	return v, nil
}

var oraclePool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// oracleDecoder walks one document with the XML-RPC grammar.
type oracleDecoder struct {
	xd         *xml.Decoder
	lr         limitReader
	br         *bufio.Reader
	lim        Limits
	what       string // "request" or "response", for messages
	values     int
	badCharset string
	text       []byte // scratch for character data
}

func newOracleDecoder(r io.Reader, lim Limits, what string) *oracleDecoder {
	lim = lim.withDefaults()
	if r == nil {
		r = strings.NewReader("") // an empty body, reported as such
	}
	d := &oracleDecoder{lim: lim, what: what}
	d.lr = limitReader{r: r, remaining: lim.MaxBytes}
	d.br = oraclePool.Get().(*bufio.Reader)
	d.br.Reset(&d.lr)
	// A UTF-8 byte order mark is legal before the XML declaration and
	// some Windows clients send one; encoding/xml does not skip it.
	if b, err := d.br.Peek(3); err == nil && string(b) == "\xEF\xBB\xBF" {
		d.br.Discard(3)
	}
	d.xd = xml.NewDecoder(d.br)
	d.xd.Strict = true
	d.xd.CharsetReader = d.charsetReader
	return d
}

func (d *oracleDecoder) release() {
	d.br.Reset(nil)
	oraclePool.Put(d.br)
	d.br = nil
}

// charsetReader accepts US-ASCII (a subset of UTF-8, checked byte by
// byte) and refuses every other declared encoding; encoding/xml handles
// UTF-8 itself without asking.
func (d *oracleDecoder) charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii":
		return oracleASCIIReader{r}, nil
	}
	d.badCharset = charset
	return nil, fmt.Errorf("unsupported encoding %q", charset)
}

type oracleASCIIReader struct{ r io.Reader }

func (a oracleASCIIReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	for i, c := range p[:n] {
		if c >= 0x80 {
			return i, fmt.Errorf("byte %#x in a document declared US-ASCII", c)
		}
	}
	return n, err
}

// fault turns any error met while decoding into the fault to report.
// The reader's own state wins over what encoding/xml made of it.
func (d *oracleDecoder) fault(err error) *gofunc.Fault {
	var f *gofunc.Fault
	switch {
	case errors.As(err, &f):
		return f
	case d.lr.exceeded:
		return tooLargeFault("%s body exceeds %d bytes (MaxBytes)", d.what, d.lim.MaxBytes)
	case d.lr.err != nil:
		switch {
		case errors.Is(d.lr.err, os.ErrDeadlineExceeded) || errors.Is(d.lr.err, context.DeadlineExceeded):
			return gofunc.Errorf(gofunc.CodeTimeout, "reading %s body: %v", d.what, d.lr.err)
		case errors.Is(d.lr.err, context.Canceled):
			return gofunc.Errorf(gofunc.CodeCanceled, "reading %s body: %v", d.what, d.lr.err)
		}
		return parseFault("reading %s body: %v", d.what, d.lr.err)
	case d.badCharset != "":
		return invalidFault("unsupported encoding %q: use UTF-8", clip(d.badCharset))
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return parseFault("unexpected end of %s document", d.what)
	}
	return parseFault("%v", err)
}

// token returns the next token inside the root element: a StartElement
// (with its attributes checked), an EndElement or CharData, which is only
// valid until the next call. Comments are dropped; directives and
// processing instructions are refused.
func (d *oracleDecoder) token() (xml.Token, error) {
	for {
		t, err := d.xd.Token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := oracleCheckAttrs(t); err != nil {
				return nil, err
			}
			return t, nil
		case xml.EndElement, xml.CharData:
			return t, nil
		case xml.Comment:
			continue
		case xml.ProcInst:
			return nil, invalidFault("processing instruction <?%s?> not allowed", clip(t.Target))
		case xml.Directive:
			return nil, invalidFault("directive <!%s> not allowed", clip(string(t)))
		}
	}
}

// oracleCheckAttrs refuses attributes: XML-RPC has none. Namespace declarations
// are allowed, for Apache's <ex:i8 xmlns:ex="...">.
func oracleCheckAttrs(se xml.StartElement) error {
	for _, a := range se.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		return invalidFault("attribute %q on <%s> not allowed", clip(a.Name.Local), clip(se.Name.Local))
	}
	return nil
}

// element returns the next StartElement or EndElement, allowing only
// white space before it.
func (d *oracleDecoder) element() (xml.Token, error) {
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		if cd, ok := t.(xml.CharData); ok {
			if !isSpace(cd) {
				return nil, invalidFault("unexpected text %q", clip(string(cd)))
			}
			continue
		}
		return t, nil
	}
}

// start consumes the StartElement <name>, after optional white space.
func (d *oracleDecoder) start(name, parent string) error {
	t, err := d.element()
	if err != nil {
		return err
	}
	se, ok := t.(xml.StartElement)
	if !ok {
		return invalidFault("missing <%s> in <%s>", name, parent)
	}
	if !oracleIsElem(se, name) {
		return invalidFault("unexpected <%s> in <%s>, want <%s>", oracleElemName(se), parent, name)
	}
	return nil
}

// end consumes the end of the current element, after optional white
// space; encoding/xml has already checked that the names match.
func (d *oracleDecoder) end(name string) error {
	t, err := d.element()
	if err != nil {
		return err
	}
	if se, ok := t.(xml.StartElement); ok {
		return invalidFault("unexpected <%s> in <%s>", oracleElemName(se), name)
	}
	return nil
}

// chars returns the character data of a text-only element, consuming its
// end. The result aliases d.text.
func (d *oracleDecoder) chars(name string) ([]byte, error) {
	d.text = d.text[:0]
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			d.text = append(d.text, t...)
		case xml.EndElement:
			return d.text, nil
		case xml.StartElement:
			return nil, invalidFault("unexpected <%s> in <%s>", oracleElemName(t), name)
		}
	}
}

func oracleIsElem(se xml.StartElement, local string) bool {
	return se.Name.Local == local && se.Name.Space == ""
}

func oracleElemName(se xml.StartElement) string {
	if se.Name.Space != "" {
		return clip(se.Name.Space) + ":" + clip(se.Name.Local)
	}
	return clip(se.Name.Local)
}

// root reads the prolog (an optional XML declaration, white space and
// comments) and the root element, which must be <name>.
func (d *oracleDecoder) root(name string) error {
	for first := true; ; first = false {
		t, err := d.xd.Token()
		if err != nil {
			if err == io.EOF {
				return parseFault("empty %s document", d.what)
			}
			return err
		}
		switch t := t.(type) {
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return invalidFault("processing instruction <?%s?> not allowed", clip(t.Target))
			}
		case xml.Directive:
			return invalidFault("directive <!%s> not allowed (no DOCTYPE in XML-RPC)", clip(string(t)))
		case xml.Comment:
		case xml.CharData:
			if !isSpace(t) {
				return parseFault("text before the root element")
			}
		case xml.StartElement:
			if err := oracleCheckAttrs(t); err != nil {
				return err
			}
			if !oracleIsElem(t, name) {
				return invalidFault("root element is <%s>, want <%s>", oracleElemName(t), name)
			}
			return nil
		}
	}
}

// epilog reads to the end of the body: only white space and comments may
// follow the root element.
func (d *oracleDecoder) epilog() error {
	for {
		t, err := d.xd.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.Comment:
			continue
		case xml.CharData:
			if isSpace(t) {
				continue
			}
		}
		return parseFault("trailing content after the %s document", d.what)
	}
}

func (d *oracleDecoder) call() (*Call, error) {
	if err := d.root("methodCall"); err != nil {
		return nil, err
	}
	if err := d.start("methodName", "methodCall"); err != nil {
		return nil, err
	}
	name, err := d.chars("methodName")
	if err != nil {
		return nil, err
	}
	// Surrounding white space is tolerated (a pretty-printer's doing);
	// anything else outside the allowed set is not.
	method := trimSpace(string(name))
	if !ValidMethodName(method) {
		return nil, invalidFault("invalid method name %q", clip(method))
	}
	call := &Call{Method: method, Params: []any{}}
	t, err := d.element()
	if err != nil {
		return nil, err
	}
	if se, ok := t.(xml.StartElement); ok {
		if !oracleIsElem(se, "params") {
			return nil, invalidFault("unexpected <%s> in <methodCall>", oracleElemName(se))
		}
		if call.Params, err = d.params(); err != nil {
			return nil, err
		}
		if err := d.end("methodCall"); err != nil {
			return nil, err
		}
	}
	if err := d.epilog(); err != nil {
		return nil, err
	}
	return call, nil
}

// params reads the <param>s of a call up to </params>.
func (d *oracleDecoder) params() ([]any, error) {
	params := []any{}
	for {
		t, err := d.element()
		if err != nil {
			return nil, err
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			return params, nil
		}
		if !oracleIsElem(se, "param") {
			return nil, invalidFault("unexpected <%s> in <params>", oracleElemName(se))
		}
		if t, err = d.element(); err != nil {
			return nil, err
		}
		se, ok = t.(xml.StartElement)
		if !ok {
			// <param></param>: kolo/xmlrpc's encoding of a nil argument.
			if err := d.count(); err != nil {
				return nil, err
			}
			params = append(params, nil)
			continue
		}
		if !oracleIsElem(se, "value") {
			return nil, invalidFault("unexpected <%s> in <param>", oracleElemName(se))
		}
		v, err := d.value(0)
		if err != nil {
			return nil, err
		}
		params = append(params, v)
		if err := d.end("param"); err != nil {
			return nil, err
		}
	}
}

// response reads a methodResponse: its value, or the fault it carries.
func (d *oracleDecoder) response() (any, *gofunc.Fault, error) {
	if err := d.root("methodResponse"); err != nil {
		return nil, nil, err
	}
	t, err := d.element()
	if err != nil {
		return nil, nil, err
	}
	se, ok := t.(xml.StartElement)
	if !ok {
		return nil, nil, invalidFault("empty <methodResponse>")
	}
	var v any
	switch {
	case oracleIsElem(se, "params"):
		if err := d.start("param", "params"); err != nil {
			return nil, nil, err
		}
		if err := d.start("value", "param"); err != nil {
			return nil, nil, err
		}
		if v, err = d.value(0); err != nil {
			return nil, nil, err
		}
		if err := d.end("param"); err != nil {
			return nil, nil, err
		}
		if err := d.end("params"); err != nil {
			return nil, nil, err
		}
	case oracleIsElem(se, "fault"):
		if err := d.start("value", "fault"); err != nil {
			return nil, nil, err
		}
		if v, err = d.value(0); err != nil {
			return nil, nil, err
		}
		if err := d.end("fault"); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, invalidFault("unexpected <%s> in <methodResponse>", oracleElemName(se))
	}
	if err := d.end("methodResponse"); err != nil {
		return nil, nil, err
	}
	if err := d.epilog(); err != nil {
		return nil, nil, err
	}
	if oracleIsElem(se, "fault") {
		f, err := faultFrom(v)
		return nil, f, err
	}
	return v, nil, nil
}

// count charges one value against MaxValues.
func (d *oracleDecoder) count() error {
	d.values++
	if d.values > d.lim.MaxValues {
		return tooLargeFault("%s has more than %d values (MaxValues)", d.what, d.lim.MaxValues)
	}
	return nil
}

// value reads the inside of a <value> at the given depth, consuming
// </value>.
func (d *oracleDecoder) value(depth int) (any, error) {
	if err := d.count(); err != nil {
		return nil, err
	}
	d.text = d.text[:0]
	for {
		t, err := d.token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.CharData:
			d.text = append(d.text, t...)
		case xml.EndElement:
			// No type element: the spec says string.
			return string(d.text), nil
		case xml.StartElement:
			if !isSpace(d.text) {
				return nil, invalidFault("text %q beside <%s> in <value>", clip(string(d.text)), oracleElemName(t))
			}
			v, err := d.typed(t, depth)
			if err != nil {
				return nil, err
			}
			if err := d.end("value"); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

// typed reads a type element such as <int>, consuming its end.
func (d *oracleDecoder) typed(se xml.StartElement, depth int) (any, error) {
	name := se.Name.Local
	if se.Name.Space != "" {
		// Only the Apache extension types may come with a namespace
		// (<ex:i8>, <ex:nil/>), and the prefix is not checked:
		// clients disagree on it and it changes nothing here.
		switch name {
		case "i1", "i2", "i8", "nil":
		default:
			return nil, invalidFault("unknown type <%s>", oracleElemName(se))
		}
	}
	switch name {
	case "array":
		return d.array(depth + 1)
	case "struct":
		return d.structure(depth + 1)
	case "string":
		s, err := d.chars(name)
		return string(s), err
	}
	text, err := d.chars(name)
	if err != nil {
		return nil, err
	}
	switch name {
	case "int", "i4":
		return oracleParseInt(text, name, 32)
	case "i8":
		return oracleParseInt(text, name, 64)
	case "i2":
		return oracleParseInt(text, name, 16)
	case "i1":
		return oracleParseInt(text, name, 8)
	case "boolean":
		switch trimSpace(string(text)) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, invalidFault("bad boolean %q: want 0 or 1", clip(string(text)))
	case "double":
		return oracleParseDouble(text)
	case "base64":
		return oracleParseBase64(text)
	case "dateTime.iso8601":
		return oracleParseTime(trimSpace(string(text)))
	case "nil":
		if !isSpace(text) {
			return nil, invalidFault("<nil> must be empty")
		}
		return nil, nil
	}
	return nil, invalidFault("unknown type <%s>", oracleElemName(se))
}

// array reads <data> and its values up to </array>.
func (d *oracleDecoder) array(depth int) (any, error) {
	if depth > d.lim.MaxDepth {
		return nil, tooLargeFault("%s nests deeper than %d levels (MaxDepth)", d.what, d.lim.MaxDepth)
	}
	if err := d.start("data", "array"); err != nil {
		return nil, err
	}
	a := []any{}
	for {
		t, err := d.element()
		if err != nil {
			return nil, err
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			break // </data>
		}
		if !oracleIsElem(se, "value") {
			return nil, invalidFault("unexpected <%s> in <data>", oracleElemName(se))
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
	return a, d.end("array")
}

// structure reads <member>s up to </struct>.
func (d *oracleDecoder) structure(depth int) (any, error) {
	if depth > d.lim.MaxDepth {
		return nil, tooLargeFault("%s nests deeper than %d levels (MaxDepth)", d.what, d.lim.MaxDepth)
	}
	m := map[string]any{}
	for {
		t, err := d.element()
		if err != nil {
			return nil, err
		}
		se, ok := t.(xml.StartElement)
		if !ok {
			return m, nil // </struct>
		}
		if !oracleIsElem(se, "member") {
			return nil, invalidFault("unexpected <%s> in <struct>", oracleElemName(se))
		}
		if err := d.start("name", "member"); err != nil {
			return nil, err
		}
		b, err := d.chars("name")
		if err != nil {
			return nil, err
		}
		name := string(b)
		if err := d.start("value", "member"); err != nil {
			return nil, err
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		if err := d.end("member"); err != nil {
			return nil, err
		}
		// Duplicates are refused rather than resolved: if an ACL check
		// read the first and a module the last, they would disagree.
		if _, dup := m[name]; dup {
			return nil, invalidFault("duplicate struct member %q", clip(name))
		}
		m[name] = v
	}
}

// The scalar parsers as they were, so that the new ones are checked too.

func oracleParseInt(text []byte, tag string, bits int) (any, error) {
	s := trimSpace(string(text))
	n, err := strconv.ParseInt(s, 10, bits)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return nil, invalidFault("<%s> %q out of range", tag, clip(s))
		}
		return nil, invalidFault("bad <%s> %q", tag, clip(s))
	}
	return n, nil
}

// oracleParseDouble accepts decimal notation with an optional exponent, which
// Python sends ("1e+20"); not NaN, infinities, hex floats or
// underscores, which strconv would take.
func oracleParseDouble(text []byte) (any, error) {
	s := trimSpace(string(text))
	if !oracleIsDecimal(s) {
		return nil, invalidFault("bad <double> %q", clip(s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, invalidFault("<double> %q out of range", clip(s))
	}
	return f, nil
}

// oracleIsDecimal matches [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?.
func oracleIsDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && isDigit(s[i]) {
			i++
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

// oracleParseBase64 decodes standard, padded base64, ignoring white space:
// Python wraps its output at 76 columns.
func oracleParseBase64(text []byte) (any, error) {
	clean := text[:0] // text is scratch: compact it in place
	for _, c := range text {
		if !isSpaceByte(c) {
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, invalidFault("bad <base64>: %v", err)
	}
	return out[:n], nil
}

// oracleParseTime accepts 20060102T15:04:05 and 2006-01-02T15:04:05, each with
// an optional Z, ±07:00 or ±0700. No fractions: the encoder could not
// give them back. The result is in UTC.
func oracleParseTime(s string) (any, error) {
	var layout string
	switch {
	case len(s) >= 17 && shape(s[:17]) == "99999999T99:99:99":
		layout = "20060102T15:04:05"
	case len(s) >= 19 && shape(s[:19]) == "9999-99-99T99:99:99":
		layout = "2006-01-02T15:04:05"
	default:
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	switch shape(s[len(layout):]) {
	case "":
	case "Z", "+99:99", "-99:99":
		layout += "Z07:00"
	case "+9999", "-9999":
		layout += "Z0700"
	default:
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return nil, invalidFault("bad <dateTime.iso8601> %q", clip(s))
	}
	return t.UTC(), nil
}
