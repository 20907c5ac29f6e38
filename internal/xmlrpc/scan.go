package xmlrpc

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanner is the decoders' XML tokenizer: a streaming reader of the part
// of XML that can carry XML-RPC. It used to be encoding/xml in strict
// mode, which costs ~1 allocation per token and reads byte by byte; this
// one reads a window of the body and copies character data in runs. It
// keeps encoding/xml's strict-mode rules exactly (the differential fuzz
// test holds it to them): the same documents are well-formed, with the
// same text, names and namespaces, and the same errors are syntax errors.
// What the XML-RPC grammar allows on top is the decoder's business.
//
// Notably, like encoding/xml: character data ends at the end of input
// without an error (the error comes with the next token), \r and \r\n
// become \n, only the five predefined entities and character references
// are known, comments are not checked for valid UTF-8, and an end tag
// must repeat its start tag's raw name.
type scanner struct {
	src   io.Reader
	buf   []byte // the window: buf[r:w] is read but not consumed
	r, w  int
	err   error // why buf[w:] cannot be filled: io.EOF or a read error; sticky
	ascii bool  // US-ASCII declared: a byte >= 0x80 ends the input with an error

	rawW   int   // with an asciiError: where the data read really ends
	rawErr error // and the error that came with it

	// The current token, set by next. A start tag's name is top(); only
	// ints are stored per tag, which spares the write barriers.
	target   string // PI: its target
	localOff int    // start tag: where the name's local part starts
	nsEmpty  bool   // start tag: its namespace, once translated, is empty
	attr     []byte // start tag: the first attribute that is not a namespace declaration, or nil
	text     []byte // character data accumulates here; callers reset it
	chunk    int    // text token: it is text[chunk:]
	xmlDecl  bool   // PI: target "xml" (the declaration, wherever it is)

	pendingEnd bool // the last start tag was <x/>: its end comes next

	open []string // raw names of the open elements, innermost last

	// Namespace bindings, only as far as the grammar needs them: is a
	// prefix bound to the empty namespace? nil until a document declares one.
	ns     map[string]bool
	nsUndo []nsUndo

	decls    []nsDecl // the current start tag's namespace declarations
	nameBuf  []byte
	attrName []byte
	attrBuf  []byte
	scratch  []byte
}

// nsDecl is xmlns:prefix="value" (prefix "" for xmlns="value").
type nsDecl struct {
	prefix string
	empty  bool
}

type nsUndo struct {
	depth        int // the element whose declaration this undoes
	prefix       string
	bound, empty bool
}

type tokKind uint8

const (
	tokEOF       tokKind = iota // clean end of input between tokens, outside any element
	tokStart                    // a start tag (also the start half of <x/>)
	tokEnd                      // an end tag, already matched against its start
	tokText                     // character data or a CDATA section: text[chunk:]
	tokComment                  // a comment
	tokPI                       // a processing instruction (the XML declaration too)
	tokDirective                // <!DOCTYPE ...> and the like
)

// syntaxError is a well-formedness error, reported as CodeParse.
type syntaxError string

func (e syntaxError) Error() string { return "xml: syntax error: " + string(e) }

// charsetError is a declared encoding the decoder does not read.
type charsetError struct{ charset string }

func (e *charsetError) Error() string { return fmt.Sprintf("unsupported encoding %q", e.charset) }

// asciiError is a byte >= 0x80 in a document declared US-ASCII.
type asciiError struct{ b byte }

func (e *asciiError) Error() string {
	return fmt.Sprintf("byte %#x in a document declared US-ASCII", e.b)
}

const scanBufSize = 16 << 10

func (s *scanner) reset(src io.Reader) {
	s.src = src
	if s.buf == nil {
		s.buf = make([]byte, scanBufSize)
	}
	s.r, s.w = 0, 0
	s.err = nil
	s.ascii = false
	s.pendingEnd = false
	s.text = s.text[:0]
	clear(s.open[:cap(s.open)]) // the strings of earlier documents too
	s.open = s.open[:0]
	s.ns = nil
	s.nsUndo = s.nsUndo[:0]
}

