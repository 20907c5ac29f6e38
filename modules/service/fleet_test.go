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
