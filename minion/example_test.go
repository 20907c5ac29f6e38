package minion_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
)

// Greeter is a module: its exported methods become greeter.hello and
// greeter.hello_twice on the wire.
type Greeter struct{}

// Hello greets whom, from the minion, naming the caller.
func (Greeter) Hello(ctx context.Context, whom string) (string, error) {
	p, _ := gofunc.PeerFromContext(ctx)
	return fmt.Sprintf("hello, %s (asked by %s)", whom, p.Name), nil
}

func ExampleServer_Register() {
	f, err := fleettest.New(fleettest.Config{
		Minions:    1,
		NoBuiltins: true,
		Modules:    func(_ string, srv *minion.Server) error { return srv.Register("greeter", Greeter{}) },
	})
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := f.Overlord().Targets("*").Call(context.Background(), "greeter", "hello", "world")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res["m1.test"].Value)
	// Output: hello, world (asked by admin)
}

func ExampleParseACL() {
	acl, err := minion.ParseACL("ops.acl", strings.NewReader(`
# admins: everything but dangerous methods, plus reboot
admin-*@overlord = *, reboot.reboot
monitor          = test.*, system.*
!intern-*        = command.*
`))
	if err != nil {
		log.Fatal(err)
	}
	ann := gofunc.Peer{Name: "admin-ann", Role: gofunc.RoleOverlord}
	fmt.Println(acl.Allows(ann, "service.restart", false))
	fmt.Println(acl.Allows(ann, "command.shell", true))
	fmt.Println(acl.Allows(ann, "reboot.reboot", true))
	_, why := acl.Check(gofunc.Peer{Name: "intern-bob"}, "command.run", false)
	fmt.Println(why)
	// Output:
	// true
	// false
	// true
	// denied by rule ops.acl:5
}
