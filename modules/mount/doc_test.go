package mount

import (
	"context"
	"reflect"
	"testing"

	"github.com/gofunc/gofunc"
)

// checkDoc fails t unless doc documents exactly the remote methods of
// module (its exported methods but Doc and Close), each with as many
// arguments as the Go method takes after its context, and optional
// arguments only at the end.
func checkDoc(t *testing.T, module gofunc.Documented) {
	t.Helper()
	doc := module.Doc()
	if doc.Description == "" || doc.Version != "1.0.0" {
		t.Errorf("%T: Description %q, Version %q", module, doc.Description, doc.Version)
	}
	typ := reflect.TypeOf(module)
	ctxType := reflect.TypeFor[context.Context]()
	seen := map[string]bool{}
	for method := range typ.Methods() {
		if method.Name == "Doc" || method.Name == "Close" {
			continue
		}
		seen[method.Name] = true
		md, ok := doc.Methods[method.Name]
		if !ok {
			t.Errorf("%T.%s has no MethodDoc", module, method.Name)
			continue
		}
		if md.Description == "" {
			t.Errorf("%T.%s: empty Description", module, method.Name)
		}
		args := method.Type.NumIn() - 1 // the receiver
		if args > 0 && method.Type.In(1) == ctxType {
			args--
		}
		if len(md.Args) != args {
			t.Errorf("%T.%s takes %d arguments, its doc lists %d", module, method.Name, args, len(md.Args))
		}
		optional := false
		for _, a := range md.Args {
			if a.Name == "" || a.Type == "" || a.Description == "" {
				t.Errorf("%T.%s: incomplete ArgDoc %+v", module, method.Name, a)
			}
			if optional && !a.Optional {
				t.Errorf("%T.%s: required argument %q after an optional one", module, method.Name, a.Name)
			}
			optional = optional || a.Optional
		}
	}
	for name := range doc.Methods {
		if !seen[name] {
			t.Errorf("%T: doc for %s, which is not an exported method", module, name)
		}
	}
}
