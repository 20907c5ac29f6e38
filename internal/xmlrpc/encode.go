package xmlrpc

import (
	"encoding"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
)

const xmlHeader = `<?xml version="1.0" encoding="UTF-8"?>` + "\n"

const (
	// maxEncodeDepth bounds nesting (arrays, structs, maps and
	// pointers) so that deep or cyclic values fail instead of
	// exhausting the stack.
	maxEncodeDepth = 128
	// Past this depth every pointer, map and slice is remembered while
	// it is being encoded, to report a cycle as soon as it closes
	// (as encoding/json does) rather than after an exponential walk.
	startDetectingCycles = 32
)

// EncodeCall writes a <methodCall> of method with params. The method name
// must satisfy ValidMethodName. Errors are *EncodeError (nothing is
// written then) or the writer's error.
func EncodeCall(w io.Writer, method string, params ...any) error {
	if !ValidMethodName(method) {
		return &EncodeError{Path: "method", Reason: fmt.Sprintf("invalid method name %q", clip(method))}
	}
	e := newEncodeState()
	defer e.free()
	e.buf = append(e.buf, xmlHeader+"<methodCall><methodName>"...)
	e.buf = append(e.buf, method...)
	e.buf = append(e.buf, "</methodName><params>"...)
	for i, p := range params {
		e.buf = append(e.buf, "<param><value>"...)
		if err := e.encodeAny(p); err != nil {
			return prefixPath(err, "param["+strconv.Itoa(i)+"]")
		}
		e.buf = append(e.buf, "</value></param>"...)
	}
	e.buf = append(e.buf, "</params></methodCall>\n"...)
	_, err := w.Write(e.buf)
	return err
}

// EncodeResponse writes a <methodResponse> carrying result, with the
// mapping described in the package doc. Errors are *EncodeError (nothing
// is written then; a server should send CodeInternal instead) or the
// writer's error.
func EncodeResponse(w io.Writer, result any) error {
	e := newEncodeState()
	defer e.free()
	e.buf = append(e.buf, xmlHeader+"<methodResponse><params><param><value>"...)
	if err := e.encodeAny(result); err != nil {
		return prefixPath(err, "result")
	}
	e.buf = append(e.buf, "</value></param></params></methodResponse>\n"...)
	_, err := w.Write(e.buf)
	return err
}

// EncodeFault writes a <methodResponse> carrying f as the standard
// faultCode/faultString struct. Characters XML cannot carry in the
// message are replaced by U+FFFD, so that a fault always gets through.
// Only a nil f or the writer can make it fail.
func EncodeFault(w io.Writer, f *gofunc.Fault) error {
	if f == nil {
		return &EncodeError{Path: "fault", Reason: "nil fault"}
	}
	e := newEncodeState()
	defer e.free()
	e.buf = append(e.buf, xmlHeader+"<methodResponse><fault><value><struct>"+
		"<member><name>faultCode</name><value>"...)
	e.writeInt(int64(f.Code))
	e.buf = append(e.buf, "</value></member><member><name>faultString</name><value><string>"...)
	e.buf, _ = appendEscaped(e.buf, sanitize(f.Message))
	e.buf = append(e.buf, "</string></value></member></struct></value></fault></methodResponse>\n"...)
	_, err := w.Write(e.buf)
	return err
}

