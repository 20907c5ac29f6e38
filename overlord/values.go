package overlord

import (
	"encoding"
	"encoding/base64"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/kolo/xmlrpc"

	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// normalizeArg rewrites the values kolo/xmlrpc would send wrongly: a
// []byte (kolo sends an array of ints) becomes base64. It walks slices
// and maps so nested blobs are fixed too.
func normalizeArg(a any) (any, error) {
	switch v := a.(type) {
	case nil:
		return nil, fmt.Errorf("nil cannot be sent (kolo/xmlrpc has no nil); leave the argument off")
	case []byte:
		return xmlrpc.Base64(base64.StdEncoding.EncodeToString(v)), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			n, err := normalizeArg(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, err := normalizeArg(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = n
		}
		return out, nil
	}
	return a, nil
}

// decodeInto converts a decoded XML-RPC value into the value v points to.
func decodeInto(value, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("overlord: Decode needs a non-nil pointer, got %T", v)
	}
	t := rv.Elem().Type()
	out, err := ixmlrpc.Convert(prune(value, t, 0), t)
	if err != nil {
		return fmt.Errorf("overlord: decode: %w", err)
	}
	rv.Elem().Set(out)
	return nil
}

// prune drops the struct members that t has no field for, so that
// Convert (strict, as argument checking must be) accepts a result with
// more members than the caller cares about. It follows t into pointers,
// slices, arrays and maps. internal/xmlrpc has no lenient conversion;
// this mirrors its field naming (xmlrpc tag, else SnakeCase, embedded
// structs flattened).
func prune(v any, t reflect.Type, depth int) any {
	if depth > 64 {
		return v
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case []any:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return v
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = prune(e, t.Elem(), depth+1)
		}
		return out
	case map[string]any:
		switch t.Kind() {
		case reflect.Map:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = prune(e, t.Elem(), depth+1)
			}
			return out
		case reflect.Struct:
			if t == timeType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
				return v
			}
			fields := structFields(t)
			out := make(map[string]any, len(x))
			for k, e := range x {
				if ft, ok := fields[k]; ok {
					out[k] = prune(e, ft, depth+1)
				}
			}
			return out
		}
	}
	return v
}

var (
	timeType            = reflect.TypeFor[time.Time]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	fieldCache          sync.Map // reflect.Type -> map[string]reflect.Type
)

// structFields maps the wire names of t's fields to their types.
func structFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	fields := map[string]reflect.Type{}
	addFields(fields, t, 0)
	fieldCache.Store(t, fields)
	return fields
}

func addFields(fields map[string]reflect.Type, t reflect.Type, depth int) {
	if depth > 8 {
		return
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("xmlrpc")
		name, _, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				addFields(fields, et, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = ixmlrpc.SnakeCase(f.Name)
		}
		if _, dup := fields[name]; !dup || depth == 0 {
			fields[name] = f.Type
		}
	}
}
