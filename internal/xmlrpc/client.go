package xmlrpc

import (
	"encoding/base64"
	"fmt"

	"github.com/kolo/xmlrpc"
)

// EncodeRequest returns the body of a call to method(args...), as a
// gofunc client sends it: encoded by github.com/kolo/xmlrpc (the
// design's client codec) after rewriting the values kolo would send
// wrongly. A []byte, which kolo sends as an array of ints, becomes
// <base64>, in nested slices and maps too; a nil, which kolo sends as an
// empty <param>, is refused (leave the argument off instead). Member
// names are escaped (kolo writes them raw). Integers beyond 32 bits,
// which kolo writes as <int> or <i4>, are moved into <i8>.
//
// A client's three steps are EncodeRequest, [DecodeResponse] (bounded)
// and [Unmarshal] (one conversion); the overlord and the certmaster
// clients all take them. [EncodeCall] is this package's own encoder, for
// servers' tests and tools.
func EncodeRequest(method string, args ...any) ([]byte, error) {
	norm := make([]any, len(args))
	for i, a := range args {
		v, err := koloSafe(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		norm[i] = v
	}
	body, err := xmlrpc.EncodeMethodCall(method, norm...)
	if err != nil {
		return nil, err
	}
	return widenInts(body), nil
}

// koloSafe rewrites a for kolo/xmlrpc: see EncodeRequest.
func koloSafe(a any) (any, error) {
	switch v := a.(type) {
	case nil:
		return nil, fmt.Errorf("nil cannot be sent (kolo/xmlrpc has no nil); leave the argument off")
	case []byte:
		return xmlrpc.Base64(base64.StdEncoding.EncodeToString(v)), nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			n, err := koloSafe(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, err := koloSafe(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			// kolo writes member names as they are: "<" in one would
			// change the document's structure.
			name, ok := appendEscaped(nil, k)
			if !ok {
				return nil, fmt.Errorf("member name %q is not valid XML text", clip(k))
			}
			out[string(name)] = n
		}
		return out, nil
	}
	return a, nil
}
