package xmlrpc

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/gofunc/gofunc"
)

// Call is a decoded <methodCall>.
type Call struct {
	// Method is the method name, e.g. "command.run"; it matches
	// [A-Za-z0-9_.:-]{1,256}.
	Method string
	// Params are the decoded parameters (see the package doc for the
	// value model). Never nil, possibly empty.
	Params []any
}

// DecodeCall reads one <methodCall> from r, reading r to its end (within
// lim.MaxBytes) to make sure nothing follows the document. Errors are
// *gofunc.Fault: CodeParse for malformed XML or a failed read, CodeInvalid
// for well-formed XML that is not a valid call (bad method name, unknown
// type tag, DOCTYPE...), CodeTooLarge for a body, depth or value count
// over lim (the message names the limit), CodeTimeout when reading r hit
// a deadline, CodeCanceled when its context was canceled.
func DecodeCall(r io.Reader, lim Limits) (*Call, error) {
	d := newDecoder(r, lim, "request")
	defer d.release()
	call, err := d.call()
	if err != nil {
		return nil, d.fault(err)
	}
	return call, nil
}

// DecodeResponse reads one <methodResponse> from r, within lim, and
// returns its value. A <fault> comes back as a *gofunc.Fault error with
// the server's code and message. A response that cannot be decoded gives
// a *ResponseError carrying the fault DecodeCall would have given.
func DecodeResponse(r io.Reader, lim Limits) (any, error) {
	d := newDecoder(r, lim, "response")
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

// ValidMethodName reports whether name may be a method name on the wire:
// 1 to 256 characters from [A-Za-z0-9_.:-].
func ValidMethodName(name string) bool {
	if len(name) == 0 || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == ':' || c == '-':
		default:
			return false
		}
	}
	return true
}

// errTooLarge is what limitReader returns once the body passed MaxBytes.
var errTooLarge = errors.New("xmlrpc: body too large")

// limitReader passes through at most max bytes and then probes for one
// more: only if that byte exists is the body too large, so a body of
// exactly max bytes is fine. It remembers what went wrong, because
// encoding/xml may rewrap or replace reader errors.
type limitReader struct {
	r         io.Reader
	remaining int64
	exceeded  bool
	err       error // first read error other than io.EOF
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.exceeded {
		return 0, errTooLarge
	}
	if int64(len(p)) > l.remaining+1 {
		p = p[:l.remaining+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.remaining {
		l.exceeded = true
		n = int(l.remaining)
		l.remaining = 0
		return n, errTooLarge
	}
	l.remaining -= int64(n)
	if err != nil && err != io.EOF && l.err == nil {
		l.err = err
	}
	return n, err
}

var bufPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}

// decoder walks one document with the XML-RPC grammar.
type decoder struct {
	xd         *xml.Decoder
	lr         limitReader
	br         *bufio.Reader
	lim        Limits
	what       string // "request" or "response", for messages
	values     int
	badCharset string
	text       []byte // scratch for character data
}

func newDecoder(r io.Reader, lim Limits, what string) *decoder {
	lim = lim.withDefaults()
	if r == nil {
		r = strings.NewReader("") // an empty body, reported as such
	}
	d := &decoder{lim: lim, what: what}
	d.lr = limitReader{r: r, remaining: lim.MaxBytes}
	d.br = bufPool.Get().(*bufio.Reader)
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

func (d *decoder) release() {
	d.br.Reset(nil)
	bufPool.Put(d.br)
	d.br = nil
}

// charsetReader accepts US-ASCII (a subset of UTF-8, checked byte by
// byte) and refuses every other declared encoding; encoding/xml handles
// UTF-8 itself without asking.
func (d *decoder) charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "us-ascii", "ascii":
		return asciiReader{r}, nil
	}
	d.badCharset = charset
	return nil, fmt.Errorf("unsupported encoding %q", charset)
}

type asciiReader struct{ r io.Reader }

