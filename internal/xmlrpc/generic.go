package xmlrpc

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// Generic returns the value DecodeCall would give for v after EncodeCall
// had encoded it, without writing the XML: the small fixed model of the
// package doc (int64, bool, string, float64, []byte, time.Time in UTC to
// the second, []any, map[string]any, nil), reached with the encoder's
// rules (struct member names, omitempty, TextMarshaler, a string XML
// cannot carry becoming []byte). An overlord builds its request from
// this tree, so that what it records in its audit log is what goes on
// the wire. Errors are *EncodeError, as EncodeCall's.
func Generic(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	return genericValue(reflect.ValueOf(v), 0)
}

func genericValue(v reflect.Value, depth int) (any, error) {
	if depth > maxEncodeDepth {
		return nil, &EncodeError{Reason: fmt.Sprintf("nested deeper than %d levels, or a reference cycle", maxEncodeDepth)}
	}
	t := v.Type()
	switch t.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return genericValue(v.Elem(), depth+1)
	}
	if t == timeType {
		tm, ok := reflect.TypeAssert[time.Time](v)
		if !ok {
			return nil, &EncodeError{Reason: "time.Time not readable"}
		}
		return genericTime(tm)
	}
	if m, ok, err := textMarshaler(v); ok {
		if err != nil {
			return nil, err
		}
		text, err := m.MarshalText()
		if err != nil {
			return nil, &EncodeError{Reason: fmt.Sprintf("MarshalText: %v", err)}
		}
		return genericString(string(text)), nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= math.MaxInt64 {
			return int64(u), nil
		}
		return nil, &EncodeError{Reason: fmt.Sprintf("%d exceeds the 64-bit signed range of <i8>", v.Uint())}
	case reflect.Float32, reflect.Float64:
		return genericFloat(v.Float(), t.Bits())
	case reflect.String:
		return genericString(v.String()), nil
	case reflect.Struct:
		return genericStruct(v, depth)
	case reflect.Map:
		return genericMap(v, depth)
	case reflect.Slice, reflect.Array:
		if isByteElem(t.Elem()) {
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return b, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			e, err := genericValue(v.Index(i), depth+1)
			if err != nil {
				return nil, prefixPath(err, "["+strconv.Itoa(i)+"]")
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, &EncodeError{Reason: fmt.Sprintf("type %s has no XML-RPC form", t)}
}

// textMarshaler returns v's TextMarshaler when the encoder would use
// one; ok is false when it would not, err set when it would but cannot.
func textMarshaler(v reflect.Value) (m encoding.TextMarshaler, ok bool, err error) {
	t := v.Type()
	switch {
	case t.Implements(textMarshalerType):
	case v.CanAddr() && reflect.PointerTo(t).Implements(textMarshalerType):
		v = v.Addr()
	default:
		return nil, false, nil
	}
	if !v.CanInterface() {
		return nil, true, &EncodeError{Reason: fmt.Sprintf("%s not readable", t)}
	}
	return v.Interface().(encoding.TextMarshaler), true, nil
}

// genericTime is what a <dateTime.iso8601> of t decodes to: UTC, whole
// seconds.
func genericTime(t time.Time) (any, error) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, &EncodeError{Reason: fmt.Sprintf("year %d has no dateTime.iso8601 form", y)}
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC).UTC(), nil
}

// genericFloat is what the <double> the encoder writes for f decodes to.
func genericFloat(f float64, bits int) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &EncodeError{Reason: fmt.Sprintf("%v has no XML-RPC form", f)}
	}
	if bits == 32 {
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'f', -1, 32), 64)
	}
	return f, nil
}

// genericString is s, or its bytes when the encoder sends it as <base64>.
func genericString(s string) any {
	if validText(s) {
		return s
	}
	return []byte(s)
}

// validText reports whether XML character data can carry s unchanged.
func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c >= 0x80 {
			_, ok := appendEscaped(nil, s[i:])
			return ok
		}
	}
	return true
}

func genericStruct(v reflect.Value, depth int) (any, error) {
	fields := cachedFields(v.Type())
	out := make(map[string]any, len(fields.list))
	for _, f := range fields.list {
		fv, ok := memberValue(v, f.index)
		if !ok || f.omitEmpty && isEmptyValue(fv) {
			continue
		}
		if !validText(f.name) {
			return nil, &EncodeError{Reason: fmt.Sprintf("member name %q of %s is not valid XML text", f.name, v.Type())}
		}
		e, err := genericValue(fv, depth+1)
		if err != nil {
			return nil, prefixPath(err, "."+f.name)
		}
		out[f.name] = e
	}
	return out, nil
}

func genericMap(v reflect.Value, depth int) (any, error) {
	if v.Type().Key().Kind() != reflect.String {
		return nil, &EncodeError{Reason: fmt.Sprintf("map key type %s is not a string", v.Type().Key())}
	}
	out := make(map[string]any, v.Len())
	for it := v.MapRange(); it.Next(); {
		k := it.Key().String()
		if !validText(k) {
			return nil, &EncodeError{Path: keyPath(k), Reason: "member name is not valid XML text"}
		}
		e, err := genericValue(it.Value(), depth+1)
		if err != nil {
			return nil, prefixPath(err, keyPath(k))
		}
		out[k] = e
	}
	return out, nil
}

// memberValue follows index from struct v to a member; ok is false when
// the member is embedded through a nil pointer (it is not sent then).
func memberValue(v reflect.Value, index []int) (fv reflect.Value, ok bool) {
	fv = v
	for _, j := range index {
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				return reflect.Value{}, false
			}
			fv = fv.Elem()
		}
		fv = fv.Field(j)
	}
	return fv, true
}
