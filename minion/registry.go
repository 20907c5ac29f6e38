package minion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// Registration errors.
var (
	ErrBadModuleName = errors.New("minion: bad module name")
	ErrDuplicate     = errors.New("minion: module already registered")
	ErrNoMethods     = errors.New("minion: module has no callable methods")
)

// moduleNameRE is what a module name may look like on the wire.
var moduleNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// reserved names are the minion's own: registering them is refused.
var reserved = map[string]bool{"async": true, "events": true, "jobs": true, "system": true}

// excluded Go methods never become wire methods.
var excluded = map[string]bool{"Doc": true, "Close": true}

// introspection methods every module answers; a module's own method by
// one of these names is refused at registration.
var introspection = []string{"list_methods", "module_description", "module_version", "get_method_args"}

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// method is one callable module.method.
type method struct {
	module    string
	wire      string
	goName    string
	fn        reflect.Value // bound to the receiver
	hasCtx    bool
	params    []reflect.Type
	hasResult bool
	hasErr    bool
	doc       gofunc.MethodDoc
}

// module is one registered Go value.
type module struct {
	name    string
	value   any
	doc     gofunc.ModuleDoc
	methods map[string]*method // by wire name
	closed  bool               // Close was called (servers stop once)
}

// registry maps wire names to methods. It is read on every call and
// written only by Register, so it uses a read-write lock.
type registry struct {
	mu      sync.RWMutex
	modules map[string]*module
}

func (r *registry) register(name string, v any, allowReserved bool) error {
	if !moduleNameRE.MatchString(name) {
		return fmt.Errorf("%w: %q (want lower-case letters, digits and _)", ErrBadModuleName, name)
	}
	if reserved[name] && !allowReserved {
		return fmt.Errorf("%w: %q is reserved", ErrBadModuleName, name)
	}
	m, err := reflectModule(name, v)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.modules == nil {
		r.modules = make(map[string]*module)
	}
	if _, dup := r.modules[name]; dup {
		return fmt.Errorf("%w: %q", ErrDuplicate, name)
	}
	r.modules[name] = m
	return nil
}

func reflectModule(name string, v any) (*module, error) {
	if v == nil {
		return nil, fmt.Errorf("minion: module %q is nil", name)
	}
	m := &module{name: name, value: v, methods: make(map[string]*method)}
	if d, ok := v.(gofunc.Documented); ok {
		m.doc = d.Doc()
	}
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := range rt.NumMethod() {
		gm := rt.Method(i)
		if excluded[gm.Name] {
			continue
		}
		meth, err := reflectMethod(name, gm.Name, rv.Method(i), m.doc.Methods[gm.Name])
		if err != nil {
			return nil, err
		}
		if name != "system" && slices.Contains(introspection, meth.wire) {
			return nil, fmt.Errorf("minion: %s.%s: name is reserved for introspection", name, meth.wire)
		}
		if prev, dup := m.methods[meth.wire]; dup {
			return nil, fmt.Errorf("minion: %s: %s and %s share the wire name %q", name, prev.goName, gm.Name, meth.wire)
		}
		m.methods[meth.wire] = meth
	}
	if len(m.methods) == 0 {
		return nil, fmt.Errorf("%w: %q (%T)", ErrNoMethods, name, v)
	}
	m.addIntrospection()
	return m, nil
}

func reflectMethod(module, goName string, fn reflect.Value, doc gofunc.MethodDoc) (*method, error) {
	ft := fn.Type()
	meth := &method{module: module, goName: goName, fn: fn, doc: doc, wire: doc.Wire}
	if meth.wire == "" {
		meth.wire = xmlrpc.SnakeCase(goName)
	}
	if doc.AliasOf != "" && !strings.Contains(doc.AliasOf, ".") {
		meth.doc.AliasOf = module + "." + doc.AliasOf
	}
	if ft.IsVariadic() {
		return nil, fmt.Errorf("minion: %s.%s: variadic methods are not supported; use an optional trailing argument", module, goName)
	}
	for i := range ft.NumIn() {
		in := ft.In(i)
		if i == 0 && in == ctxType {
			meth.hasCtx = true
			continue
		}
		meth.params = append(meth.params, in)
	}
	switch ft.NumOut() {
	case 0:
	case 1:
		meth.hasErr = ft.Out(0) == errorType
		meth.hasResult = !meth.hasErr
	case 2:
		if ft.Out(1) != errorType {
			return nil, fmt.Errorf("minion: %s.%s: second result must be error", module, goName)
		}
		meth.hasResult, meth.hasErr = true, true
	default:
		return nil, fmt.Errorf("minion: %s.%s: too many results", module, goName)
	}
	if n := len(doc.Args); n != 0 && n != len(meth.params) {
		return nil, fmt.Errorf("minion: %s.%s: doc describes %d arguments, method takes %d", module, goName, n, len(meth.params))
	}
	return meth, nil
}