func (a asciiReader) Read(p []byte) (int, error) {
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
func (d *decoder) fault(err error) *gofunc.Fault {
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
func (d *decoder) token() (xml.Token, error) {
	for {
		t, err := d.xd.Token()
		if err != nil {
			return nil, err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := checkAttrs(t); err != nil {
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

// checkAttrs refuses attributes: XML-RPC has none. Namespace declarations
// are allowed, for Apache's <ex:i8 xmlns:ex="...">.
func checkAttrs(se xml.StartElement) error {
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
func (d *decoder) element() (xml.Token, error) {
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
func (d *decoder) start(name, parent string) error {
	t, err := d.element()
	if err != nil {
		return err
	}
	se, ok := t.(xml.StartElement)
	if !ok {
		return invalidFault("missing <%s> in <%s>", name, parent)
	}
	if !isElem(se, name) {
		return invalidFault("unexpected <%s> in <%s>, want <%s>", elemName(se), parent, name)
	}
	return nil
}

// end consumes the end of the current element, after optional white
// space; encoding/xml has already checked that the names match.
func (d *decoder) end(name string) error {
	t, err := d.element()
	if err != nil {
		return err
	}
	if se, ok := t.(xml.StartElement); ok {
		return invalidFault("unexpected <%s> in <%s>", elemName(se), name)
	}
	return nil
}

// chars returns the character data of a text-only element, consuming its
// end. The result aliases d.text.
func (d *decoder) chars(name string) ([]byte, error) {
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
			return nil, invalidFault("unexpected <%s> in <%s>", elemName(t), name)
		}
	}
}

func isElem(se xml.StartElement, local string) bool {
	return se.Name.Local == local && se.Name.Space == ""
}

func elemName(se xml.StartElement) string {
	if se.Name.Space != "" {
		return clip(se.Name.Space) + ":" + clip(se.Name.Local)
	}
	return clip(se.Name.Local)
}

// root reads the prolog (an optional XML declaration, white space and
// comments) and the root element, which must be <name>.
func (d *decoder) root(name string) error {
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
			if err := checkAttrs(t); err != nil {
				return err
			}
			if !isElem(t, name) {
				return invalidFault("root element is <%s>, want <%s>", elemName(t), name)
			}
			return nil
		}
	}
}

// epilog reads to the end of the body: only white space and comments may
// follow the root element.
func (d *decoder) epilog() error {
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

func (d *decoder) call() (*Call, error) {
	method, err := d.callHead()
	if err != nil {
		return nil, err
	}
	params, err := d.callRest()
	if err != nil {
		return nil, err
	}
	return &Call{Method: method, Params: params}, nil
}

// callHead reads a call up to and including </methodName> and returns
// the method name. CallReader stops here to let a server judge the
// call before its parameters are decoded.
func (d *decoder) callHead() (string, error) {
	if err := d.root("methodCall"); err != nil {
		return "", err
	}
	if err := d.start("methodName", "methodCall"); err != nil {
		return "", err
	}
	name, err := d.chars("methodName")
	if err != nil {
		return "", err
	}
	// Surrounding white space is tolerated (a pretty-printer's doing);
	// anything else outside the allowed set is not.
	method := trimSpace(string(name))
	if !ValidMethodName(method) {
		return "", invalidFault("invalid method name %q", clip(method))
	}
	return method, nil
}

// callRest reads the rest of a call after callHead: its parameters,
// the end of the document and what follows it.
func (d *decoder) callRest() ([]any, error) {
	params := []any{}
	t, err := d.element()
	if err != nil {
		return nil, err
	}
	if se, ok := t.(xml.StartElement); ok {
		if !isElem(se, "params") {
			return nil, invalidFault("unexpected <%s> in <methodCall>", elemName(se))
		}
		if params, err = d.params(); err != nil {
			return nil, err
		}
		if err := d.end("methodCall"); err != nil {
			return nil, err
		}
	}
	if err := d.epilog(); err != nil {
		return nil, err
	}
	return params, nil
}

// params reads the <param>s of a call up to </params>.
func (d *decoder) params() ([]any, error) {
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
		if !isElem(se, "param") {
			return nil, invalidFault("unexpected <%s> in <params>", elemName(se))
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
		if !isElem(se, "value") {
			return nil, invalidFault("unexpected <%s> in <param>", elemName(se))
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
func (d *decoder) response() (any, *gofunc.Fault, error) {
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
	case isElem(se, "params"):
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
	case isElem(se, "fault"):
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
		return nil, nil, invalidFault("unexpected <%s> in <methodResponse>", elemName(se))
	}
	if err := d.end("methodResponse"); err != nil {
		return nil, nil, err
	}
	if err := d.epilog(); err != nil {
		return nil, nil, err
	}
	if isElem(se, "fault") {
		f, err := faultFrom(v)
		return nil, f, err
	}
	return v, nil, nil
}

// faultFrom reads the faultCode/faultString struct of a <fault>.
func faultFrom(v any) (*gofunc.Fault, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidFault("<fault> value is %s, want struct", wireTypeName(v))
	}
	code, ok := m["faultCode"].(int64)
	if !ok {
		return nil, invalidFault("<fault> faultCode is %s, want int", wireTypeName(m["faultCode"]))
	}
	msg, ok := m["faultString"].(string)
	if !ok {
		return nil, invalidFault("<fault> faultString is %s, want string", wireTypeName(m["faultString"]))
	}
	return &gofunc.Fault{Code: gofunc.Code(code), Message: msg}, nil
}

// count charges one value against MaxValues.
func (d *decoder) count() error {
	d.values++
	if d.values > d.lim.MaxValues {
		return tooLargeFault("%s has more than %d values (MaxValues)", d.what, d.lim.MaxValues)
	}
	return nil
}

// value reads the inside of a <value> at the given depth, consuming
// </value>.
func (d *decoder) value(depth int) (any, error) {
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
				return nil, invalidFault("text %q beside <%s> in <value>", clip(string(d.text)), elemName(t))
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
func (d *decoder) typed(se xml.StartElement, depth int) (any, error) {
	name := se.Name.Local
	if se.Name.Space != "" {
		// Only the Apache extension types may come with a namespace
		// (<ex:i8>, <ex:nil/>), and the prefix is not checked:
		// clients disagree on it and it changes nothing here.
		switch name {
		case "i1", "i2", "i8", "nil":
		default:
			return nil, invalidFault("unknown type <%s>", elemName(se))
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
	case "int", "i4", "i8":
		return parseInt(text, name, 64)
	case "i2":
		return parseInt(text, name, 16)
	case "i1":
		return parseInt(text, name, 8)
	case "boolean":
		switch trimSpace(string(text)) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, invalidFault("bad boolean %q: want 0 or 1", clip(string(text)))
	case "double":
		return parseDouble(text)
	case "base64":
		return parseBase64(text)
	case "dateTime.iso8601":
		return parseTime(trimSpace(string(text)))
	case "nil":
		if !isSpace(text) {
			return nil, invalidFault("<nil> must be empty")
		}
		return nil, nil
	}
	return nil, invalidFault("unknown type <%s>", elemName(se))
}

// array reads <data> and its values up to </array>.
func (d *decoder) array(depth int) (any, error) {
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
		if !isElem(se, "value") {
			return nil, invalidFault("unexpected <%s> in <data>", elemName(se))
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
func (d *decoder) structure(depth int) (any, error) {
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
		if !isElem(se, "member") {
			return nil, invalidFault("unexpected <%s> in <struct>", elemName(se))
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
