package reboot_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/reboot"
)

// TestOverMutualTLS schedules a (fake) reboot through a real minion: the
// default ACL refuses it; a rule naming reboot.reboot allows it.
func TestOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "argv")
	script := fmt.Sprintf("#!/bin/sh\necho \"$*\" > %q\n", record)
	fake := filepath.Join(dir, "shutdown")
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	register := func(name string, srv *minion.Server) error {
		return srv.Register("reboot", &reboot.Module{Shutdown: fake})
	}
	f := fleettest.Start(t, fleettest.Config{NoBuiltins: true, Modules: register})
	_, err := f.Overlord().Targets("*").Call(t.Context(), "reboot", "reboot", 5, "maintenance")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("reboot.reboot under the default ACL = %v, want denied", err)
	}
	if _, err := os.Stat(record); err == nil {
		t.Fatal("shutdown ran although the call was denied")
	}

	acl := &minion.ACL{Rules: []minion.Rule{{Identity: "admin", Role: gofunc.RoleOverlord, Methods: []string{"reboot.reboot"}}}}
	f2 := fleettest.Start(t, fleettest.Config{NoBuiltins: true, Modules: register, ACL: acl, Subnet: "127.0.3"})
	if _, err := f2.Overlord().Targets("*").Call(t.Context(), "reboot", "reboot", 5, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(record); string(got) != "-r +5 -- maintenance\n" {
		t.Errorf("shutdown argv = %q", got)
	}
	_, err = f2.Overlord().Targets("*").Call(t.Context(), "reboot", "reboot", 99999)
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("reboot.reboot(99999) = %v, want bad args", err)
	}
}
