package stats_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/stats"
)

// TestOverMutualTLS calls the registered built-in over a real minion:
// typed results decode on the overlord, a hostile mountpoint is a
// bad-arguments fault.
func TestOverMutualTLS(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 2, Subnet: "127.0.31"})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "stats", "all")
	if err != nil {
		t.Fatal(err)
	}
	for host, r := range res {
		var a stats.All
		if err := r.Decode(&a); err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if a.CPU.CPUs < 1 || a.Memory.Total <= 0 || a.Load.UptimeS <= 0 || len(a.Disk) == 0 {
			t.Errorf("%s: stats.all = %+v", host, a)
		}
	}
	_, err = sel.Call(t.Context(), "stats", "disk", "/etc/passwd; rm")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("stats.disk(\"/etc/passwd; rm\") = %v, want bad arguments", err)
	}
}

// Every minion has the stats module: one call gives the fleet table's
// figures, typed.
func ExampleModule() {
	f, err := fleettest.New(fleettest.Config{Minions: 2, Subnet: "127.0.32"})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := f.Overlord().Targets("*").Call(context.Background(), "stats", "load")
	if err != nil {
		log.Fatal(err)
	}
	for _, host := range []string{"m1.test", "m2.test"} {
		var l stats.Load
		if err := res[host].Decode(&l); err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: cpus>0 %v, uptime>0 %v, load1>=0 %v\n", host, l.CPUs > 0, l.UptimeS > 0, l.Load1 >= 0)
	}
	// Output:
	// m1.test: cpus>0 true, uptime>0 true, load1>=0 true
	// m2.test: cpus>0 true, uptime>0 true, load1>=0 true
}
