package hardware_test

import (
	"testing"

	"github.com/gofunc/gofunc/fleettest"
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