// authority returns the name the ACL judges a call to m by, and whether
// that call is dangerous: m's own, or for an alias (MethodDoc.AliasOf)
// the method it stands for, dangerous when either is.
func (r *registry) authority(m *method) (name string, dangerous bool) {
	if m.doc.AliasOf == "" {
		return m.module + "." + m.wire, m.doc.Dangerous
	}
	if of, ok := r.lookup(m.doc.AliasOf); ok {
		return m.doc.AliasOf, m.doc.Dangerous || of.doc.Dangerous
	}
	return m.doc.AliasOf, m.doc.Dangerous
}

// asyncOK reports whether the method may run as an async job: the jobs
// module's own methods may not (a job polling jobs is a loop).
func (m *method) asyncOK() bool { return m.module != "jobs" }

// lookup finds module.method.
func (r *registry) lookup(name string) (*method, bool) {
	mod, meth, ok := strings.Cut(name, ".")
	if !ok {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	m := r.modules[mod]
	if m == nil {
		return nil, false
	}
	mt, ok := m.methods[meth]
	return mt, ok
}

func (r *registry) module(name string) (*module, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.modules[name]
	return m, ok
}

// moduleNames returns the registered modules, sorted.
func (r *registry) moduleNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.modules))
	for n := range r.modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// methodNames returns "module.method" for every method, sorted,
// including each module's introspection methods.
func (r *registry) methodNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var names []string
	for mn, m := range r.modules {
		for wn := range m.methods {
			names = append(names, mn+"."+wn)
		}
	}
	sort.Strings(names)
	return names
}

// args converts decoded XML-RPC params into the method's Go arguments,
// filling missing optional trailing arguments.
func (m *method) args(params []any) ([]reflect.Value, error) {
	if len(params) > len(m.params) {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s.%s takes %d arguments, got %d", m.module, m.wire, len(m.params), len(params))
	}
	out := make([]reflect.Value, len(m.params))
	for i, t := range m.params {
		name := m.argName(i)
		if i >= len(params) {
			v, err := m.missing(i, name, t)
			if err != nil {
				return nil, err
			}
			out[i] = v
			continue
		}
		v, err := xmlrpc.ConvertNamed(name, params[i], t)
		if err != nil {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s.%s: argument %d: %s", m.module, m.wire, i+1, faultText(err))
		}
		out[i] = v
	}
	return out, nil
}

func (m *method) missing(i int, name string, t reflect.Type) (reflect.Value, error) {
	if i >= len(m.doc.Args) || !m.doc.Args[i].Optional {
		return reflect.Value{}, gofunc.Errorf(gofunc.CodeBadArgs, "%s.%s: missing argument %d (%s); it takes %d", m.module, m.wire, i+1, name, len(m.params))
	}
	def := m.doc.Args[i].Default
	if def == nil {
		return reflect.Zero(t), nil
	}
	v := reflect.ValueOf(def)
	if !v.Type().AssignableTo(t) {
		if !v.Type().ConvertibleTo(t) {
			return reflect.Value{}, gofunc.Errorf(gofunc.CodeInternal, "%s.%s: default of %s does not fit %s", m.module, m.wire, name, t)
		}
		v = v.Convert(t)
	}
	return v, nil
}

func (m *method) argName(i int) string {
	if i < len(m.doc.Args) && m.doc.Args[i].Name != "" {
		return m.doc.Args[i].Name
	}
	return fmt.Sprintf("arg%d", i+1)
}

// faultText is an error's message without the fault prefix, for nesting
// one fault's text inside another.
func faultText(err error) string {
	var f *gofunc.Fault
	if errors.As(err, &f) {
		return f.Message
	}
	return err.Error()
}

// call runs the method. A panic in a module is turned into an internal
// fault, so one bad module cannot take the daemon down.
func (m *method) call(ctx context.Context, args []reflect.Value) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	in := args
	if m.hasCtx {
		in = append([]reflect.Value{reflect.ValueOf(ctx)}, args...)
	}
	out := m.fn.Call(in)
	if m.hasErr {
		if e := out[len(out)-1]; !e.IsNil() {
			return nil, e.Interface().(error)
		}
	}
	if m.hasResult {
		return out[0].Interface(), nil
	}
	return true, nil // XML-RPC has no void; Func's convention is true
}

// closeModules closes every module that implements io.Closer, once the
// server has stopped: a module's Close (never a wire method) releases
// what it holds, such as copyfile's unfinished uploads.
func (r *registry) closeModules(log hclog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name, m := range r.modules {
		c, ok := m.value.(io.Closer)
		if !ok || m.closed {
			continue
		}
		m.closed = true
		if err := c.Close(); err != nil {
			log.Warn("module close failed", "module", name, "error", err)
		}
	}
}
