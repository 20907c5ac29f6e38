package sysctl_test

import (
	"errors"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
)

func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.42"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "sysctl", "get", "kernel.ostype")
	if err != nil || res["m1.test"].Value != "Linux" {
		t.Errorf("sysctl.get(kernel.ostype) = %#v, %v", res["m1.test"].Value, err)
	}
	// set is Dangerous: the default ACL's catch-all grant does not cover
	// it. (The key is invalid too, so nothing could be written anyway.)
	_, err = sel.Call(t.Context(), "sysctl", "set", "kernel.ostype; reboot", "1")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("sysctl.set under the default ACL = %v, want denied", err)
	}
	_, err = sel.Call(t.Context(), "sysctl", "get", "../../etc/shadow")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("sysctl.get(../../etc/shadow) = %v, want bad arguments", err)
	}
}
