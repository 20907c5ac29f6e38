package hardware_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/modtest"
	"github.com/gofunc/gofunc/modules/disk"
	"github.com/gofunc/gofunc/modules/hardware"
)

// TestOverMTLS calls hardware.info and facts.* through a real minion and
// overlord: the typed results survive the XML-RPC round trip.
func TestOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.41"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "hardware", "info")
	if err != nil {
		t.Fatal(err)
	}
	var info hardware.Info
	if err := res["m1.test"].Decode(&info); err != nil {
		t.Fatal(err)
	}
	if info.OS.System != "linux" || info.Memory.Total <= 0 || info.CPU.Count < 1 || len(info.Filesystems) == 0 {
		t.Errorf("hardware.info over the wire = %+v", info)
	}
	res, err = sel.Call(t.Context(), "facts", "get", "arch")
	if err != nil {
		t.Fatal(err)
	}
	if arch, _ := res["m1.test"].Value.(string); arch != info.OS.Arch {
		t.Errorf("facts.get(arch) = %#v, want %q", res["m1.test"].Value, info.OS.Arch)
	}
	res, err = sel.Call(t.Context(), "facts", "list")
	if err != nil {
		t.Fatal(err)
	}
	facts, _ := res["m1.test"].Value.(map[string]any)
	if facts["os"] != info.OS.Name || facts["memory_total"] != info.Memory.Total {
		t.Errorf("facts.list = %v", facts)
	}
}

// TestInventoryOverMTLS is what `func inventory` does: hardware.inventory
// twice through a real minion, some activity in between; the answers
// decode to equal inventories.
func TestInventoryOverMTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Subnet: "127.0.47"})
	sel := f.Overlord().Targets("*")
	inventory := func(ctx context.Context) (hardware.Inventory, error) {
		var inv hardware.Inventory
		res, err := sel.Call(ctx, "hardware", "inventory")
		if err != nil {
			return inv, err
		}
		return inv, res["m1.test"].Decode(&inv)
	}
	inv := modtest.CheckStable(t, inventory, cmpopts.IgnoreSliceElements(func(f disk.Filesystem) bool {
		return strings.HasPrefix(f.Mountpoint, os.TempDir()+"/")
	}))
	if inv.OS.System != "linux" || inv.MemoryTotal <= 0 || len(inv.Filesystems) == 0 {
		t.Errorf("hardware.inventory over the wire = %+v", inv)
	}
}
