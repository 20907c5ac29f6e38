package service_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
)

// TestOverMutualTLS checks that the caller sees why service cannot work
// on a host without systemd, and that names are validated first.
func TestOverMutualTLS(t *testing.T) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is running here; this test needs a host without it")
	}
	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("*")
	_, err := sel.Call(t.Context(), "service", "restart", "nginx")
	if !errors.Is(err, gofunc.ErrUnavailable) || !strings.Contains(err.Error(), "systemd is not running on this host") {
		t.Errorf("service.restart = %v, want unavailable", err)
	}
	_, err = sel.Call(t.Context(), "service", "restart", "nginx; reboot")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("service.restart(nginx; reboot) = %v, want bad args", err)
	}
}

// TestNoRebootThroughAService is the review's case over mutual TLS: a
// caller granted service.* must not reboot the host through a target or
// a power-state service. Names are refused before systemctl runs, so
// this is safe on a host that runs systemd.
func TestNoRebootThroughAService(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("*")
	for _, unit := range []string{"reboot.target", "poweroff.target", "emergency.target", "kexec.target"} {
		_, err := sel.Call(t.Context(), "service", "start", unit)
		if !errors.Is(err, gofunc.ErrBadArgs) || !strings.Contains(err.Error(), ".service units only") {
			t.Errorf("service.start(%s) = %v, want bad args", unit, err)
		}
	}
	_, err := sel.Call(t.Context(), "service", "start", "systemd-reboot")
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("service.start(systemd-reboot) = %v, want denied", err)
	}
}
