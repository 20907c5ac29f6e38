package brokertest_test

import (
	"context"
	"fmt"

	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/fleettest"
)

// A fleet behind a broker: the same call, directly and through the
// broker.
func Example() {
	f, err := brokertest.New(fleettest.Config{Minions: 2})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	ctx := context.Background()
	direct, err := f.Overlord().Targets("*").Call(ctx, "test", "add", 40, 2)
	if err != nil {
		panic(err)
	}
	brokered, err := f.Client().Targets("*").Call(ctx, "test", "add", 40, 2)
	if err != nil {
		panic(err)
	}
	for _, host := range brokered.Hosts() {
		fmt.Println(host, direct[host].Value, brokered[host].Value)
	}
	// Output:
	// m1.test 42 42
	// m2.test 42 42
}
