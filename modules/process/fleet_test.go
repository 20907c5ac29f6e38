package process_test

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/process"
)

// TestOverMutualTLS lists processes through a real minion, and checks that
// kill needs an ACL rule naming it.
func TestOverMutualTLS(t *testing.T) {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer child.Process.Kill()

	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "process", "list")
	if err != nil {
		t.Fatal(err)
	}
	var procs []process.Proc
	if err := res["m1.test"].Decode(&procs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(procs, func(p process.Proc) bool { return p.PID == child.Process.Pid && p.PPID == os.Getpid() }) {
		t.Errorf("process.list lacks the child %d", child.Process.Pid)
	}
	_, err = sel.Call(t.Context(), "process", "kill", child.Process.Pid, "KILL")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("process.kill under the default ACL = %v, want denied", err)
	}

	acl := &minion.ACL{Rules: []minion.Rule{{Identity: "admin", Role: gofunc.RoleOverlord, Methods: []string{"*", "process.kill"}}}}
	f2 := fleettest.Start(t, fleettest.Config{ACL: acl, Subnet: "127.0.2"})
	if _, err := f2.Overlord().Targets("*").Call(t.Context(), "process", "kill", child.Process.Pid, 15); err != nil {
		t.Fatal(err)
	}
	child.Wait()
	if ws := child.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGTERM {
		t.Errorf("child ended with %v, want TERM", child.ProcessState)
	}
	_, err = f2.Overlord().Targets("*").Call(t.Context(), "process", "kill", 1, "TERM")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("process.kill(1) = %v, want denied", err)
	}
}
