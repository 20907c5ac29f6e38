package xmlrpc

import (
	"context"
	"errors"
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
	method, err := d.callHead()
	if err != nil {
		return nil, d.fault(err)
	}
	params, err := d.callRest()
	if err != nil {
		return nil, d.fault(err)
	}
	return &Call{Method: method, Params: params}, nil
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
// exactly max bytes is fine. It remembers what went wrong, so that a
// read error is reported as itself whatever the parser made of it.
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

// decoder walks one document with the XML-RPC grammar over a scanner.
// Decoders are pooled with their buffers: a warm decode allocates
// little more than the values it returns.
type decoder struct {
	s      scanner
	lr     limitReader
	lim    Limits
	what   string // "request" or "response", for messages
	values int

	vals    []any    // values of the arrays (and params) being read, innermost last
	members []member // members of the structs being read, innermost last
	names   map[string]string
	recent  [64]string // a cache in front of names
}

type member struct {
	name  string
	value any
}

var decoderPool = sync.Pool{New: func() any { return new(decoder) }}

// Pooled buffers larger than this are dropped rather than kept.
const maxPooledBuffer = 256 << 10

func newDecoder(r io.Reader, lim Limits, what string) *decoder {
	if r == nil {
		r = strings.NewReader("") // an empty body, reported as such
	}
	d := decoderPool.Get().(*decoder)
	d.lim = lim.withDefaults()
	d.what = what
	d.values = 0
	d.lr = limitReader{r: r, remaining: d.lim.MaxBytes}
	d.s.reset(&d.lr)
	// A UTF-8 byte order mark is legal before the XML declaration and
	// some Windows clients send one.
	d.s.ensure(3)
	if d.s.w-d.s.r >= 3 && string(d.s.buf[d.s.r:d.s.r+3]) == "\xEF\xBB\xBF" {
		d.s.r += 3
	}
	return d
}

func (d *decoder) release() {
	clear(d.vals)
	d.vals = d.vals[:0]
	clear(d.members)
	d.members = d.members[:0]
	d.lr = limitReader{}
	d.s.src = nil
	if cap(d.s.text) > maxPooledBuffer {
		d.s.text = nil
	}
	if cap(d.s.scratch) > maxPooledBuffer {
		d.s.scratch = nil
	}
	// The stacks, by the bytes their elements take.
	if cap(d.s.open)*16 > maxPooledBuffer || cap(d.vals)*16 > maxPooledBuffer || cap(d.members)*32 > maxPooledBuffer {
		*d = decoder{s: scanner{buf: d.s.buf}, names: d.names, recent: d.recent}
	}
	decoderPool.Put(d)
}

// fault turns any error met while decoding into the fault to report.
// The reader's own state wins over what the parser made of it.
func (d *decoder) fault(err error) *gofunc.Fault {
	var f *gofunc.Fault
	var cs *charsetError
	var syntax syntaxError
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
	case errors.As(err, &cs):
		return invalidFault("unsupported encoding %q: use UTF-8", clip(cs.charset))
	case errors.As(err, &syntax):
		return parseFault("xml syntax error near byte %d of the %s: %s", d.offset(), d.what, string(syntax))
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return parseFault("unexpected end of %s document", d.what)
	}
	return parseFault("%v", err)
}

// offset is how many bytes of the body have been consumed.
func (d *decoder) offset() int64 {
	return d.lim.MaxBytes - d.lr.remaining - int64(d.s.w-d.s.r)
}

// token returns the next token inside the root element: a start tag
// (with its attributes checked), an end tag or text. Comments are
// dropped; directives and processing instructions are refused.
func (d *decoder) token() (tokKind, error) {
	for {
		k, err := d.s.next()
		if err != nil {
			return 0, err
		}
		switch k {
		case tokStart:
			if d.s.attr != nil {
				// XML-RPC has no attributes. Namespace declarations
				// are allowed, for Apache's <ex:i8 xmlns:ex="...">.
				return 0, invalidFault("attribute %q on <%s> not allowed", clip(string(d.s.attr)), d.elemName())
			}
			return k, nil
		case tokEnd, tokText:
			return k, nil
		case tokPI:
			return 0, invalidFault("processing instruction <?%s?> not allowed", clip(d.s.target))
		case tokDirective:
			return 0, invalidFault("directive <!...> not allowed")
		case tokEOF:
			return 0, syntaxError("unexpected EOF") // next reports it; here for completeness
		}
	}
}