// sanitize replaces what XML 1.0 cannot carry with U+FFFD.
func sanitize(s string) string {
	if _, ok := appendEscaped(nil, s); ok {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && r < 0x20 && r != '\t' && r != '\n' && r != '\r' || !isXMLChar(r) {
			return utf8.RuneError
		}
		return r
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
}

type seenKey struct {
	p uintptr
	t reflect.Type
	n int
}

type encodeState struct {
	buf   []byte
	depth int
	seen  map[seenKey]struct{}
}

var encodeStatePool = sync.Pool{New: func() any { return &encodeState{buf: make([]byte, 0, 4096)} }}

func newEncodeState() *encodeState {
	return encodeStatePool.Get().(*encodeState)
}

func (e *encodeState) free() {
	if cap(e.buf) > 8<<20 {
		return // do not pin a big result's buffer for ever
	}
	e.buf = e.buf[:0]
	e.depth = 0
	clear(e.seen)
	encodeStatePool.Put(e)
}

// enter counts one level of nesting; leave undoes it.
func (e *encodeState) enter() error {
	e.depth++
	if e.depth > maxEncodeDepth {
		return &EncodeError{Reason: fmt.Sprintf("nested deeper than %d levels (or cyclic)", maxEncodeDepth)}
	}
	return nil
}

func (e *encodeState) leave() { e.depth-- }

// visit records that the reference k is being encoded, when deep enough
// for cycles to be worth looking for. It returns a func to call when
// done, or an error if k is already being encoded: a cycle.
func (e *encodeState) visit(k seenKey) (func(), error) {
	if e.depth <= startDetectingCycles || k.p == 0 {
		return func() {}, nil
	}
	if e.seen == nil {
		e.seen = map[seenKey]struct{}{}
	}
	if _, ok := e.seen[k]; ok {
		return nil, &EncodeError{Reason: fmt.Sprintf("cycle through %s", k.t)}
	}
	e.seen[k] = struct{}{}
	return func() { delete(e.seen, k) }, nil
}

// encodeAny writes the inside of a <value> for x. The types the decoder
// produces, and a few common ones, skip reflection.
func (e *encodeState) encodeAny(x any) error {
	switch x := x.(type) {
	case nil:
		e.buf = append(e.buf, "<nil/>"...)
	case string:
		e.writeString(x)
	case int64:
		e.writeInt(x)
	case int:
		e.writeInt(int64(x))
	case bool:
		e.writeBool(x)
	case float64:
		return e.writeFloat(x, 64)
	case []byte:
		e.writeBase64(x)
	case time.Time:
		return e.writeTime(x)
	case []any:
		return e.writeSlice(x)
	case map[string]any:
		return e.writeMap(x)
	default:
		v := reflect.ValueOf(x)
		return typeEncoder(v.Type())(e, v)
	}
	return nil
}

func (e *encodeState) writeSlice(a []any) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	if e.depth > startDetectingCycles {
		done, err := e.visit(seenKey{p: reflect.ValueOf(a).Pointer(), t: anySliceType, n: len(a)})
		if err != nil {
			return err
		}
		defer done()
	}
	e.buf = append(e.buf, "<array><data>"...)
	for i, x := range a {
		e.buf = append(e.buf, "<value>"...)
		if err := e.encodeAny(x); err != nil {
			return prefixPath(err, "["+strconv.Itoa(i)+"]")
		}
		e.buf = append(e.buf, "</value>"...)
	}
	e.buf = append(e.buf, "</data></array>"...)
	return nil
}

func (e *encodeState) writeMap(m map[string]any) error {
	if err := e.enter(); err != nil {
		return err
	}
	defer e.leave()
	if e.depth > startDetectingCycles {
		done, err := e.visit(seenKey{p: reflect.ValueOf(m).Pointer(), t: anyMapType})
		if err != nil {
			return err
		}
		defer done()
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	e.buf = append(e.buf, "<struct>"...)
	for _, k := range keys {
		if err := e.writeMemberName(k); err != nil {
			return err
		}
		if err := e.encodeAny(m[k]); err != nil {
			return prefixPath(err, keyPath(k))
		}
		e.buf = append(e.buf, "</value></member>"...)
	}
	e.buf = append(e.buf, "</struct>"...)
	return nil
}

// writeMemberName writes "<member><name>k</name><value>".
func (e *encodeState) writeMemberName(k string) error {
	e.buf = append(e.buf, "<member><name>"...)
	var ok bool
	if e.buf, ok = appendEscaped(e.buf, k); !ok {
		return &EncodeError{Path: keyPath(k), Reason: "member name is not valid XML text"}
	}
	e.buf = append(e.buf, "</name><value>"...)
	return nil
}

func keyPath(k string) string { return "[" + strconv.Quote(clip(k)) + "]" }

func (e *encodeState) writeInt(n int64) {
	if math.MinInt32 <= n && n <= math.MaxInt32 {
		e.buf = append(e.buf, "<int>"...)
		e.buf = strconv.AppendInt(e.buf, n, 10)
		e.buf = append(e.buf, "</int>"...)
		return
	}
	e.buf = append(e.buf, "<i8>"...)
	e.buf = strconv.AppendInt(e.buf, n, 10)
	e.buf = append(e.buf, "</i8>"...)
}

func (e *encodeState) writeBool(b bool) {
	if b {
		e.buf = append(e.buf, "<boolean>1</boolean>"...)
	} else {
		e.buf = append(e.buf, "<boolean>0</boolean>"...)
	}
}

func (e *encodeState) writeFloat(f float64, bits int) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return &EncodeError{Reason: fmt.Sprintf("%v has no XML-RPC form", f)}
	}
	// Plain decimal notation, as the XML-RPC spec asks: no exponent.
	e.buf = append(e.buf, "<double>"...)
	e.buf = strconv.AppendFloat(e.buf, f, 'f', -1, bits)
	e.buf = append(e.buf, "</double>"...)
	return nil
}

