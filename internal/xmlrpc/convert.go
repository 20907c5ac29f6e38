package xmlrpc

import (
	"encoding"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/gofunc/gofunc"
)

// Convert turns a decoded value (see the package doc) into a value of Go
// type t, for calling a Go method with decoded parameters. It is the
// inverse of encoding, strict but practical:
//
//   - an int fits any integer kind, checked for overflow, and float
//     kinds; a double fits float kinds only;
//   - a string fits string kinds and types implementing
//     encoding.TextUnmarshaler (netip.Addr...); a base64 value fits
//     []byte, [N]byte of the same length, and string kinds (the encoder
//     sends strings XML cannot carry as base64). A string does not fit
//     []byte: binary data must be sent as base64;
//   - time.Duration takes an int (nanoseconds) or a string for
//     time.ParseDuration ("30s", "1m30s");
//   - an array fits slices and arrays (of the same length) of any type
//     its elements fit;
//   - a struct fits map[string]T, and Go structs by member name (the
//     encoder's naming: tag, else SnakeCase). A member naming no field is
//     an error; fields no member names keep their zero value;
//   - nil fits pointers, slices, maps and interfaces (as their zero
//     value), nothing else;
//   - pointers are allocated; interface types take any value that
//     implements them, so `any` takes everything as is.
//
// Errors are *gofunc.Fault with CodeBadArgs naming the path of the bad
// part: `[2]: want string, got int`, `timeout: want int, got string`,
// `unknown field "x"`. Use [ConvertNamed] to put the parameter's name in
// front.
func Convert(v any, t reflect.Type) (reflect.Value, error) {
	return ConvertNamed("", v, t)
}

// ConvertNamed is Convert with errors naming the value: with name
// "options", `options.timeout: want int, got string` or
// `options: unknown field "x"`.
func ConvertNamed(name string, v any, t reflect.Type) (reflect.Value, error) {
	if t == nil {
		return reflect.Value{}, gofunc.Errorf(gofunc.CodeBadArgs, "xmlrpc: Convert with a nil type")
	}
	out := reflect.New(t).Elem()
	if err := convertInto(out, v, &path{name: name}); err != nil {
		return reflect.Value{}, err
	}
	return out, nil
}

// Unmarshal converts a value DecodeResponse returned into the value v
// points to, by Convert's rules but for one: struct members that v's
// type has no field for are ignored, so a client may read a subset of a
// result (and a server may add members) while arguments stay strict.
// It is the one conversion of the client side: the overlord's
// Result.Decode and the certmaster clients use it.
func Unmarshal(value, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("xmlrpc: Unmarshal needs a non-nil pointer, got %T", v)
	}
	out := reflect.New(rv.Elem().Type()).Elem()
	if err := convertInto(out, value, &path{ignoreUnknown: true}); err != nil {
		return err
	}
	rv.Elem().Set(out)
	return nil
}

// path locates a part of the value being converted. It is a linked list
// built as conversion descends and turned into text only for an error.
type path struct {
	up    *path
	name  string // field name, or the root's name
	index int    // element index, when isIdx
	isIdx bool
	isKey bool // name is a map key
	// ignoreUnknown, on the root, skips struct members that name no
	// field (Unmarshal) instead of refusing them (Convert).
	ignoreUnknown bool
}

func (p *path) root() *path {
	for p.up != nil {
		p = p.up
	}
	return p
}

func (p *path) field(name string) *path { return &path{up: p, name: name} }
func (p *path) key(k string) *path      { return &path{up: p, name: k, isKey: true} }
func (p *path) elem(i int) *path        { return &path{up: p, index: i, isIdx: true} }

