package command_test

import (
	"errors"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
)

// TestOverMutualTLS runs commands through a real minion and overlord: the
// options struct and the result cross the wire, and shell is refused
// unless the ACL names it.
func TestOverMutualTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{})
	o := f.Overlord()
	res, err := o.Targets("*").Call(t.Context(), "command", "run",
		[]string{"sh", "-c", `printf '%s\377' "$GREETING"; exit 3`},
		map[string]any{"timeout": "5s", "env": map[string]any{"GREETING": "hi; rm -rf /"}})
	if err != nil {
		t.Fatal(err)
	}
	var r command.Result
	if err := res["m1.test"].Decode(&r); err != nil {
		t.Fatal(err)
	}
	if r.ExitCode != 3 || r.Stdout != "hi; rm -rf /\uFFFD" || string(r.StdoutRaw) != "hi; rm -rf /\xff" || r.TimedOut {
		t.Errorf("command.run = %+v", r)
	}
	_, err = o.Targets("*").Call(t.Context(), "command", "run", []string{"true"}, map[string]any{"max_output": int64(10) << 30})
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("10 GB max_output = %v, want bad args", err)
	}
	_, err = o.Targets("*").Call(t.Context(), "command", "shell", "id")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("command.shell under the default ACL = %v, want denied", err)
	}

	acl := &minion.ACL{Rules: []minion.Rule{{Identity: "admin", Role: gofunc.RoleOverlord, Methods: []string{"*", "command.shell"}}}}
	f2 := fleettest.Start(t, fleettest.Config{ACL: acl, Subnet: "127.0.1"})
	res, err = f2.Overlord().Targets("*").Call(t.Context(), "command", "shell", "echo $((6*7))")
	if err != nil {
		t.Fatal(err)
	}
	if err := res["m1.test"].Decode(&r); err != nil || r.Stdout != "42\n" {
		t.Errorf("command.shell = %+v, %v", r, err)
	}
	res, err = f2.Overlord().Targets("*").Call(t.Context(), "command", "exists", "ls")
	if err != nil || res["m1.test"].Value != true {
		t.Errorf("command.exists(ls) = %v, %v", res["m1.test"].Value, err)
	}
}
