package overlord

import (
	"encoding/base64"
	"fmt"
	"reflect"

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
	out, err := ixmlrpc.Convert(value, rv.Elem().Type())
	if err != nil {
		return err
	}
	rv.Elem().Set(out)
	return nil
}