func (p *path) String() string {
	var segs []*path
	for q := p; q != nil; q = q.up {
		segs = append(segs, q)
	}
	var b []byte
	for i := len(segs) - 1; i >= 0; i-- {
		q := segs[i]
		switch {
		case q.isIdx:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(q.index), 10)
			b = append(b, ']')
		case q.isKey:
			b = append(b, '[')
			b = strconv.AppendQuote(b, clip(q.name))
			b = append(b, ']')
		case q.up == nil:
			b = append(b, q.name...)
		default:
			if len(b) > 0 {
				b = append(b, '.')
			}
			b = append(b, q.name...)
		}
	}
	return string(b)
}

// badArgs makes the fault for a problem at p.
func badArgs(p *path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if s := p.String(); s != "" {
		msg = s + ": " + msg
	}
	return &gofunc.Fault{Code: gofunc.CodeBadArgs, Message: msg}
}

func mismatch(p *path, t reflect.Type, v any) error {
	return badArgs(p, "want %s, got %s", wantName(t), wireTypeName(v))
}

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// convertInto sets dst, which is settable and addressable, from v.
func convertInto(dst reflect.Value, v any, p *path) error {
	t := dst.Type()
	if t.Kind() == reflect.Interface {
		if v == nil {
			return nil
		}
		rv := reflect.ValueOf(v)
		if !rv.Type().Implements(t) {
			return mismatch(p, t, v)
		}
		dst.Set(rv)
		return nil
	}
	if v == nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			return nil
		}
		return mismatch(p, t, v)
	}
	if t.Kind() == reflect.Pointer {
		pv := reflect.New(t.Elem())
		if err := convertInto(pv.Elem(), v, p); err != nil {
			return err
		}
		dst.Set(pv)
		return nil
	}
	switch t {
	case durationType:
		return convertDuration(dst, v, p)
	case timeType:
		tv, ok := v.(time.Time)
		if !ok {
			return mismatch(p, t, v)
		}
		dst.Set(reflect.ValueOf(tv))
		return nil
	}
	if s, ok := v.(string); ok && reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return badArgs(p, "bad %s %q: %v", t, clip(s), err)
		}
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Type().AssignableTo(t) {
		dst.Set(rv) // the common case: int64, string, []any, map[string]any...
		return nil
	}
	switch t.Kind() {
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch(p, t, v)
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		if !ok {
			return mismatch(p, t, v)
		}
		if dst.OverflowInt(n) {
			return badArgs(p, "%d out of range for %s", n, t)
		}
		dst.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := v.(int64)
		if !ok {
			return mismatch(p, t, v)
		}
		if n < 0 || dst.OverflowUint(uint64(n)) {
			return badArgs(p, "%d out of range for %s", n, t)
		}
		dst.SetUint(uint64(n))
	case reflect.Float32, reflect.Float64:
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		default:
			return mismatch(p, t, v)
		}
		if dst.OverflowFloat(f) {
			return badArgs(p, "%v out of range for %s", f, t)
		}
		dst.SetFloat(f)
	case reflect.String:
		switch x := v.(type) {
		case string:
			dst.SetString(x)
		case []byte:
			dst.SetString(string(x))
		default:
			return mismatch(p, t, v)
		}
	case reflect.Slice:
		return convertSlice(dst, v, p)
	case reflect.Array:
		return convertArray(dst, v, p)
	case reflect.Map:
		return convertMap(dst, v, p)
	case reflect.Struct:
		return convertStruct(dst, v, p)
	default:
		return badArgs(p, "parameter type %s cannot be decoded", t)
	}
	return nil
}

func convertDuration(dst reflect.Value, v any, p *path) error {
	switch x := v.(type) {
	case int64:
		dst.SetInt(x)
	case string:
		d, err := time.ParseDuration(x)
		if err != nil {
			return badArgs(p, "bad duration %q: want nanoseconds or a string like \"30s\"", clip(x))
		}
		dst.SetInt(int64(d))
	default:
		return mismatch(p, dst.Type(), v)
	}
	return nil
}

