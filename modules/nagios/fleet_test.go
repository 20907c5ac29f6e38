package nagios_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/nagios"
)

// TestOverMutualTLS runs a plugin through a real minion and decodes the
// parsed perfdata on the overlord's side.
func TestOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	plugin := "#!/bin/sh\necho \"DISK WARNING - $1 | '/ used'=90%;80;95;0;100\"\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "check_disk"), []byte(plugin), 0o755); err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{NoBuiltins: true, Modules: func(name string, srv *minion.Server) error {
		return srv.Register("nagios", &nagios.Module{PluginDir: dir, Allow: []string{"check_*"}})
	}})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "nagios", "run_check", "check_disk", []string{"root fs"})
	if err != nil {
		t.Fatal(err)
	}
	var r nagios.CheckResult
	if err := res["m1.test"].Decode(&r); err != nil {
		t.Fatal(err)
	}
	want := nagios.Perf{Label: "/ used", Value: 90, UOM: "%", Warn: "80", Crit: "95", Min: "0", Max: "100"}
	if r.Status != "WARNING" || r.Output != "DISK WARNING - root fs" || len(r.Perfdata) != 1 || r.Perfdata[0] != want {
		t.Errorf("nagios.run_check = %+v", r)
	}
	_, err = sel.Call(t.Context(), "nagios", "run_check", "../../bin/sh")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("run_check(../../bin/sh) = %v, want bad args", err)
	}
}

// TestWrapperRefusedOverMutualTLS is the review's case end to end: a
// monitoring certificate granted only nagios.* asks the minion to run
// negate /bin/sh -c ..., with an operator who allowed every plugin. The
// minion refuses, and the command never runs.
func TestWrapperRefusedOverMutualTLS(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "pwned")
	negate := "#!/bin/sh\n\"$@\"\n" // what negate does: run its arguments
	if err := os.WriteFile(filepath.Join(dir, "negate"), []byte(negate), 0o755); err != nil {
		t.Fatal(err)
	}
	acl, err := minion.ParseACL("monitor.acl", strings.NewReader("monitor@overlord = nagios.*\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{NoBuiltins: true, ACL: acl, Modules: func(name string, srv *minion.Server) error {
		return srv.Register("nagios", &nagios.Module{PluginDir: dir, Allow: []string{"*"}})
	}})
	monitor := f.As(gofunc.RoleOverlord, "monitor")
	_, err = monitor.Targets("*").Call(t.Context(), "nagios", "run_check", "negate", []string{"/bin/sh", "-c", "id > " + out})
	if !errors.Is(err, gofunc.ErrDenied) || !strings.Contains(err.Error(), "runs the command it is given") {
		t.Errorf("nagios.run_check(negate /bin/sh -c ...) = %v, want denied", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("negate ran: %s exists", out)
	}
}
