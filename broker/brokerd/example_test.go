package brokerd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/ca"
)

// A broker with a certificate from the gofunc CA: a minion receives the
// calls for its name, and may not read another minion's.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "brokerd-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		panic(err)
	}
	brokerID, err := authority.Issue(gofunc.RoleBroker, "broker1", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		panic(err)
	}
	b, err := brokerd.New(brokerd.Config{Identity: brokerID, Listen: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	defer b.Shutdown(context.Background())

	minionID, _ := authority.Issue(gofunc.RoleMinion, "web1.example.org", ca.IssueOptions{})
	overlordID, _ := authority.Issue(gofunc.RoleOverlord, "alice", ca.IssueOptions{})
	violations := make(chan error, 1)
	minion, err := nats.Connect(b.ClientURL(), nats.Secure(minionID.ClientTLSConfig("")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		panic(err)
	}
	defer minion.Close()
	alice, err := nats.Connect(b.ClientURL(), nats.Secure(overlordID.ClientTLSConfig("")))
	if err != nil {
		panic(err)
	}
	defer alice.Close()

	own, _ := broker.CallSubject("web1.example.org")
	other, _ := broker.CallSubject("web2.example.org")
	calls, _ := minion.SubscribeSync(own)
	minion.SubscribeSync(other)
	minion.Flush()
	fmt.Println(<-violations)
	alice.Publish(own, []byte("a call"))
	m, err := calls.NextMsg(time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s: %s\n", m.Subject, m.Data)
	// Output:
	// nats: permissions violation: Permissions Violation for Subscription to "gf.v1.call.web2_example_org"
	// gf.v1.call.web1_example_org: a call
}