// element returns the next start or end tag, allowing only white space
// before it.
func (d *decoder) element() (tokKind, error) {
	if d.s.tryStart() {
		return tokStart, nil
	}
	if d.s.tryEnd() {
		return tokEnd, nil
	}
	for {
		d.s.text = d.s.text[:0]
		k, err := d.token()
		if err != nil {
			return 0, err
		}
		if k != tokText {
			return k, nil
		}
		if !isSpace(d.s.text) {
			return 0, invalidFault("unexpected text %q", clip(string(d.s.text)))
		}
	}
}

// isElem reports whether the current start tag is <local>, in no namespace.
func (d *decoder) isElem(local string) bool {
	return d.s.nsEmpty && d.s.local() == local
}

// elemName is the current tag's name, for messages.
func (d *decoder) elemName() string { return clip(d.s.top()) }

// start consumes the start tag <name>, after optional white space.
func (d *decoder) start(name, parent string) error {
	k, err := d.element()
	if err != nil {
		return err
	}
	if k != tokStart {
		return invalidFault("missing <%s> in <%s>", name, parent)
	}
	if !d.isElem(name) {
		return invalidFault("unexpected <%s> in <%s>, want <%s>", d.elemName(), parent, name)
	}
	return nil
}

// end consumes the end of the current element, after optional white
// space; the scanner has checked that the names match.
func (d *decoder) end(name string) error {
	if d.s.tryEnd() {
		return nil
	}
	k, err := d.element()
	if err != nil {
		return err
	}
	if k == tokStart {
		return invalidFault("unexpected <%s> in <%s>", d.elemName(), name)
	}
	return nil
}

// chars returns the character data of a text-only element, consuming its
// end. The result aliases a scanner buffer: use it before reading on.
func (d *decoder) chars(name string) ([]byte, error) {
	d.s.text = d.s.text[:0]
	if text, ok := d.s.tryText(); ok {
		if d.s.tryEnd() {
			return text, nil
		}
		d.s.text = append(d.s.text, text...)
	}
	for {
		k, err := d.token()
		if err != nil {
			return nil, err
		}
		switch k {
		case tokEnd:
			return d.s.text, nil
		case tokStart:
			return nil, invalidFault("unexpected <%s> in <%s>", d.elemName(), name)
		}
	}
}

// root reads the prolog (an optional XML declaration, white space and
// comments) and the root element's start tag, which must be <name>.
func (d *decoder) root(name string) error {
	for first := true; ; first = false {
		d.s.text = d.s.text[:0]
		k, err := d.s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEOF:
			return parseFault("empty %s document", d.what)
		case tokPI:
			if !first || !d.s.xmlDecl {
				return invalidFault("processing instruction <?%s?> not allowed", clip(d.s.target))
			}
		case tokDirective:
			return invalidFault("directive <!...> not allowed (no DOCTYPE in XML-RPC)")
		case tokText:
			if !isSpace(d.s.text) {
				return parseFault("text before the root element")
			}
		case tokStart:
			if d.s.attr != nil {
				return invalidFault("attribute %q on <%s> not allowed", clip(string(d.s.attr)), d.elemName())
			}
			if !d.isElem(name) {
				return invalidFault("root element is <%s>, want <%s>", d.elemName(), name)
			}
			return nil
		}
	}
}

// epilog reads to the end of the body: only white space and comments may
// follow the root element.
func (d *decoder) epilog() error {
	for {
		d.s.text = d.s.text[:0]
		k, err := d.s.next()
		if err != nil {
			return err
		}
		switch k {
		case tokEOF:
			return nil
		case tokComment:
			continue
		case tokText:
			if isSpace(d.s.text) {
				continue
			}
		}
		return parseFault("trailing content after the %s document", d.what)
	}
}

// callHead reads a call up to and including </methodName> and returns
// the method name. CallReader stops here to let a server judge the call
// before its parameters are decoded.
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
	method := trimSpaceBytes(name)
	if !ValidMethodName(string(method)) {
		return "", invalidFault("invalid method name %q", clip(string(method)))
	}
	return d.intern(method), nil
}

