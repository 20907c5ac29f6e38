package jobs_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
)

// A job submitted while its minion is away runs when the minion
// connects; another overlord collects the signed result, and lists the
// jobs the broker keeps.
func ExampleClient_Submit() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, err := fleettest.New(fleettest.Config{Minions: 1})
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := f.Overlord().Targets("*").Call(ctx, "test", "ping"); err != nil { // serving
		panic(err)
	}
	// A broker keeping jobs (funcbroker --jetstream).
	brokerID, _ := f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	b, err := brokerd.New(brokerd.Config{Identity: brokerID, Listen: "127.0.0.1:0", JetStream: true, StoreDir: filepath.Join(f.Dir, "js")})
	if err != nil {
		panic(err)
	}
	if err := b.Start(ctx); err != nil {
		panic(err)
	}
	defer b.Shutdown(context.Background())
	urls := []string{b.ClientURL()}

	alice, _ := f.CA.Issue(gofunc.RoleOverlord, "alice", ca.IssueOptions{})
	submitter, err := jobs.Dial(ctx, urls, alice, jobs.Options{})
	if err != nil {
		panic(err)
	}
	defer submitter.Close()
	m := f.Minions()[0]
	job, err := submitter.Submit(ctx, jobs.Spec{Method: "test.add", Args: []any{40, 2}, Targets: []string{m.Name}})
	if err != nil {
		panic(err)
	}

	// The minion connects later (funcd --broker does this at start).
	d, err := door.Dial(ctx, urls, door.Config{Server: m.Server, AuditPath: m.AuditPath})
	if err != nil {
		panic(err)
	}
	defer d.Close()
	if _, err := d.OpenJobs(door.JobsConfig{Dir: filepath.Join(f.Dir, "broker-jobs")}); err != nil {
		panic(err)
	}

	bob, _ := f.CA.Issue(gofunc.RoleOverlord, "bob", ca.IssueOptions{})
	collector, err := jobs.Dial(ctx, urls, bob, jobs.Options{})
	if err != nil {
		panic(err)
	}
	defer collector.Close()
	rec, results, err := collector.Wait(ctx, job.ID, 100*time.Millisecond)
	if err != nil {
		panic(err)
	}
	for _, r := range results {
		fmt.Println(rec.Caller, rec.Method, r.Minion, r.State, r.Value)
	}
	// Any overlord lists the jobs the broker keeps.
	kept, err := collector.List(ctx, time.Time{})
	if err != nil {
		panic(err)
	}
	for _, j := range kept {
		fmt.Println(j.ID == job.ID, j.Caller, j.Method, j.Targets)
	}
	// Output:
	// alice test.add m1.test ok 42
	// true alice test.add [m1.test]
}
