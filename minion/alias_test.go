package minion_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/minion"
)

// files has a method under its own name and under Func's, and a
// dangerous one with an alias too.
type files struct{}

func (files) Read(path string) string     { return "read " + path }
func (files) Getchunk(path string) string { return "chunk " + path }
func (files) Wipe() bool                  { return true }
func (files) Erase() bool                 { return true }
func (files) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Description: "files", Version: "1.0.0", Methods: map[string]gofunc.MethodDoc{
		"Read":     {Description: "read"},
		"Getchunk": {Description: "Func's name for read", AliasOf: "read"},
		"Wipe":     {Description: "wipe", Dangerous: true},
		"Erase":    {Description: "another name for wipe", AliasOf: "files.wipe"},
	}}
}

// checks has Func's name for a method of another module.
type checks struct{}

func (checks) Run(cmd string) string { return "ran " + cmd }
func (checks) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Description: "checks", Version: "1.0.0", Methods: map[string]gofunc.MethodDoc{
		"Run": {Description: "Func's name for files.read", AliasOf: "files.read"},
	}}
}

// An alias is judged by the ACL as the method it stands for: a grant of
// the method covers it, a deny rule of the method cannot be walked
// around through it, and it is dangerous when the method is.
func TestAliasesAreJudgedAsTheirMethod(t *testing.T) {
	acl, err := minion.ParseACL("t.acl", strings.NewReader(`
reader@overlord = files.read
!nosy@overlord  = files.read
nosy@overlord   = *
other@overlord  = files.getchunk
admin@overlord  = *, files.wipe
`))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minionServer) {
		mustRegister(t, s, "files", files{})
		mustRegister(t, s, "checks", checks{})
		s.SetACL(acl)
	})
	for _, c := range []struct {
		caller, method string
		allowed        bool
	}{
		{"reader", "files.read", true},
		{"reader", "files.getchunk", true},
		{"reader", "checks.run", true},
		{"nosy", "files.read", false},
		{"nosy", "files.getchunk", false}, // the deny rule holds under the other name
		{"nosy", "checks.run", false},
		{"other", "files.getchunk", false}, // rules name the method, not its alias
		{"nosy", "files.erase", false},     // "*" covers no dangerous method, nor its alias
		{"admin", "files.erase", true},
	} {
		_, err := e.call(e.client(gofunc.RoleOverlord, c.caller), c.method, "/etc/hosts")
		if c.method == "files.erase" || c.method == "files.wipe" {
			_, err = e.call(e.client(gofunc.RoleOverlord, c.caller), c.method)
		}
		if denied := errors.Is(err, gofunc.ErrDenied); denied == c.allowed || (c.allowed && err != nil) {
			t.Errorf("%s calling %s: %v, want allowed %v", c.caller, c.method, err, c.allowed)
		}
		if !c.allowed && c.method != "files.read" && err != nil && !strings.Contains(err.Error(), "another name for") {
			t.Errorf("%s calling %s: %v; want the denial to name the method it stands for", c.caller, c.method, err)
		}
	}

	got, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "files.get_method_args")
	if err != nil {
		t.Fatal(err)
	}
	methods := got.(map[string]any)
	if a := methods["getchunk"].(map[string]any); a["alias_of"] != "files.read" {
		t.Errorf("get_method_args getchunk = %v, want alias_of files.read", a)
	}
	if _, ok := methods["read"].(map[string]any)["alias_of"]; ok {
		t.Errorf("get_method_args read = %v, want no alias_of", methods["read"])
	}
	list, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "files.list_methods")
	if names := toStrings(t, list); err != nil || !strings.Contains(strings.Join(names, ","), "getchunk") {
		t.Errorf("files.list_methods = %v, %v; want the alias listed", names, err)
	}
}
