package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// introspection are the methods every module answers; doc lists them
// once in a footnote rather than under every module.
var introspection = []string{"get_method_args", "list_methods", "module_description", "module_version"}

// doc is `func SPEC doc MODULE[.METHOD]`: what the minions say of a
// module's methods (get_method_args and module_description), printed
// for people, like salt's sys.doc. Minions that run the same version
// print the same text, so it groups into one block.
func (e *env) doc() int {
	module, method, _ := strings.Cut(e.cli.Spec.Doc.Name, ".")
	if module == "" || strings.Contains(method, ".") {
		return e.usage(fmt.Errorf("doc %q: want MODULE or MODULE.METHOD, e.g. command or command.run", e.cli.Spec.Doc.Name))
	}
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, e.cli.Spec.Spec)
	if err != nil {
		return e.usage(err)
	}
	res, err := sel.Each(e.ctx, module+".get_method_args", func(ctx context.Context, host string, call overlord.Caller) (any, error) {
		return fetchDoc(ctx, call, module, method)
	})
	e.cm.reportDropped(e.cli.Spec.Spec)
	if res == nil {
		return e.failure(err)
	}
	x := e.explainer(c)
	v := e.newView(nil, func(r overlord.Result) hostOutcome {
		if r.Err != nil {
			return problemOutcome(r, x)
		}
		return hostOutcome{host: r.Host, ok: true, class: "ok", body: formatDoc(r.Value), json: hostJSON{OK: true, Value: r.Value}}
	}, false)
	for _, h := range res.Hosts() {
		v.add(res[h])
	}
	return callExit(v.finish())
}

// fetchDoc asks one minion for the module's description and its
// methods' arguments, and keeps only method when it is set.
func fetchDoc(ctx context.Context, call overlord.Caller, module, method string) (map[string]any, error) {
	args, err := call(ctx, module, "get_method_args")
	if errors.Is(err, gofunc.ErrNoSuchMethod) {
		return nil, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no module %q on this minion (func SPEC call system list_modules lists them)", module)
	}
	if err != nil {
		return nil, err
	}
	methods, ok := args.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s.get_method_args answered %T, not a struct", overlord.ErrProtocol, module, args)
	}
	out := map[string]any{"module": module, "methods": methods}
	if method != "" {
		m, ok := methods[method]
		if !ok {
			return nil, gofunc.Errorf(gofunc.CodeNoSuchMethod, "no method %s.%s; its methods: %s", module, method,
				strings.Join(slices.Sorted(maps.Keys(methods)), ", "))
		}
		out["methods"] = map[string]any{method: m}
	}
	if desc, err := call(ctx, module, "module_description"); err == nil {
		out["description"] = desc
	}
	return out, nil
}

// formatDoc prints a fetchDoc answer:
//
//	command: Run programs on the minion.
//
//	command.run(argv array, [options struct])
//	    Run argv directly, without a shell; returns ...
//	    argv     array   program and arguments; ...
//	    options  struct  optional. timeout (...), ... Secret: env, stdin.
func formatDoc(v any) string {
	doc, _ := v.(map[string]any)
	module, _ := doc["module"].(string)
	methods, _ := doc["methods"].(map[string]any)
	var b strings.Builder
	if desc, ok := doc["description"].(string); ok && desc != "" && len(methods) > 1 {
		fmt.Fprintf(&b, "%s: %s\n", module, oneLine(desc))
	}
	var hidden []string
	for _, name := range slices.Sorted(maps.Keys(methods)) {
		if len(methods) > 1 && slices.Contains(introspection, name) {
			hidden = append(hidden, name)
			continue
		}
		m, _ := methods[name].(map[string]any)
		writeMethodDoc(&b, module+"."+name, m)
	}
	if len(hidden) > 0 {
		fmt.Fprintf(&b, "\n(and %s, which every module has)\n", strings.Join(hidden, ", "))
	}
	return strings.TrimPrefix(b.String(), "\n")
}

func writeMethodDoc(b *strings.Builder, name string, m map[string]any) {
	args, _ := m["args"].([]any)
	var sig []string
	var rows [][3]string
	for _, a := range args {
		arg, _ := a.(map[string]any)
		argName, _ := arg["name"].(string)
		typ, _ := arg["type"].(string)
		s := strings.TrimSpace(argName + " " + typ)
		note, _ := arg["description"].(string)
		if opt, _ := arg["optional"].(bool); opt {
			s = "[" + s + "]"
			note = strings.TrimSpace("Optional. " + note)
		}
		switch d := arg["default"].(type) {
		case nil:
		case string:
			note += fmt.Sprintf(" Default: %q.", d)
		default:
			note += fmt.Sprintf(" Default: %v.", d)
		}
		if secret, _ := arg["secret_fields"].([]any); len(secret) > 0 {
			note += fmt.Sprintf(" Secret (redacted in audit logs): %s.", joinAny(secret))
		}
		if s, _ := arg["secret"].(bool); s {
			note += " Secret (redacted in audit logs)."
		}
		sig = append(sig, s)
		rows = append(rows, [3]string{argName, typ, oneLine(note)})
	}
	fmt.Fprintf(b, "\n%s(%s)\n", name, strings.Join(sig, ", "))
	if desc, _ := m["description"].(string); desc != "" {
		fmt.Fprintf(b, "    %s\n", oneLine(desc))
	}
	if dangerous, _ := m["dangerous"].(bool); dangerous {
		fmt.Fprintf(b, "    Dangerous: allowed only by an ACL rule that names it exactly.\n")
	}
	nameW, typeW := 0, 0
	for _, r := range rows {
		nameW, typeW = max(nameW, len(r[0])), max(typeW, len(r[1]))
	}
	for _, r := range rows {
		fmt.Fprintf(b, "    %-*s  %-*s  %s\n", nameW, r[0], typeW, r[1], r[2])
	}
}

func joinAny(list []any) string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = fmt.Sprint(v)
	}
	return strings.Join(out, ", ")
}
