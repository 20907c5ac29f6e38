package packages_test

import (
	"errors"
	"os"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/packages"
)

func TestOverMTLS(t *testing.T) {
	if _, err := os.Stat(packages.DefaultDpkgQueryPath); err != nil {
		t.Skip("no dpkg-query on this host")
	}
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.46"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "packages", "version", "dpkg")
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []packages.Package
	if err := res["m1.test"].Decode(&pkgs); err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].Name != "dpkg" || pkgs[0].Version == "" {
		t.Errorf("packages.version(dpkg) over the wire = %+v", pkgs)
	}
	// install is Dangerous: denied by the default ACL, before anything runs.
	_, err = sel.Call(t.Context(), "packages", "install", []string{"nginx; reboot"})
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("packages.install under the default ACL = %v, want denied", err)
	}
}
