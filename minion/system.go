package minion

import (
	"reflect"
	"sort"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// systemModule answers Func's introspection calls about the minion.
type systemModule struct{ reg *registry }

// registerBuiltins adds the minion's own modules: system, events (the
// journal's long-poll) and jobs.
func (s *Server) registerBuiltins() error {
	if _, ok := s.reg.module("system"); !ok {
		if err := s.reg.register("system", &systemModule{reg: &s.reg}, true); err != nil {
			return err
		}
	}
	if _, ok := s.reg.module("events"); !ok {
		if err := s.reg.register("events", &events.Module{Journal: s.Events}, true); err != nil {
			return err
		}
	}
	if _, ok := s.reg.module("jobs"); !ok {
		return s.reg.register("jobs", &jobsModule{s: s}, true)
	}
	return nil
}

// ListModules returns the names of the registered modules.
func (m *systemModule) ListModules() []string { return m.reg.moduleNames() }

// ListMethods returns every "module.method" the minion answers.
func (m *systemModule) ListMethods() []string { return m.reg.methodNames() }

// ListMethodsStd is the XML-RPC introspection spelling, system.listMethods.
func (m *systemModule) ListMethodsStd() []string { return m.reg.methodNames() }

// Inventory maps each module to its version and methods.
func (m *systemModule) Inventory() map[string]ModuleInfo {
	out := make(map[string]ModuleInfo)
	for _, name := range m.reg.moduleNames() {
		mod, _ := m.reg.module(name)
		out[name] = mod.info()
	}
	return out
}

func (m *systemModule) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{
		Description: "Introspection of the minion: its modules and methods. Like every module it also answers " +
			"module_version, module_description and get_method_args about itself; its list_methods lists every module's methods.",
		Version: "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"ListModules":    {Description: "Names of the registered modules."},
			"ListMethods":    {Description: "Every module.method this minion answers."},
			"ListMethodsStd": {Wire: "listMethods", Description: "Same as list_methods (XML-RPC introspection name)."},
			"Inventory":      {Description: "Each module's version, description and methods."},
		},
	}
}

// ModuleInfo describes a module in system.inventory.
type ModuleInfo struct {
	Description string   `xmlrpc:"description"`
	Version     string   `xmlrpc:"version"`
	Methods     []string `xmlrpc:"methods"`
}

// MethodArgs describes a method in get_method_args: enough for a form
// or a command line to be generated from it.
type MethodArgs struct {
	Description string `xmlrpc:"description"`
	Dangerous   bool   `xmlrpc:"dangerous"`
	// AliasOf names the method this one is another name for
	// ("getfile.read"), judged by the ACL as that one; empty otherwise.
	AliasOf string    `xmlrpc:"alias_of,omitempty"`
	Args    []ArgInfo `xmlrpc:"args"`
}

// ArgInfo describes one argument.
type ArgInfo struct {
	Name        string `xmlrpc:"name"`
	Type        string `xmlrpc:"type"`
	Description string `xmlrpc:"description"`
	Optional    bool   `xmlrpc:"optional"`
	Default     any    `xmlrpc:"default"`
	Secret      bool   `xmlrpc:"secret,omitempty"`
	// SecretFields names the members of a struct argument the audit log
	// redacts.
	SecretFields []string `xmlrpc:"secret_fields,omitempty"`
	// Content arguments (file bodies) are recorded as their size and
	// SHA-256. An overlord reads Secret, SecretFields and Content to
	// redact its own audit record of the call as the minion does.
	Content bool `xmlrpc:"content,omitempty"`
}

func (m *module) info() ModuleInfo {
	names := make([]string, 0, len(m.methods))
	for n := range m.methods {
		names = append(names, n)
	}
	sort.Strings(names)
	return ModuleInfo{Description: m.doc.Description, Version: m.doc.Version, Methods: names}
}

func (m *module) methodArgs() map[string]MethodArgs {
	out := make(map[string]MethodArgs, len(m.methods))
	for wire, meth := range m.methods {
		ma := MethodArgs{Description: meth.doc.Description, Dangerous: meth.doc.Dangerous, AliasOf: meth.doc.AliasOf, Args: []ArgInfo{}}
		for i, t := range meth.params {
			ai := ArgInfo{Name: meth.argName(i), Type: wireType(t)}
			if i < len(meth.doc.Args) {
				d := meth.doc.Args[i]
				ai.Description, ai.Optional, ai.Default, ai.Secret = d.Description, d.Optional, d.Default, d.Secret
				ai.SecretFields, ai.Content = d.SecretFields, d.Content
				if d.Type != "" {
					ai.Type = d.Type
				}
			}
			ma.Args = append(ma.Args, ai)
		}
		out[wire] = ma
	}
	return out
}

// addIntrospection gives a module Func's per-module introspection
// methods, answering from its doc and Go signatures. A method the module
// has already keeps its meaning: system.list_methods lists every
// module's methods, not only system's.
func (m *module) addIntrospection() {
	add := func(wire, desc string, fn any) {
		if _, ok := m.methods[wire]; ok {
			return
		}
		m.methods[wire] = &method{module: m.name, wire: wire, goName: wire, fn: reflect.ValueOf(fn), hasResult: true,
			doc: gofunc.MethodDoc{Description: desc}}
	}
	add("list_methods", "The module's methods.", func() []string { return m.info().Methods })
	add("module_description", "What the module does.", func() string { return m.doc.Description })
	add("module_version", "The module's version.", func() string { return m.doc.Version })
	add("get_method_args", "Each method's arguments: name, type, default, description.", m.methodArgs)
}

// wireType names the XML-RPC type a Go parameter type takes.
func wireType(t reflect.Type) string { return xmlrpc.TypeName(t) }
