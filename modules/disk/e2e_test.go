package disk_test

import (
	"errors"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/disk"
)

func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.44"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "disk", "usage") // path is optional
	if err != nil {
		t.Fatal(err)
	}
	var usages []disk.Usage
	if err := res["m1.test"].Decode(&usages); err != nil {
		t.Fatal(err)
	}
	root := false
	for _, u := range usages {
		root = root || (u.Mountpoint == "/" && u.Total > 0)
	}
	if !root {
		t.Errorf("disk.usage over the wire has no /: %+v", usages)
	}
	if _, err := sel.Call(t.Context(), "disk", "usage", "../../etc/shadow"); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("disk.usage(../../etc/shadow) = %v, want bad arguments", err)
	}
}
