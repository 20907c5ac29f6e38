package getfile

import (
	"context"
	"reflect"
	"testing"
)

// TestDocCoversMethods checks that Doc describes exactly the exported
// methods (the remote ones), each with one ArgDoc per parameter after the
// optional context, and only optional arguments at the end.
func TestDocCoversMethods(t *testing.T) {
	m := &Module{}
	doc := m.Doc()
	if doc.Description == "" || doc.Version != "1.0.0" {
		t.Errorf("Doc() = %q version %q, want a description and version 1.0.0", doc.Description, doc.Version)
	}
	typ := reflect.TypeOf(m)
	ctxType := reflect.TypeFor[context.Context]()
	seen := map[string]bool{}
	for meth := range typ.Methods() {
		if meth.Name == "Doc" || meth.Name == "Close" {
			continue
		}
		seen[meth.Name] = true
		md, ok := doc.Methods[meth.Name]
		if !ok {
			t.Errorf("method %s has no MethodDoc", meth.Name)
			continue
		}
		params := meth.Type.NumIn() - 1 // the receiver
		if params > 0 && meth.Type.In(1) == ctxType {
			params--
		}
		if len(md.Args) != params {
			t.Errorf("%s: Doc has %d args, method has %d", meth.Name, len(md.Args), params)
		}
		optional := false
		for _, a := range md.Args {
			if a.Name == "" || a.Type == "" || a.Description == "" {
				t.Errorf("%s: incomplete ArgDoc %+v", meth.Name, a)
			}
			if optional && !a.Optional {
				t.Errorf("%s: required argument %s after an optional one", meth.Name, a.Name)
			}
			optional = optional || a.Optional
		}
		if md.Description == "" {
			t.Errorf("%s: no description", meth.Name)
		}
	}
	for name := range doc.Methods {
		if !seen[name] {
			t.Errorf("Doc describes %s, which is not an exported method", name)
		}
	}
}
