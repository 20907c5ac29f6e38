package caller_test

import (
	"context"
	"fmt"
	"time"

	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/fleettest"
)

// Discovery: who is connected to the broker, by one signed broadcast.
func ExampleTransport_Discover() {
	f, err := brokertest.New(fleettest.Config{Minions: 3, Subnet: "127.0.45"})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	tr, err := f.Transport(f.Admin(), caller.Options{})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	found, err := tr.Discover(ctx, 2*time.Second)
	if err != nil {
		panic(err)
	}
	for _, m := range found {
		fmt.Println(m.Name, m.Err)
	}
	fmt.Println("discovered", len(found))
	// Output:
	// m1.test <nil>
	// m2.test <nil>
	// m3.test <nil>
	// discovered 3
}