// fill reads more input into an exhausted window. It reports whether
// there is any; if not, s.err says why.
func (s *scanner) fill() bool {
	if s.err != nil {
		return false
	}
	s.r, s.w = 0, 0
	for empty := 0; ; empty++ {
		n, err := s.src.Read(s.buf)
		if n > 0 {
			s.w = n
			if err != nil {
				s.err = err
			}
			if s.ascii {
				s.checkASCII()
			}
			return s.w > 0
		}
		if err != nil {
			s.err = err
			return false
		}
		if empty == 100 {
			s.err = io.ErrNoProgress
			return false
		}
	}
}

// checkASCII cuts the window before its first byte >= 0x80, which is
// where a US-ASCII document stops being readable. Read still sees the
// bytes as they came.
func (s *scanner) checkASCII() {
	for i := s.r; i < s.w; i++ {
		if s.buf[i] >= utf8.RuneSelf {
			s.rawW, s.rawErr = s.w, s.err
			s.w = i
			s.err = &asciiError{s.buf[i]}
			return
		}
	}
}

// Read reads the rest of the body, from the first byte not consumed, as
// it came: CallReader.Skip digests it without parsing it.
func (s *scanner) Read(p []byte) (int, error) {
	end, err := s.w, s.err
	if _, ok := s.err.(*asciiError); ok {
		end, err = s.rawW, s.rawErr
	}
	if s.r < end {
		n := copy(p, s.buf[s.r:end])
		s.r += n
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return s.src.Read(p)
}

// ensure tries to have n unread bytes in the window (fewer at the end of
// input); it keeps what is there, so it must not be used in the middle of
// a run that points into the window.
func (s *scanner) ensure(n int) {
	for s.w-s.r < n && s.err == nil {
		copy(s.buf, s.buf[s.r:s.w])
		s.w -= s.r
		s.r = 0
		m, err := s.src.Read(s.buf[s.w:])
		old := s.w
		s.w += m
		if err != nil {
			s.err = err
		}
		if s.ascii {
			s.r = old
			s.checkASCII()
			s.r = 0
		}
		if m == 0 && err == nil {
			return // no progress; the caller copes with fewer bytes
		}
	}
}

func (s *scanner) getc() (byte, bool) {
	if s.r == s.w && !s.fill() {
		return 0, false
	}
	b := s.buf[s.r]
	s.r++
	return b, true
}

// ungetc puts back the byte the last getc returned.
func (s *scanner) ungetc() { s.r-- }

// mustgetc is getc where the end of input is a syntax error.
func (s *scanner) mustgetc() (byte, error) {
	if b, ok := s.getc(); ok {
		return b, nil
	}
	return 0, s.unexpected()
}

func (s *scanner) unexpected() error {
	if s.err == io.EOF {
		return syntaxError("unexpected EOF")
	}
	return s.err
}

func (s *scanner) space() {
	for {
		b, ok := s.getc()
		if !ok {
			return
		}
		if !isSpaceByte(b) {
			s.ungetc()
			return
		}
	}
}

// The fast paths below read the common shapes straight from the window
// when all of a token is there. Each either consumes exactly what next
// would have and sets the same state, or consumes nothing and reports
// false; the caller then goes the general way.

// tryStart consumes a start tag without attributes, <name> or <name/>.
func (s *scanner) tryStart() bool {
	if s.pendingEnd {
		return false
	}
	buf := s.buf[s.r:s.w]
	if len(buf) < 3 || buf[0] != '<' {
		return false
	}
	n, ok := asciiName(buf[1:])
	if !ok {
		return false
	}
	switch end := buf[1+n:]; {
	case end[0] == '>':
		s.r += n + 2
		s.attr, s.decls = nil, s.decls[:0]
		name, known := knownName(buf[1 : 1+n])
		s.opened(name, known, false)
		return true
	case end[0] == '/' && len(end) > 1 && end[1] == '>':
		s.r += n + 3
		s.attr, s.decls = nil, s.decls[:0]
		name, known := knownName(buf[1 : 1+n])
		s.opened(name, known, true)
		return true
	}
	return false
}

// tryEnd consumes the end of the innermost element: the end half of
// <x/>, or </x> in the window.
func (s *scanner) tryEnd() bool {
	if s.pendingEnd {
		s.pendingEnd = false
		s.pop()
		return true
	}
	if s.depth() == 0 {
		return false
	}
	top := s.top()
	buf := s.buf[s.r:s.w]
	if len(buf) < len(top)+3 || buf[0] != '<' || buf[1] != '/' || buf[2+len(top)] != '>' || string(buf[2:2+len(top)]) != top {
		return false
	}
	s.r += len(top) + 3
	s.pop()
	return true
}

// tryText consumes character data that ends with a '<' in the window
// and needs no decoding: no entity, \r, ']', '>', quote or character
// XML forbids. The result aliases the window: use it before reading on.
func (s *scanner) tryText() ([]byte, bool) {
	if s.pendingEnd {
		return nil, false
	}
	buf := s.buf[s.r:s.w]
	high := false
	i := 0
	for ; i < len(buf); i++ {
		switch textClass[buf[i]] {
		case textPlain:
			continue
		case textHigh:
			high = true
			continue
		}
		break
	}
	if i == len(buf) || buf[i] != '<' || high && checkChars(buf[:i]) != nil {
		return nil, false
	}
	s.r += i
	return buf[:i], true
}

// local is the current start tag's name without its prefix.
func (s *scanner) local() string { return s.top()[s.localOff:] }

// depth is the number of open elements.
func (s *scanner) depth() int { return len(s.open) }

// next reads the next token. At the end of input it returns tokEOF if
// no element is open, else an error; read errors come back as they are.
func (s *scanner) next() (tokKind, error) {
	switch {
	case s.tryStart():
		return tokStart, nil
	case s.tryEnd(): // the end half of <x/> too
		return tokEnd, nil
	}
	b, ok := s.getc()
	if !ok {
		if s.err == io.EOF {
			if s.depth() > 0 {
				return 0, syntaxError("unexpected EOF")
			}
			return tokEOF, nil
		}
		return 0, s.err
	}
	if b != '<' {
		s.ungetc()
		s.chunk = len(s.text)
		if err := s.readText(-1, false); err != nil {
			return 0, err
		}
		return tokText, nil
	}
	if b, err := s.mustgetc(); err != nil {
		return 0, err
	} else {
		switch b {
		case '/':
			return s.endTag()
		case '?':
			return s.procInst()
		case '!':
			return s.bang()
		}
	}
	s.ungetc()
	return s.startTag()
}

// readName reads a name's bytes into dst: ASCII name bytes and any byte
// >= 0x80 (checked later). It reports false, consuming nothing, if the
// next byte cannot start one.
func (s *scanner) readName(dst []byte) ([]byte, bool, error) {
	b, err := s.mustgetc()
	if err != nil {
		return dst, false, err
	}
	if b < utf8.RuneSelf && !isNameByte(b) {
		s.ungetc()
		return dst, false, nil
	}
	dst = append(dst, b)
	for {
		// Fast path: the rest of the name in the window.
		i := s.r
		for i < s.w && (isNameByte(s.buf[i]) || s.buf[i] >= utf8.RuneSelf) {
			i++
		}
		dst = append(dst, s.buf[s.r:i]...)
		s.r = i
		if s.r < s.w {
			return dst, true, nil
		}
		if !s.fill() {
			return dst, false, s.unexpected()
		}
	}
}

// qname reads a qualified name (at most one colon) into s.nameBuf.
// It reports false, with a nil error, where encoding/xml's nsname does.
func (s *scanner) qname(dst []byte) ([]byte, bool, error) {
	dst, ok, err := s.readName(dst[:0])
	if !ok || err != nil {
		return dst, false, err
	}
	if !isXMLName(dst) {
		return dst, false, syntaxError("invalid XML name: " + clip(string(dst)))
	}
	if bytes.Count(dst, []byte{':'}) > 1 {
		return dst, false, nil
	}
	return dst, true, nil
}

// splitName is encoding/xml's split of a qualified name into prefix
// and local part: no prefix unless both sides of the colon are non-empty.
func splitName(name string) (prefix, local string) {
	if i := strings.IndexByte(name, ':'); i > 0 && i < len(name)-1 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// asciiName measures the ASCII name at the start of b: its length, and
// whether it is a valid name with at most one colon. A name that goes on
// with a byte >= 0x80 is not measured here (n is 0).
func asciiName(b []byte) (n int, ok bool) {
	colons := 0
	for n < len(b) && isNameByte(b[n]) {
		if b[n] == ':' {
			colons++
		}
		n++
	}
	if n == 0 || n == len(b) || b[n] >= utf8.RuneSelf {
		return 0, false
	}
	c := b[0]
	return n, colons <= 1 && ('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':')
}

func (s *scanner) endTag() (tokKind, error) {
	name, ok, err := s.qname(s.nameBuf)
	s.nameBuf = name
	if !ok {
		if err == nil {
			err = syntaxError("expected element name after </")
		}
		return 0, err
	}
	s.space()
	b, err := s.mustgetc()
	if err != nil {
		return 0, err
	}
	if b != '>' {
		return 0, syntaxError("invalid characters between </" + clip(string(name)) + " and >")
	}
	if s.depth() == 0 {
		return 0, syntaxError("unexpected end element </" + clip(string(name)) + ">")
	}
	if open := s.top(); open != string(name) {
		return 0, syntaxError("element <" + clip(open) + "> closed by </" + clip(string(name)) + ">")
	}
	s.pop()
	return tokEnd, nil
}

// top is the raw name of the innermost open element.
func (s *scanner) top() string { return s.open[len(s.open)-1] }

// pop closes the innermost element and undoes its namespace declarations.
func (s *scanner) pop() {
	depth := s.depth()
	for len(s.nsUndo) > 0 {
		u := s.nsUndo[len(s.nsUndo)-1]
		if u.depth != depth {
			break
		}
		if u.bound {
			s.ns[u.prefix] = u.empty
		} else {
			delete(s.ns, u.prefix)
		}
		s.nsUndo = s.nsUndo[:len(s.nsUndo)-1]
	}
	s.open = s.open[:depth-1]
}

func (s *scanner) startTag() (tokKind, error) {
	name, ok, err := s.qname(s.nameBuf)
	s.nameBuf = name
	if !ok {
		if err == nil {
			err = syntaxError("expected element name after <")
		}
		return 0, err
	}
	s.attr = nil
	s.decls = s.decls[:0]
	empty := false
	for {
		s.space()
		b, err := s.mustgetc()
		if err != nil {
			return 0, err
		}
		if b == '/' {
			if b, err = s.mustgetc(); err != nil {
				return 0, err
			}
			if b != '>' {
				return 0, syntaxError("expected /> in element")
			}
			empty = true
			break
		}
		if b == '>' {
			break
		}
		s.ungetc()
		if err := s.attribute(); err != nil {
			return 0, err
		}
	}
	str, known := knownName(name)
	s.opened(str, known, empty)
	return tokStart, nil
}

// opened records the start tag just read: its element is open, with its
// namespace declarations (s.decls) in force.
func (s *scanner) opened(name string, known, empty bool) {
	s.open = append(s.open, name)
	if len(s.decls) > 0 {
		s.declare()
	}
	if s.ns == nil && known {
		s.localOff, s.nsEmpty = 0, true // no prefix, no namespace declared
	} else {
		prefix, local := splitName(name)
		s.localOff = len(name) - len(local)
		s.nsEmpty = s.translatesEmpty(prefix)
	}
	s.pendingEnd = empty
}

// knownName returns name as a string, without allocating for the names
// XML-RPC uses; known says it is one of them (none has a prefix).
func knownName(name []byte) (_ string, known bool) {
	switch string(name) {
	case "value":
		return "value", true
	case "member":
		return "member", true
	case "name":
		return "name", true
	case "string":
		return "string", true
	case "int":
		return "int", true
	case "i4":
		return "i4", true
	case "i8":
		return "i8", true
	case "double":
		return "double", true
	case "boolean":
		return "boolean", true
	case "struct":
		return "struct", true
	case "array":
		return "array", true
	case "data":
		return "data", true
	case "dateTime.iso8601":
		return "dateTime.iso8601", true
	case "base64":
		return "base64", true
	case "nil":
		return "nil", true
	case "param":
		return "param", true
	case "params":
		return "params", true
	case "methodName":
		return "methodName", true
	case "methodCall":
		return "methodCall", true
	case "methodResponse":
		return "methodResponse", true
	case "fault":
		return "fault", true
	case "xml":
		return "xml", true
	}
	return string(name), false
}

// attribute reads one name="value". Namespace declarations are noted in
// s.decls for declare; the first other attribute in s.attr.
func (s *scanner) attribute() error {
	aname, ok, err := s.qname(s.attrName)
	s.attrName = aname
	if !ok {
		if err == nil {
			err = syntaxError("expected attribute name in element")
		}
		return err
	}
	s.space()
	b, err := s.mustgetc()
	if err != nil {
		return err
	}
	if b != '=' {
		return syntaxError("attribute name without = in element")
	}
	s.space()
	if b, err = s.mustgetc(); err != nil {
		return err
	}
	if b != '"' && b != '\'' {
		return syntaxError("unquoted or missing attribute value in element")
	}
	mark := len(s.text)
	err = s.readText(int(b), false)
	emptyValue := len(s.text) == mark
	s.text = s.text[:mark]
	if err != nil {
		return err
	}
	prefix, local := splitName(string(aname))
	switch {
	case prefix == "xmlns":
	case prefix == "" && local == "xmlns":
		local = ""
	default:
		if s.attr == nil {
			// A copy: attrName is reused by the next attribute.
			s.attrBuf = append(s.attrBuf[:0], aname...)
			s.attr = s.attrBuf
		}
		return nil
	}
	s.decls = append(s.decls, nsDecl{prefix: local, empty: emptyValue})
	return nil
}

// declare applies the start tag's namespace declarations to the element
// just opened, in order (a later one wins, as in encoding/xml).
func (s *scanner) declare() {
	if s.ns == nil {
		s.ns = make(map[string]bool)
	}
	for _, d := range s.decls {
		prefix, empty := d.prefix, d.empty
		old, bound := s.ns[prefix]
		s.nsUndo = append(s.nsUndo, nsUndo{depth: s.depth(), prefix: prefix, bound: bound, empty: old})
		s.ns[prefix] = empty
	}
}

// translatesEmpty reports whether an element with this prefix is in no
// namespace once encoding/xml has translated it.
func (s *scanner) translatesEmpty(prefix string) bool {
	switch prefix {
	case "xmlns", "xml":
		return false // "xmlns" stays as it is; "xml" is the XML namespace
	case "":
		if s.ns == nil {
			return true
		}
		empty, bound := s.ns[""]
		return !bound || empty
	}
	if s.ns == nil {
		return false
	}
	empty, bound := s.ns[prefix]
	return bound && empty
}

// procInst reads <?target data?>. The XML declaration is checked where
// it is: its version must be 1.0, and a declared encoding other than
// UTF-8 switches to US-ASCII or fails.
func (s *scanner) procInst() (tokKind, error) {
	target, ok, err := s.readName(s.nameBuf[:0])
	s.nameBuf = target
	if !ok {
		if err == nil {
			err = syntaxError("expected target name after <?")
		}
		return 0, err
	}
	if !isXMLName(target) {
		return 0, syntaxError("invalid XML name: " + clip(string(target)))
	}
	s.target, _ = knownName(target)
	s.xmlDecl = s.target == "xml"
	s.space()
	data := s.scratch[:0]
	var b0 byte
	for {
		b, err := s.mustgetc()
		if err != nil {
			return 0, err
		}
		if b0 == '?' && b == '>' {
			break
		}
		if s.xmlDecl {
			data = append(data, b)
		}
		b0 = b
	}
	if !s.xmlDecl {
		return tokPI, nil
	}
	s.scratch = data
	content := data[:len(data)-1] // without the '?' of "?>"
	if ver := procInstParam("version=", content); len(ver) > 0 && string(ver) != "1.0" {
		return 0, fmt.Errorf("xml: unsupported version %q; only version 1.0 is supported", ver)
	}
	if enc := procInstParam("encoding=", content); len(enc) > 0 && !bytes.EqualFold(enc, []byte("utf-8")) {
		switch strings.ToLower(string(enc)) {
		case "us-ascii", "ascii":
			s.ascii = true
			s.checkASCII()
		default:
			return 0, &charsetError{string(enc)}
		}
	}
	return tokPI, nil
}

// procInstParam finds key"value" (or 'value'), key ending in '=', in a
// processing instruction's data the way encoding/xml does: loosely, the
// first occurrence of key followed by a quote.
func procInstParam(key string, s []byte) []byte {
	i := 0
	var quote byte
	for i < len(s) {
		k := bytes.Index(s[i:], []byte(key))
		if k < 0 || i+k+len(key) >= len(s) {
			return nil
		}
		c := s[i+k+len(key)]
		i += k + len(key) + 1
		if c == '\'' || c == '"' {
			quote = c
			break
		}
	}
	if quote == 0 {
		return nil
	}
	j := bytes.IndexByte(s[i:], quote)
	if j < 0 {
		return nil
	}
	return s[i : i+j]
}

// bang reads what follows "<!": a comment, a CDATA section or a directive.
func (s *scanner) bang() (tokKind, error) {
	b, err := s.mustgetc()
	if err != nil {
		return 0, err
	}
	switch b {
	case '-':
		if b, err = s.mustgetc(); err != nil {
			return 0, err
		}
		if b != '-' {
			return 0, syntaxError("invalid sequence <!- not part of <!--")
		}
		return tokComment, s.comment()
	case '[':
		for i := range len("CDATA[") {
			if b, err = s.mustgetc(); err != nil {
				return 0, err
			}
			if b != "CDATA["[i] {
				return 0, syntaxError("invalid <![ sequence")
			}
		}
		s.chunk = len(s.text)
		return tokText, s.readText(-1, true)
	}
	return tokDirective, s.directive()
}

// comment skips a comment's body up to "-->"; "--" may not appear in it.
func (s *scanner) comment() error {
	var b0, b1 byte
	for {
		// Fast path: no '-' in the rest of the window.
		if b1 != '-' {
			if i := bytes.IndexByte(s.buf[s.r:s.w], '-'); i > 0 {
				s.r += i
				b0, b1 = 0, 0
			} else if i < 0 && s.r < s.w {
				s.r = s.w
				b0, b1 = 0, 0
			}
		}
		b, err := s.mustgetc()
		if err != nil {
			return err
		}
		if b0 == '-' && b1 == '-' {
			if b != '>' {
				return syntaxError(`invalid sequence "--" not allowed in comments`)
			}
			return nil
		}
		b0, b1 = b1, b
	}
}

// directive skips a directive's body the way encoding/xml reads it: up
// to the '>' that closes it, outside quotes, counting nested '<' and
// skipping nested comments. Its first byte has been read and, as in
// encoding/xml, does not count.
func (s *scanner) directive() error {
	var inquote byte
	depth := 0
	for {
		b, err := s.mustgetc()
		if err != nil {
			return err
		}
		if inquote == 0 && b == '>' && depth == 0 {
			return nil
		}
	handle:
		switch {
		case b == inquote:
			inquote = 0
		case inquote != 0:
		case b == '\'' || b == '"':
			inquote = b
		case b == '>':
			depth--
		case b == '<':
			for i := range len("!--") {
				if b, err = s.mustgetc(); err != nil {
					return err
				}
				if b != "!--"[i] {
					depth++
					goto handle
				}
			}
			var b0, b1 byte
			for {
				if b, err = s.mustgetc(); err != nil {
					return err
				}
				if b0 == '-' && b1 == '-' && b == '>' {
					break
				}
				b0, b1 = b1, b
			}
		}
	}
}

// Byte classes for character data.
const (
	textPlain   = iota // copied as it is
	textHigh           // part of a multi-byte character: copied, checked at the end
	textSpecial        // handled one at a time
	textIllegal        // a control character XML 1.0 does not allow
)

var textClass = func() (c [256]uint8) {
	for i := range c {
		switch {
		case i >= utf8.RuneSelf:
			c[i] = textHigh
		case i < 0x20 && i != '\t' && i != '\n' && i != '\r':
			c[i] = textIllegal
		}
	}
	for _, b := range []byte("<&\r]>\"'") {
		c[b] = textSpecial
	}
	return c
}()

// readText appends character data to s.text: up to '<' (not consumed)
// or the end of input in plain text, up to "]]>" in a CDATA section, up
// to the closing quote in an attribute value (quote >= 0). It follows
// encoding/xml's text(): entities, \r normalization, "]]>" refused
// outside CDATA, '<' refused in quotes, and every character checked.
func (s *scanner) readText(quote int, cdata bool) error {
	start := len(s.text)
	var b0, b1 byte // the last two raw bytes, for "]]>" and "\r\n"
	high := false
	for {
		buf := s.buf[s.r:s.w]
		i := 0
	run:
		for i < len(buf) {
			switch textClass[buf[i]] {
			case textPlain:
			case textHigh:
				high = true
			default:
				break run
			}
			i++
		}
		if i > 0 {
			s.appendText(buf[:i])
			s.r += i
			b0, b1 = 0, 0 // a plain byte is neither ']' nor '\r'
		}
		if s.r == s.w {
			if !s.fill() {
				if cdata {
					if s.err == io.EOF {
						return syntaxError("unexpected EOF in CDATA section")
					}
					return s.err
				}
				break // the text ends with the input; the error comes next
			}
			continue
		}
		b := s.buf[s.r]
		s.r++
		if quote < 0 && b0 == ']' && b1 == ']' && b == '>' {
			if cdata {
				s.text = s.text[:len(s.text)-2]
				break
			}
			return syntaxError("unescaped ]]> not in CDATA section")
		}
		if b == '<' && !cdata {
			if quote >= 0 {
				return syntaxError("unescaped < inside quoted string")
			}
			s.ungetc()
			break
		}
		if quote >= 0 && int(b) == quote {
			break
		}
		if b == '&' && !cdata {
			if err := s.entity(); err != nil {
				return err
			}
			b0, b1 = 0, 0
			continue
		}
		switch {
		case b == '\r':
			// \r and \r\n become \n.
			s.text = append(s.text, '\n')
			if next, ok := s.getc(); ok {
				if next == '\n' {
					b0, b1 = '\r', '\n'
					continue
				}
				s.ungetc()
			}
		case textClass[b] == textIllegal:
			return syntaxError(fmt.Sprintf("illegal character code %U", rune(b)))
		default:
			s.text = append(s.text, b)
		}
		b0, b1 = b1, b
	}
	if high {
		return checkChars(s.text[start:])
	}
	return nil
}

// appendText appends b to s.text, doubling a large buffer when it must
// grow: append's gentler growth would copy a multi-megabyte text (a
// file chunk in <base64>) several times over.
func (s *scanner) appendText(b []byte) {
	if need := len(s.text) + len(b); need > cap(s.text) && need > 64<<10 {
		grown := make([]byte, len(s.text), max(2*cap(s.text), need))
		copy(grown, s.text)
		s.text = grown
	}
	s.text = append(s.text, b...)
}

// checkChars checks that text is UTF-8 holding only characters XML 1.0
// allows. Control characters were refused as they came; what is left
// are multi-byte characters, of which U+FFFE and U+FFFF are not allowed.
func checkChars(text []byte) error {
	for i := 0; i < len(text); {
		if text[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		if r == utf8.RuneError && size == 1 {
			return syntaxError("invalid UTF-8")
		}
		if !isXMLChar(r) {
			return syntaxError(fmt.Sprintf("illegal character code %U", r))
		}
		i += size
	}
	return nil
}

// isXMLChar reports whether r may appear in XML 1.0 (its Char production).
func isXMLChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= utf8.MaxRune
}

// entity reads what follows '&' and appends the character it stands for:
// a character reference, or one of the five predefined entities. Any
// other entity is a syntax error: nothing can declare one.
func (s *scanner) entity() error {
	b, err := s.mustgetc()
	if err != nil {
		return err
	}
	var r rune
	known := false
	s.scratch = append(s.scratch[:0], '&')
	if b == '#' {
		s.scratch = append(s.scratch, b)
		if b, err = s.mustgetc(); err != nil {
			return err
		}
		base := 10
		if b == 'x' {
			base = 16
			s.scratch = append(s.scratch, b)
			if b, err = s.mustgetc(); err != nil {
				return err
			}
		}
		digits := len(s.scratch)
		for isDigit(b) || base == 16 && ('a' <= b && b <= 'f' || 'A' <= b && b <= 'F') {
			s.scratch = append(s.scratch, b)
			if b, err = s.mustgetc(); err != nil {
				return err
			}
		}
		if b != ';' {
			s.ungetc()
		} else {
			n, err := strconv.ParseUint(string(s.scratch[digits:]), base, 64)
			s.scratch = append(s.scratch, ';')
			if err == nil && n <= utf8.MaxRune {
				r, known = rune(n), true
				if !utf8.ValidRune(r) {
					r = utf8.RuneError // what string(rune(n)) makes of a surrogate
				}
			}
		}
	} else {
		s.ungetc()
		name, _, err := s.readName(s.scratch)
		s.scratch = name
		if err != nil {
			return err
		}
		if b, err = s.mustgetc(); err != nil {
			return err
		}
		if b != ';' {
			s.ungetc()
		} else {
			switch string(name[1:]) {
			case "lt":
				r, known = '<', true
			case "gt":
				r, known = '>', true
			case "amp":
				r, known = '&', true
			case "apos":
				r, known = '\'', true
			case "quot":
				r, known = '"', true
			}
			s.scratch = append(s.scratch, ';')
		}
	}
	if !known {
		ent := string(s.scratch)
		if !strings.HasSuffix(ent, ";") {
			ent += " (no semicolon)"
		}
		return syntaxError("invalid character entity " + clip(ent))
	}
	if !isXMLChar(r) {
		return syntaxError(fmt.Sprintf("illegal character code %U", r))
	}
	s.text = utf8.AppendRune(s.text, r)
	return nil
}

func isNameByte(c byte) bool { return nameByte[c] }

// nameByte marks the ASCII bytes a name may contain.
var nameByte = func() (t [256]bool) {
	for c := range t {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '_' || c == ':' || c == '.' || c == '-'
	}
	return t
}()

// isXMLName is encoding/xml's name check. ASCII names are checked here
// (a letter, '_' or ':' first); a name with other characters is checked
// by encoding/xml itself, whose character tables it would be a pity to
// copy for names that XML-RPC never uses.
func isXMLName(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	ascii := true
	for _, c := range name {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		c := name[0]
		return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || c == '_' || c == ':'
	}
	// "<name/>" makes encoding/xml check every character of name; its
	// colons become '_' (as valid anywhere in a name) so that its rule
	// on their number, checked by the caller, does not interfere.
	doc := make([]byte, 0, len(name)+3)
	doc = append(doc, '<')
	for _, c := range name {
		if c == ':' {
			c = '_'
		}
		doc = append(doc, c)
	}
	doc = append(doc, "/>"...)
	t, err := xml.NewDecoder(bytes.NewReader(doc)).RawToken()
	return err == nil && t != nil
}