func convertSlice(dst reflect.Value, v any, p *path) error {
	t := dst.Type()
	switch x := v.(type) {
	case []byte:
		if t.Elem().Kind() != reflect.Uint8 {
			return mismatch(p, t, v)
		}
		out := reflect.MakeSlice(t, len(x), len(x))
		reflect.Copy(out, reflect.ValueOf(x))
		dst.Set(out)
		return nil
	case []any:
		out := reflect.MakeSlice(t, len(x), len(x))
		for i, el := range x {
			if err := convertInto(out.Index(i), el, p.elem(i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	}
	return mismatch(p, t, v)
}

func convertArray(dst reflect.Value, v any, p *path) error {
	t := dst.Type()
	switch x := v.(type) {
	case []byte:
		if t.Elem().Kind() != reflect.Uint8 {
			return mismatch(p, t, v)
		}
		if len(x) != t.Len() {
			return badArgs(p, "want %d bytes, got %d", t.Len(), len(x))
		}
		reflect.Copy(dst, reflect.ValueOf(x))
		return nil
	case []any:
		if len(x) != t.Len() {
			return badArgs(p, "want an array of %d, got %d", t.Len(), len(x))
		}
		for i, el := range x {
			if err := convertInto(dst.Index(i), el, p.elem(i)); err != nil {
				return err
			}
		}
		return nil
	}
	return mismatch(p, t, v)
}

func convertMap(dst reflect.Value, v any, p *path) error {
	t := dst.Type()
	m, ok := v.(map[string]any)
	if !ok || t.Key().Kind() != reflect.String {
		return mismatch(p, t, v)
	}
	out := reflect.MakeMapWithSize(t, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ev := reflect.New(t.Elem()).Elem()
		if err := convertInto(ev, m[k], p.key(k)); err != nil {
			return err
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
	}
	dst.Set(out)
	return nil
}

func convertStruct(dst reflect.Value, v any, p *path) error {
	t := dst.Type()
	m, ok := v.(map[string]any)
	if !ok {
		return mismatch(p, t, v)
	}
	fields := cachedFields(t)
	// Sorted, so that of several bad members the same one is reported
	// every time.
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f, ok := fields.byName[k]
		if !ok {
			if p.root().ignoreUnknown {
				continue
			}
			return badArgs(p, "unknown field %q", clip(k))
		}
		fv, err := fieldForSet(dst, f.index)
		if err != nil {
			return badArgs(p.field(k), "%v", err)
		}
		if err := convertInto(fv, m[k], p.field(k)); err != nil {
			return err
		}
	}
	return nil
}

// fieldForSet walks index from v, allocating nil embedded pointers.
func fieldForSet(v reflect.Value, index []int) (reflect.Value, error) {
	for i, j := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, fmt.Errorf("cannot set embedded pointer to unexported struct %s", v.Type().Elem())
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(j)
	}
	return v, nil
}

// TypeName is the XML-RPC type a parameter of Go type t takes, as
// introspection reports it (get_method_args): "string", "int",
// "boolean", "double", "base64", "dateTime.iso8601", "array", "struct",
// or "any" for interfaces. A time.Duration takes an "int" (nanoseconds;
// Convert also accepts a string such as "30s").
func TypeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "int"
	case t.Kind() == reflect.Interface:
		return "any"
	case t.Kind() == reflect.Pointer:
		return TypeName(t.Elem())
	}
	return wantName(t)
}

// wantName is the XML-RPC name for what a Go type accepts.
func wantName(t reflect.Type) string {
	switch {
	case t == timeType:
		return "dateTime.iso8601"
	case t == durationType:
		return "duration (int nanoseconds or a string like \"30s\")"
	case t.Kind() == reflect.Interface:
		return t.String()
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		return "string"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "double"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64"
		}
		return "array"
	case reflect.Map, reflect.Struct:
		return "struct"
	case reflect.Pointer:
		return wantName(t.Elem())
	}
	return t.String()
}
