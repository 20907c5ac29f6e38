package mount_test

import (
	"errors"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/mount"
)

func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.43"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "mount", "list")
	if err != nil {
		t.Fatal(err)
	}
	var mounts []mount.Mount
	if err := res["m1.test"].Decode(&mounts); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, m := range mounts {
		found = found || (m.Mountpoint == "/proc" && m.Fstype == "proc")
	}
	if !found {
		t.Errorf("mount.list over the wire has no /proc: %+v", mounts)
	}
	if _, err := sel.Call(t.Context(), "mount", "umount", "/proc"); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("mount.umount under the default ACL = %v, want denied", err)
	}
}
