package overlord_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// New with options; against a real fleet, WithIdentity(dir) alone is the
// common case (the minion list is cached in dir by `func list_minions`).
func ExampleNew() {
	f, err := fleettest.New(fleettest.Config{Minions: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	c := overlord.New(
		overlord.WithIdentity(f.Admin()),
		overlord.WithMinions(overlord.Static{
			{Name: "m1.test", Addr: f.Minions()[0].Addr},
			{Name: "m2.test", Addr: f.Minions()[1].Addr},
		}),
		overlord.WithForks(64),
	)
	defer c.Close()

	res, err := c.Targets("*").Call(context.Background(), "command", "shell", "reboot")
	// command.shell is dangerous: the default ACL does not grant it.
	fmt.Println(errors.Is(err, gofunc.ErrDenied), len(res.Failed()))

	// A bad option does not panic or fail New: it comes back from Call.
	bad := overlord.New(overlord.WithForks(0))
	defer bad.Close()
	_, err = bad.Targets("*").Call(context.Background(), "test", "ping")
	fmt.Println(err)
	// Output:
	// true 2
	// overlord: forks must be positive, got 0
}
