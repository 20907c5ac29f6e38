package minion_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/test"
	"github.com/gofunc/gofunc/overlord"
)

// A minion's whole life: an identity from the CA, an audit log, modules,
// Serve, calls, and a Shutdown that drains calls in flight.
func ExampleServer_Serve() {
	dir, _ := os.MkdirTemp("", "minion-example-")
	defer os.RemoveAll(dir)
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	id, _ := authority.Issue(gofunc.RoleMinion, "web1.example", ca.IssueOptions{Addr: ln.Addr().String()})
	trail, _ := audit.Open(filepath.Join(dir, "audit.log"), audit.Config{})
	defer trail.Close()

	srv := &minion.Server{Identity: id, Audit: trail}
	if err := srv.Register("test", &test.Module{}); err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()

	admin, _ := authority.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	o := overlord.New(overlord.WithIdentity(admin),
		overlord.WithMinions(overlord.Static{{Name: "web1.example", Addr: ln.Addr().String()}}))
	res, _ := o.Targets("web1*").Call(context.Background(), "test", "add", 40, 2)
	fmt.Println(res["web1.example"].Value)
	o.Close()

	srv.Shutdown(context.Background())
	fmt.Println(<-done)
	sum, err := audit.Verify(filepath.Join(dir, "audit.log"))
	fmt.Println(sum.Records >= 2, err)
	// Output:
	// 42
	// http: Server closed
	// true <nil>
}