// writeString writes s as a <string>, or as <base64> if XML cannot carry
// it (see the package doc).
func (e *encodeState) writeString(s string) {
	start := len(e.buf)
	e.buf = append(e.buf, "<string>"...)
	var ok bool
	if e.buf, ok = appendEscaped(e.buf, s); ok {
		e.buf = append(e.buf, "</string>"...)
		return
	}
	e.buf = e.buf[:start]
	e.writeBase64([]byte(s))
}

func (e *encodeState) writeBase64(b []byte) {
	e.buf = append(e.buf, "<base64>"...)
	e.buf = base64.StdEncoding.AppendEncode(e.buf, b)
	e.buf = append(e.buf, "</base64>"...)
}

func (e *encodeState) writeTime(t time.Time) error {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return &EncodeError{Reason: fmt.Sprintf("year %d has no dateTime.iso8601 form", y)}
	}
	e.buf = append(e.buf, "<dateTime.iso8601>"...)
	e.buf = t.AppendFormat(e.buf, "20060102T15:04:05")
	e.buf = append(e.buf, "</dateTime.iso8601>"...)
	return nil
}

// appendEscaped appends s escaped as XML character data. It reports
// false, with dst possibly extended, if s is not valid UTF-8 or holds a
// character XML 1.0 forbids. \r is escaped because XML parsers turn a
// literal one into \n.
func appendEscaped(dst []byte, s string) ([]byte, bool) {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 || !isXMLChar(r) {
				return dst, false
			}
			i += size
			continue
		}
		var esc string
		switch {
		case c == '<':
			esc = "&lt;"
		case c == '>':
			esc = "&gt;"
		case c == '&':
			esc = "&amp;"
		case c == '\r':
			esc = "&#13;"
		case c >= 0x20 || c == '\t' || c == '\n':
			i++
			continue
		default:
			return dst, false
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, esc...)
		i++
		last = i
	}
	return append(dst, s[last:]...), true
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	durationType      = reflect.TypeFor[time.Duration]()
	anySliceType      = reflect.TypeFor[[]any]()
	anyMapType        = reflect.TypeFor[map[string]any]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// encoderFunc writes the inside of a <value> for v.
type encoderFunc func(e *encodeState, v reflect.Value) error

var encoderCache sync.Map // reflect.Type -> encoderFunc

// typeEncoder returns the cached encoder for t, building it once.
func typeEncoder(t reflect.Type) encoderFunc {
	if f, ok := encoderCache.Load(t); ok {
		return f.(encoderFunc)
	}
	// A recursive type reaches itself while its encoder is being
	// built: hand out an indirection that waits for the real one.
	var (
		wg sync.WaitGroup
		f  encoderFunc
	)
	wg.Add(1)
	fi, loaded := encoderCache.LoadOrStore(t, encoderFunc(func(e *encodeState, v reflect.Value) error {
		wg.Wait()
		return f(e, v)
	}))
	if loaded {
		return fi.(encoderFunc)
	}
	f = newTypeEncoder(t, true)
	wg.Done()
	encoderCache.Store(t, f)
	return f
}