// callRest reads the rest of a call after callHead: its parameters, the
// end of the document and what follows it.
func (d *decoder) callRest() ([]any, error) {
	params := []any{}
	k, err := d.element()
	if err != nil {
		return nil, err
	}
	if k == tokStart {
		if !d.isElem("params") {
			return nil, invalidFault("unexpected <%s> in <methodCall>", d.elemName())
		}
		if params, err = d.paramList(); err != nil {
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

// paramList reads the <param>s of a call up to </params>.
func (d *decoder) paramList() ([]any, error) {
	base := len(d.vals)
	for {
		k, err := d.element()
		if err != nil {
			return nil, err
		}
		if k != tokStart {
			return d.popValues(base), nil
		}
		if !d.isElem("param") {
			return nil, invalidFault("unexpected <%s> in <params>", d.elemName())
		}
		if k, err = d.element(); err != nil {
			return nil, err
		}
		if k != tokStart {
			// <param></param>: kolo/xmlrpc's encoding of a nil argument.
			if err := d.count(); err != nil {
				return nil, err
			}
			d.vals = append(d.vals, nil)
			continue
		}
		if !d.isElem("value") {
			return nil, invalidFault("unexpected <%s> in <param>", d.elemName())
		}
		v, err := d.value(0)
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
		if err := d.end("param"); err != nil {
			return nil, err
		}
	}
}

// popValues returns the values above base as a slice of their own.
func (d *decoder) popValues(base int) []any {
	a := make([]any, len(d.vals)-base)
	copy(a, d.vals[base:])
	clear(d.vals[base:])
	d.vals = d.vals[:base]
	return a
}

// response reads a methodResponse: its value, or the fault it carries.
func (d *decoder) response() (any, *gofunc.Fault, error) {
	if err := d.root("methodResponse"); err != nil {
		return nil, nil, err
	}
	k, err := d.element()
	if err != nil {
		return nil, nil, err
	}
	if k != tokStart {
		return nil, nil, invalidFault("empty <methodResponse>")
	}
	var v any
	isFault := d.isElem("fault")
	switch {
	case d.isElem("params"):
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
	case isFault:
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
		return nil, nil, invalidFault("unexpected <%s> in <methodResponse>", d.elemName())
	}
	if err := d.end("methodResponse"); err != nil {
		return nil, nil, err
	}
	if err := d.epilog(); err != nil {
		return nil, nil, err
	}
	if isFault {
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
	d.s.text = d.s.text[:0]
	if d.s.tryStart() {
		return d.typedValue(depth)
	}
	if text, ok := d.s.tryText(); ok {
		if d.s.tryEnd() {
			return string(text), nil // no type element: the spec says string
		}
		d.s.text = append(d.s.text, text...)
	}
	for {
		k, err := d.token()
		if err != nil {
			return nil, err
		}
		switch k {
		case tokEnd:
			// No type element: the spec says string.
			return string(d.s.text), nil
		case tokStart:
			if !isSpace(d.s.text) {
				return nil, invalidFault("text %q beside <%s> in <value>", clip(string(d.s.text)), d.elemName())
			}
			return d.typedValue(depth)
		}
	}
}

// typedValue reads a type element and the </value> after it.
func (d *decoder) typedValue(depth int) (any, error) {
	v, err := d.typed(depth)
	if err != nil {
		return nil, err
	}
	if err := d.end("value"); err != nil {
		return nil, err
	}
	return v, nil
}

// Value types, by their element name.
type valueType uint8

const (
	typeUnknown valueType = iota
	typeArray
	typeStruct
	typeString
	typeInt // <int> and <i4>: 32 bits
	typeI8
	typeI2
	typeI1
	typeBoolean
	typeDouble
	typeBase64
	typeDateTime
	typeNil
)

// valueTypeOf names the type the current start tag stands for. Only the
// Apache extension types may come with a namespace (<ex:i8>, <ex:nil/>),
// and the prefix is not checked: clients disagree on it and it changes
// nothing here.
func (d *decoder) valueTypeOf() valueType {
	local := d.s.local()
	if !d.s.nsEmpty {
		switch local {
		case "i8":
			return typeI8
		case "i2":
			return typeI2
		case "i1":
			return typeI1
		case "nil":
			return typeNil
		}
		return typeUnknown
	}
	switch local {
	case "string":
		return typeString
	case "int", "i4":
		return typeInt
	case "i8":
		return typeI8
	case "double":
		return typeDouble
	case "boolean":
		return typeBoolean
	case "struct":
		return typeStruct
	case "array":
		return typeArray
	case "dateTime.iso8601":
		return typeDateTime
	case "base64":
		return typeBase64
	case "nil":
		return typeNil
	case "i2":
		return typeI2
	case "i1":
		return typeI1
	}
	return typeUnknown
}

// typed reads a type element such as <int>, consuming its end.
func (d *decoder) typed(depth int) (any, error) {
	typ := d.valueTypeOf()
	switch typ {
	case typeArray:
		return d.array(depth + 1)
	case typeStruct:
		return d.structure(depth + 1)
	case typeUnknown:
		name := d.elemName()
		if !d.s.nsEmpty {
			return nil, invalidFault("unknown type <%s>", name)
		}
		// Its content first, as encoding/xml's decoder did: an error in
		// there is reported before the unknown name.
		if _, err := d.chars(name); err != nil {
			return nil, err
		}
		return nil, invalidFault("unknown type <%s>", name)
	}
	tag := typeTag(typ, d.s.local())
	text, err := d.chars(tag)
	if err != nil {
		return nil, err
	}
	switch typ {
	case typeString:
		return string(text), nil
	case typeInt:
		return parseInt(text, tag, 32)
	case typeI8:
		return parseInt(text, tag, 64)
	case typeI2:
		return parseInt(text, tag, 16)
	case typeI1:
		return parseInt(text, tag, 8)
	case typeBoolean:
		switch string(trimSpaceBytes(text)) {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, invalidFault("bad boolean %q: want 0 or 1", clip(string(text)))
	case typeDouble:
		return parseDouble(text)
	case typeBase64:
		return parseBase64(text)
	case typeDateTime:
		return parseDateTime(text)
	}
	// typeNil
	if !isSpace(text) {
		return nil, invalidFault("<nil> must be empty")
	}
	return nil, nil
}

// typeTag is a known type's element name, for messages.
func typeTag(typ valueType, local string) string {
	switch typ {
	case typeInt:
		if local == "i4" {
			return "i4"
		}
		return "int"
	case typeI8:
		return "i8"
	case typeI2:
		return "i2"
	case typeI1:
		return "i1"
	case typeString:
		return "string"
	case typeBoolean:
		return "boolean"
	case typeDouble:
		return "double"
	case typeBase64:
		return "base64"
	case typeDateTime:
		return "dateTime.iso8601"
	}
	return "nil"
}

// array reads <data> and its values up to </array>.
func (d *decoder) array(depth int) (any, error) {
	if depth > d.lim.MaxDepth {
		return nil, tooLargeFault("%s nests deeper than %d levels (MaxDepth)", d.what, d.lim.MaxDepth)
	}
	if err := d.start("data", "array"); err != nil {
		return nil, err
	}
	base := len(d.vals)
	for {
		k, err := d.element()
		if err != nil {
			return nil, err
		}
		if k != tokStart {
			break // </data>
		}
		if !d.isElem("value") {
			return nil, invalidFault("unexpected <%s> in <data>", d.elemName())
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		d.vals = append(d.vals, v)
	}
	a := d.popValues(base)
	return a, d.end("array")
}

// smallStruct is the number of members up to which duplicates are found
// by comparing names; past it, the struct's map is built as it goes.
const smallStruct = 16

// structure reads <member>s up to </struct>.
func (d *decoder) structure(depth int) (any, error) {
	if depth > d.lim.MaxDepth {
		return nil, tooLargeFault("%s nests deeper than %d levels (MaxDepth)", d.what, d.lim.MaxDepth)
	}
	base := len(d.members)
	var big map[string]any // once the struct has more than smallStruct members
	for {
		k, err := d.element()
		if err != nil {
			return nil, err
		}
		if k != tokStart {
			break // </struct>
		}
		if !d.isElem("member") {
			return nil, invalidFault("unexpected <%s> in <struct>", d.elemName())
		}
		if err := d.start("name", "member"); err != nil {
			return nil, err
		}
		b, err := d.chars("name")
		if err != nil {
			return nil, err
		}
		name := d.intern(b)
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
		if big != nil {
			if _, dup := big[name]; dup {
				return nil, duplicateMember(name)
			}
			big[name] = v
			continue
		}
		for _, m := range d.members[base:] {
			if m.name == name {
				return nil, duplicateMember(name)
			}
		}
		d.members = append(d.members, member{name, v})
		if len(d.members)-base > smallStruct {
			big = d.popMembers(base, 4*smallStruct)
		}
	}
	if big != nil {
		return big, nil
	}
	return d.popMembers(base, 0), nil
}

func duplicateMember(name string) error {
	return invalidFault("duplicate struct member %q", clip(name))
}

// popMembers returns the members above base as a map with room for at
// least size members.
func (d *decoder) popMembers(base, size int) map[string]any {
	ms := d.members[base:]
	m := make(map[string]any, max(size, len(ms)))
	for _, mb := range ms {
		m[mb.name] = mb.value
	}
	clear(ms)
	d.members = d.members[:base]
	return m
}

// intern returns b as a string, sharing the strings of names seen
// before: struct members repeat the same few names thousands of times.
// A small direct-mapped cache answers most lookups before the map.
func (d *decoder) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	slot := &d.recent[(len(b)*7+int(b[0])*3+int(b[len(b)-1]))%len(d.recent)]
	if *slot == string(b) {
		return *slot
	}
	if s, ok := d.names[string(b)]; ok {
		*slot = s
		return s
	}
	s := string(b)
	if len(b) <= 64 {
		if d.names == nil || len(d.names) >= 1024 {
			d.names = make(map[string]string)
		}
		d.names[s] = s
	}
	return s
}
