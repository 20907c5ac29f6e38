package modules_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/modtest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/nagios"
)

// Func's method names (getfile.getchunk and chunkslen,
// nagios_check.run) answer over mutual TLS with the built-ins, are
// judged by the ACL as the methods they stand for, and introspection
// says so.
func TestFuncNamesOverMutualTLS(t *testing.T) {
	_, err := os.Stat(filepath.Join(nagios.DefaultPluginDir, "check_dummy"))
	modtest.Need(t, "Debian's monitoring-plugins (apt-get install monitoring-plugins-basic)", err)
	acl, err := minion.ParseACL("t.acl", strings.NewReader(`
monitor@overlord = nagios.run_check, getfile.read, getfile.stat
!intern@overlord = nagios.*, getfile.read
intern@overlord  = *
admin@overlord   = *
`))
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{ACL: acl})
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	monitor := f.As(gofunc.RoleOverlord, "monitor").Targets("*")
	res, err := monitor.Call(ctx, "nagios_check", "run", "check_dummy 1 busy")
	if got, _ := res["m1.test"].Value.([]any); err != nil || fmt.Sprint(got) != "[1 WARNING: busy\n ]" {
		t.Errorf("nagios_check.run(check_dummy 1 busy) = %#v, %v", res["m1.test"].Value, err)
	}
	res, err = monitor.Call(ctx, "getfile", "getchunk", 0, file)
	if got, _ := res["m1.test"].Value.([]any); err != nil || len(got) != 2 || got[1] != "aGVsbG8=" {
		t.Errorf("getfile.getchunk(0, %s) = %#v, %v", file, res["m1.test"].Value, err)
	}
	if res, err := monitor.Call(ctx, "getfile", "chunkslen", file); err != nil || fmt.Sprint(res["m1.test"].Value) != "1" {
		t.Errorf("getfile.chunkslen = %v, %v", res["m1.test"].Value, err)
	}
	intern := f.As(gofunc.RoleOverlord, "intern").Targets("*")
	for _, c := range [][]any{{"nagios_check", "run", "check_dummy 0 ok"}, {"getfile", "getchunk", 0, file}} {
		if _, err := intern.Call(ctx, c[0].(string), c[1].(string), c[2:]...); !errors.Is(err, gofunc.ErrDenied) {
			t.Errorf("intern calling %s.%s = %v, want denied by the rule for the method it stands for", c[0], c[1], err)
		}
	}

	admin := f.As(gofunc.RoleOverlord, "admin").Targets("*")
	res, err = admin.Call(ctx, "system", "list_methods")
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	for _, m := range res["m1.test"].Value.([]any) {
		methods = append(methods, m.(string))
	}
	for _, want := range []string{"getfile.getchunk", "getfile.chunkslen", "nagios_check.run", "nagios.run_check"} {
		if !slices.Contains(methods, want) {
			t.Errorf("system.list_methods lacks %s", want)
		}
	}
	res, err = admin.Call(ctx, "nagios_check", "get_method_args")
	if run, _ := res["m1.test"].Value.(map[string]any)["run"].(map[string]any); err != nil || run["alias_of"] != "nagios.run_check" {
		t.Errorf("nagios_check.get_method_args = %v, %v; want run with alias_of nagios.run_check", res["m1.test"].Value, err)
	}
}