func newTypeEncoder(t reflect.Type, allowAddr bool) encoderFunc {
	switch t.Kind() {
	case reflect.Interface:
		return interfaceEncoder
	case reflect.Pointer:
		return newPtrEncoder(t)
	}
	if t == timeType {
		return timeEncoder
	}
	if t.Implements(textMarshalerType) {
		return textMarshalerEncoder
	}
	if allowAddr && reflect.PointerTo(t).Implements(textMarshalerType) {
		return newCondAddrEncoder(addrTextMarshalerEncoder, newTypeEncoder(t, false))
	}
	switch t.Kind() {
	case reflect.Bool:
		return boolEncoder
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return intEncoder
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintEncoder
	case reflect.Float32:
		return float32Encoder
	case reflect.Float64:
		return float64Encoder
	case reflect.String:
		return stringEncoder
	case reflect.Struct:
		return newStructEncoder(t)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return unsupportedEncoder(fmt.Sprintf("map key type %s is not a string", t.Key()))
		}
		return newMapEncoder(t)
	case reflect.Slice:
		if isByteElem(t.Elem()) {
			return bytesEncoder
		}
		return newArrayEncoder(t)
	case reflect.Array:
		if isByteElem(t.Elem()) {
			return byteArrayEncoder
		}
		return newArrayEncoder(t)
	}
	return unsupportedEncoder(fmt.Sprintf("type %s has no XML-RPC form", t))
}

// isByteElem reports whether a slice or array of t is binary data rather
// than a list of numbers (encoding/json's rule).
func isByteElem(t reflect.Type) bool {
	return t.Kind() == reflect.Uint8 &&
		!t.Implements(textMarshalerType) && !reflect.PointerTo(t).Implements(textMarshalerType)
}

func unsupportedEncoder(reason string) encoderFunc {
	return func(*encodeState, reflect.Value) error { return &EncodeError{Reason: reason} }
}

func interfaceEncoder(e *encodeState, v reflect.Value) error {
	if v.IsNil() {
		e.buf = append(e.buf, "<nil/>"...)
		return nil
	}
	el := v.Elem()
	if el.CanInterface() {
		return e.encodeAny(el.Interface())
	}
	return typeEncoder(el.Type())(e, el)
}

func newPtrEncoder(t reflect.Type) encoderFunc {
	elem := typeEncoder(t.Elem())
	return func(e *encodeState, v reflect.Value) error {
		if v.IsNil() {
			e.buf = append(e.buf, "<nil/>"...)
			return nil
		}
		if err := e.enter(); err != nil {
			return err
		}
		defer e.leave()
		done, err := e.visit(seenKey{p: v.Pointer(), t: t})
		if err != nil {
			return err
		}
		defer done()
		return elem(e, v.Elem())
	}
}

func newCondAddrEncoder(addr, noAddr encoderFunc) encoderFunc {
	return func(e *encodeState, v reflect.Value) error {
		if v.CanAddr() {
			return addr(e, v)
		}
		return noAddr(e, v)
	}
}

func timeEncoder(e *encodeState, v reflect.Value) error {
	t, ok := reflect.TypeAssert[time.Time](v)
	if !ok {
		return &EncodeError{Reason: "time.Time not readable"}
	}
	return e.writeTime(t)
}

func textMarshalerEncoder(e *encodeState, v reflect.Value) error {
	if !v.CanInterface() {
		return &EncodeError{Reason: fmt.Sprintf("%s not readable", v.Type())}
	}
	return e.writeText(v.Interface().(encoding.TextMarshaler))
}

func addrTextMarshalerEncoder(e *encodeState, v reflect.Value) error {
	va := v.Addr()
	if !va.CanInterface() {
		return &EncodeError{Reason: fmt.Sprintf("%s not readable", v.Type())}
	}
	return e.writeText(va.Interface().(encoding.TextMarshaler))
}

func (e *encodeState) writeText(m encoding.TextMarshaler) error {
	text, err := m.MarshalText()
	if err != nil {
		return &EncodeError{Reason: fmt.Sprintf("MarshalText: %v", err)}
	}
	e.writeString(string(text))
	return nil
}

func boolEncoder(e *encodeState, v reflect.Value) error {
	e.writeBool(v.Bool())
	return nil
}

func intEncoder(e *encodeState, v reflect.Value) error {
	e.writeInt(v.Int())
	return nil
}

func uintEncoder(e *encodeState, v reflect.Value) error {
	u := v.Uint()
	if u > math.MaxInt64 {
		return &EncodeError{Reason: fmt.Sprintf("%d exceeds the 64-bit signed range of <i8>", u)}
	}
	e.writeInt(int64(u))
	return nil
}

