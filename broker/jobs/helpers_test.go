package jobs_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/broker/internal/jsget"
	"github.com/gofunc/gofunc/broker/internal/natsconn"
	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a fleet whose minions take jobs from a real gofunc broker
// with JetStream (brokerd, mutual TLS, per-name permissions) on
// loopback; the minions connect when the test says.
type env struct {
	t        *testing.T
	f        *fleettest.Fleet
	b        *brokerd.Broker
	brokerID *identity.Identity
	store    string // JetStream's directory, kept across restarts
	listen   string // the broker's address, kept across restarts
	url      string
}

func newEnv(t *testing.T, cfg fleettest.Config) *env {
	t.Helper()
	f := fleettest.Start(t, cfg)
	// The minions serve once they answer on their HTTPS door.
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	id, err := f.CA.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: ipLoopback})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, f: f, brokerID: id, store: t.TempDir(), listen: "127.0.0.1:0"}
	e.startBroker()
	t.Cleanup(e.stopBroker)
	return e
}

var ipLoopback = []net.IP{net.IPv4(127, 0, 0, 1)}

// startBroker starts the broker on the address it had (a free port the
// first time) with the same JetStream directory.
func (e *env) startBroker() {
	e.t.Helper()
	e.startBrokerWith(true)
}

func (e *env) startBrokerWith(jetStream bool) {
	e.t.Helper()
	b, err := brokerd.New(brokerd.Config{Identity: e.brokerID, Listen: e.listen, JetStream: jetStream, StoreDir: e.store})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.b, e.url = b, b.ClientURL()
	_, e.listen, _ = strings.Cut(e.url, "://")
}

func (e *env) stopBroker() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.b.Shutdown(ctx)
}

// jobMinion is one minion's door and jobs.
type jobMinion struct {
	d    *door.Door
	j    *door.Jobs
	dir  string
	done bool
}

func (m *jobMinion) close() {
	if !m.done {
		m.done = true
		_ = m.j.Close()
		_ = m.d.Close()
	}
}

// connect opens a minion's broker door and its jobs, keeping the jobs'
// state in dir; they close when the test ends (or by close).
func (e *env) connect(fm *fleettest.Minion, dir string) *jobMinion {
	e.t.Helper()
	return e.connectAt(fm, dir, nil)
}

// connectAt is connect with the minion's clock (nil: time.Now).
func (e *env) connectAt(fm *fleettest.Minion, dir string, now func() time.Time) *jobMinion {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := door.Dial(ctx, []string{e.url}, door.Config{Server: fm.Server, AuditPath: fm.AuditPath, Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	j, err := d.OpenJobs(door.JobsConfig{Dir: dir})
	if err != nil {
		d.Close()
		e.t.Fatal(err)
	}
	m := &jobMinion{d: d, j: j, dir: dir}
	e.t.Cleanup(m.close)
	return m
}

// overlord issues an overlord identity.
func (e *env) overlord(name string) *identity.Identity {
	e.t.Helper()
	id, err := e.f.CA.Issue(gofunc.RoleOverlord, name, ca.IssueOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// client is a job client of id.
func (e *env) client(id *identity.Identity) *jobs.Client {
	e.t.Helper()
	c, err := jobs.Dial(e.t.Context(), []string{e.url}, id, jobs.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// wait waits for the job to have no target pending.
func wait(t *testing.T, c *jobs.Client, id string) []jobs.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	_, res, err := c.Wait(ctx, id, 50*time.Millisecond)
	if err != nil {
		t.Fatalf("job %s: %v (%+v)", id, err, res)
	}
	return res
}

// eventually polls cond until it holds, failing after a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// jobRecords are the audit records of fm's log about job.
func jobRecords(t *testing.T, fm *fleettest.Minion, kind, job string) []audit.Record {
	t.Helper()
	recs, err := brokertest.AuditRecords(fm.AuditPath, audit.Filter{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Details[door.JobDetail] == job {
			out = append(out, r)
		}
	}
	return out
}

// jobStarts counts the jobs that started on fm.
func jobStarts(t *testing.T, fm *fleettest.Minion) int {
	t.Helper()
	recs, err := brokertest.AuditRecords(fm.AuditPath, audit.Filter{Kind: "call.start"})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range recs {
		if r.Details[door.JobDetail] != "" {
			n++
		}
	}
	return n
}

// spooled lists the results waiting in a minion's spool.
func spooled(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "results", "*.result"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// minionConn is a broker connection with fm's certificate and inbox (as
// a compromised minion, or a broker, could publish with); closed when
// the test ends.
func (e *env) minionConn(fm *fleettest.Minion) *nats.Conn {
	e.t.Helper()
	inbox, _ := broker.MinionInbox(fm.Name)
	return e.conn(fm.Identity, inbox)
}

// overlordConn is a broker connection with id's certificate (an
// overlord's); closed when the test ends.
func (e *env) overlordConn(id *identity.Identity) *nats.Conn {
	e.t.Helper()
	return e.conn(id, broker.ReplyInbox(id.Leaf())+".in")
}

func (e *env) conn(id *identity.Identity, inbox string) *nats.Conn {
	e.t.Helper()
	nc, err := natsconn.Connect(e.t.Context(), []string{e.url}, id, natsconn.Options{InboxPrefix: inbox})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(nc.Close)
	return nc
}

// firstJob reads, over nc (fm's connection), the first job envelope
// stored for fm.
func (e *env) firstJob(nc *nats.Conn, fm *fleettest.Minion) *broker.SignedCall {
	e.t.Helper()
	jobSubject, _ := broker.JobSubject(fm.Name)
	env, err := jsget.Next(e.t.Context(), nc, broker.JobStream, jobSubject, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	sc, err := broker.ParseCall(broker.Header(env.Header), env.Data)
	if err != nil {
		e.t.Fatal(err)
	}
	return sc
}
