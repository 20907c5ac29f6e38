package minion_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
)

func TestSystemIntrospection(t *testing.T) {
	_, call := startValues(t)

	mods, err := call("system.list_modules")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]any{"events", "jobs", "system", "test", "values"}, mods); diff != "" {
		t.Errorf("system.list_modules (-want +got):\n%s", diff)
	}

	for _, m := range []string{"system.list_methods", "system.listMethods"} {
		got, err := call(m)
		if err != nil {
			t.Fatal(err)
		}
		names := toStrings(t, got)
		for _, want := range []string{
			"test.ping", "values.echo_int", "values.greet", "values.list_methods", "values.get_method_args",
			"system.list_modules", "system.listMethods", "system.inventory", "jobs.job_status", "jobs.list", "jobs.cancel",
		} {
			if !slices.Contains(names, want) {
				t.Errorf("%s lacks %s: %v", m, want, names)
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("%s is not sorted: %v", m, names)
		}
	}

	inv, err := call("system.inventory")
	if err != nil {
		t.Fatal(err)
	}
	values, ok := inv.(map[string]any)["values"].(map[string]any)
	if !ok {
		t.Fatalf("system.inventory has no values module: %#v", inv)
	}
	if values["version"] != "2.1.0" || values["description"] != "Round trips of typed values." {
		t.Errorf("inventory of values = %#v", values)
	}
	if !slices.Contains(toStrings(t, values["methods"]), "echo_shape") {
		t.Errorf("inventory of values lacks echo_shape: %#v", values["methods"])
	}
}

func TestModuleIntrospection(t *testing.T) {
	_, call := startValues(t)
	if got, err := call("values.module_version"); err != nil || got != "2.1.0" {
		t.Errorf("module_version = %v, %v", got, err)
	}
	if got, err := call("values.module_description"); err != nil || got != "Round trips of typed values." {
		t.Errorf("module_description = %v, %v", got, err)
	}
	methods, err := call("values.list_methods")
	if err != nil {
		t.Fatal(err)
	}
	names := toStrings(t, methods)
	for _, want := range []string{"echo_int", "greet", "nothing", "list_methods", "module_version", "module_description", "get_method_args"} {
		if !slices.Contains(names, want) {
			t.Errorf("values.list_methods lacks %s: %v", want, names)
		}
	}
	if slices.Contains(names, "doc") {
		t.Errorf("Doc became a wire method: %v", names)
	}

	args, err := call("values.get_method_args")
	if err != nil {
		t.Fatal(err)
	}
	all := args.(map[string]any)
	greet := all["greet"].(map[string]any)
	want := map[string]any{
		"description": "Repeats a greeting.",
		"dangerous":   false,
		"args": []any{
			map[string]any{"name": "greeting", "type": "string", "description": "what to say", "optional": false, "default": nil},
			map[string]any{"name": "times", "type": "int", "description": "how often", "optional": true, "default": int64(2)},
		},
	}
	if diff := cmp.Diff(want, greet); diff != "" {
		t.Errorf("get_method_args greet (-want +got):\n%s", diff)
	}
	shape := all["echo_shape"].(map[string]any)["args"].([]any)[0].(map[string]any)
	if shape["name"] != "arg1" || shape["type"] != "struct" {
		t.Errorf("undocumented argument = %#v, want arg1 of type struct", shape)
	}
	for name, wantType := range map[string]string{"echo_bytes": "base64", "echo_time": "dateTime.iso8601", "echo_int": "int", "echo_float": "double", "echo_map": "struct", "echo_any": "any"} {
		a := all[name].(map[string]any)["args"].([]any)[0].(map[string]any)
		if a["type"] != wantType {
			t.Errorf("%s argument type = %v, want %s", name, a["type"], wantType)
		}
	}
}

// The system module answers the per-module introspection calls about
// itself too; its list_methods keeps listing every module's methods.
func TestSystemModuleIntrospection(t *testing.T) {
	_, call := startValues(t)
	if got, err := call("system.module_version"); err != nil || got != "1.0.0" {
		t.Errorf("system.module_version = %v, %v", got, err)
	}
	if got, err := call("system.module_description"); err != nil || got == "" {
		t.Errorf("system.module_description = %v, %v", got, err)
	}
	args, err := call("system.get_method_args")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := args.(map[string]any)
	for _, want := range []string{"list_modules", "list_methods", "listMethods", "inventory", "module_version", "get_method_args"} {
		if _, ok := all[want]; !ok {
			t.Errorf("system.get_method_args lacks %s: %v", want, all)
		}
	}
	methods, err := call("system.list_methods")
	if err != nil {
		t.Fatal(err)
	}
	names := toStrings(t, methods)
	for _, want := range []string{"test.ping", "values.greet", "system.module_version", "system.get_method_args", "system.module_description"} {
		if !slices.Contains(names, want) {
			t.Errorf("system.list_methods lacks %s: %v", want, names)
		}
	}
}

// Dangerous methods are flagged in get_method_args.
func TestGetMethodArgsFlagsDangerous(t *testing.T) {
	e := start(t, func(s *minionServer) { mustRegister(t, s, "power", &power{}) })
	got, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "power.get_method_args")
	if err != nil {
		t.Fatal(err)
	}
	m := got.(map[string]any)
	if m["reboot"].(map[string]any)["dangerous"] != true || m["status"].(map[string]any)["dangerous"] != false {
		t.Errorf("get_method_args = %#v, want reboot dangerous and status not", m)
	}
}

func toStrings(t *testing.T, v any) []string {
	t.Helper()
	list, ok := v.([]any)
	if !ok {
		t.Fatalf("%#v is not a list", v)
	}
	out := make([]string, len(list))
	for i, x := range list {
		out[i], ok = x.(string)
		if !ok {
			t.Fatalf("%#v is not a list of strings", v)
		}
	}
	return out
}