func float32Encoder(e *encodeState, v reflect.Value) error { return e.writeFloat(v.Float(), 32) }

func float64Encoder(e *encodeState, v reflect.Value) error { return e.writeFloat(v.Float(), 64) }

func stringEncoder(e *encodeState, v reflect.Value) error {
	e.writeString(v.String())
	return nil
}

func bytesEncoder(e *encodeState, v reflect.Value) error {
	e.writeBase64(v.Bytes())
	return nil
}

func byteArrayEncoder(e *encodeState, v reflect.Value) error {
	b := make([]byte, v.Len())
	reflect.Copy(reflect.ValueOf(b), v)
	e.writeBase64(b)
	return nil
}

func newArrayEncoder(t reflect.Type) encoderFunc {
	elem := typeEncoder(t.Elem())
	isSlice := t.Kind() == reflect.Slice
	return func(e *encodeState, v reflect.Value) error {
		if err := e.enter(); err != nil {
			return err
		}
		defer e.leave()
		if isSlice {
			done, err := e.visit(seenKey{p: v.Pointer(), t: t, n: v.Len()})
			if err != nil {
				return err
			}
			defer done()
		}
		e.buf = append(e.buf, "<array><data>"...)
		for i := range v.Len() {
			e.buf = append(e.buf, "<value>"...)
			if err := elem(e, v.Index(i)); err != nil {
				return prefixPath(err, "["+strconv.Itoa(i)+"]")
			}
			e.buf = append(e.buf, "</value>"...)
		}
		e.buf = append(e.buf, "</data></array>"...)
		return nil
	}
}

func newMapEncoder(t reflect.Type) encoderFunc {
	elem := typeEncoder(t.Elem())
	return func(e *encodeState, v reflect.Value) error {
		if err := e.enter(); err != nil {
			return err
		}
		defer e.leave()
		done, err := e.visit(seenKey{p: v.Pointer(), t: t})
		if err != nil {
			return err
		}
		defer done()
		type kv struct {
			k string
			v reflect.Value
		}
		entries := make([]kv, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			entries = append(entries, kv{it.Key().String(), it.Value()})
		}
		slices.SortFunc(entries, func(a, b kv) int { return strings.Compare(a.k, b.k) })
		e.buf = append(e.buf, "<struct>"...)
		for _, en := range entries {
			if err := e.writeMemberName(en.k); err != nil {
				return err
			}
			if err := elem(e, en.v); err != nil {
				return prefixPath(err, keyPath(en.k))
			}
			e.buf = append(e.buf, "</value></member>"...)
		}
		e.buf = append(e.buf, "</struct>"...)
		return nil
	}
}

// structMember is a field ready to encode: its opening tags are written
// once, when the type is first seen.
type structMember struct {
	field
	open    string // "<member><name>NAME</name><value>"
	bad     string // why the name cannot be encoded, if it cannot
	encoder encoderFunc
}

func newStructEncoder(t reflect.Type) encoderFunc {
	fields := cachedFields(t)
	members := make([]structMember, len(fields.list))
	for i, f := range fields.list {
		m := structMember{field: f}
		if b, ok := appendEscaped([]byte("<member><name>"), f.name); ok {
			m.open = string(b) + "</name><value>"
		} else {
			m.bad = fmt.Sprintf("member name %q of %s is not valid XML text", f.name, t)
		}
		m.encoder = typeEncoder(f.typ)
		members[i] = m
	}
	return func(e *encodeState, v reflect.Value) error {
		if err := e.enter(); err != nil {
			return err
		}
		defer e.leave()
		e.buf = append(e.buf, "<struct>"...)
		for i := range members {
			m := &members[i]
			fv, ok := memberValue(v, m.index)
			if !ok || m.omitEmpty && isEmptyValue(fv) {
				continue
			}
			if m.bad != "" {
				return &EncodeError{Reason: m.bad}
			}
			e.buf = append(e.buf, m.open...)
			if err := m.encoder(e, fv); err != nil {
				return prefixPath(err, "."+m.name)
			}
			e.buf = append(e.buf, "</value></member>"...)
		}
		e.buf = append(e.buf, "</struct>"...)
		return nil
	}
}
