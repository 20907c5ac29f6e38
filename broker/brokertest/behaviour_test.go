package brokertest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// big answers with n bytes: larger than the broker's 1 MiB max payload,
// the answer travels in frames.
type big struct{}

func (big) Blob(n int) string { return strings.Repeat("x", n) }

func withBig(_ string, srv *minion.Server) error { return srv.Register("big", big{}) }

// The same table of overlord behaviour over both transports: results,
// faults, denials, Stream, Batch, a timeout, an answer larger than one
// broker message.
func TestSameBehaviourOverBothTransports(t *testing.T) {
	t.Parallel()
	f := brokertest.Start(t, fleettest.Config{Minions: 3, Modules: withBig, Subnet: "127.0.2"})
	for name, c := range map[string]*overlord.Client{
		"direct": f.Fleet.Client(overlord.WithHostTimeout(3 * time.Second)),
		"broker": f.Client(overlord.WithHostTimeout(3 * time.Second)),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			res, err := c.Targets("*").Call(ctx, "test", "add", 2, 3)
			if err != nil || len(res) != 3 {
				t.Fatalf("add: %v, %d results", err, len(res))
			}
			for host, r := range res {
				if r.Value != int64(5) || r.CallID == "" || r.AuditHead.Seq == 0 {
					t.Errorf("add on %s: %+v", host, r)
				}
			}
			var fault *gofunc.Fault
			if _, err := c.Targets("m1.test").Call(ctx, "test", "explode"); !errors.As(err, &fault) {
				t.Errorf("explode: %v, want a fault", err)
			}
			if _, err := c.Targets("m1.test").Call(ctx, "command", "shell", "id"); !errors.Is(err, gofunc.ErrDenied) {
				t.Errorf("command.shell: %v, want denied", err)
			}
			if _, err := c.Targets("m1.test").Call(ctx, "test", "nosuch"); !errors.Is(err, gofunc.ErrNoSuchMethod) {
				t.Errorf("test.nosuch: %v, want no such method", err)
			}
			n := 0
			for r, err := range c.Targets("*").Stream(ctx, "test", "ping") {
				if err != nil || r.Err != nil {
					t.Errorf("stream: %v %v", err, r.Err)
				}
				n++
			}
			if n != 3 {
				t.Errorf("stream: %d results", n)
			}
			if res, err := c.Targets("*").Batch(overlord.Batch{Size: 1}).Call(ctx, "test", "ping"); err != nil || len(res) != 3 {
				t.Errorf("batch: %v, %d results", err, len(res))
			}
			res, err = c.Targets("m2.test").Call(ctx, "big", "blob", 3<<20)
			if err != nil || len(res["m2.test"].Value.(string)) != 3<<20 {
				t.Errorf("3 MiB answer: %v", err)
			}
			if _, err := c.Targets("m3.test").Call(ctx, "test", "sleep", 30); !errors.Is(err, overlord.ErrTimeout) {
				t.Errorf("sleep past the host timeout: %v, want timeout", err)
			}
		})
	}
}

// Targets the broker cannot deliver to end at once or after the ack
// timeout as unreachable: no minion connected on the subject, or one
// that never acknowledges.
func TestUnreachableOverBroker(t *testing.T) {
	t.Parallel()
	f := brokertest.Start(t, fleettest.Config{Subnet: "127.0.3"})
	mute, err := f.CA.Issue(gofunc.RoleMinion, "mute.test", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tc := mute.ClientTLSConfig("")
	nc, err := nats.Connect(f.URL, nats.Secure(tc))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subject, _ := broker.CallSubject("mute.test")
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tr, err := f.Transport(f.Admin(), caller.Options{AckTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := overlord.New(overlord.WithIdentity(f.Admin()), overlord.WithTransport(tr), overlord.WithHostTimeout(30*time.Second),
		overlord.WithMinions(overlord.Static{{Name: "m1.test"}, {Name: "ghost.test"}, {Name: "mute.test"}}))
	defer c.Close()
	start := time.Now()
	res, _ := c.Targets("*").Call(t.Context(), "test", "ping")
	if r := res["m1.test"]; r.Err != nil {
		t.Errorf("m1: %v", r.Err)
	}
	for host, want := range map[string]error{"ghost.test": caller.ErrNoResponders, "mute.test": caller.ErrNoAck} {
		if r := res[host]; !errors.Is(r.Err, overlord.ErrUnreachable) || !errors.Is(r.Err, want) {
			t.Errorf("%s: %v, want unreachable (%v)", host, r.Err, want)
		}
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("took %v: the ack timeout did not end the wait", took)
	}
}

// The broker killed mid-call: the call ends by its deadline with a typed
// error, nothing hangs; a broker started again on the same address has
// every minion back without anyone touching them.
func TestBrokerKilledMidCallAndRestarted(t *testing.T) {
	t.Parallel()
	f := brokertest.Start(t, fleettest.Config{Minions: 2, Subnet: "127.0.4"})
	c := f.Client(overlord.WithHostTimeout(5 * time.Second))
	m1 := f.Minions()[0]
	done := make(chan error, 1)
	go func() {
		_, err := c.Targets(m1.Name).Call(context.Background(), "test", "sleep", 30)
		done <- err
	}()
	// Kill the broker once the minion runs the call.
	deadline := time.Now().Add(time.Minute)
	for len(records(t, m1.AuditPath, audit.Filter{Kind: audit.KindCallStart, Method: "test.sleep"})) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never started")
		}
		time.Sleep(20 * time.Millisecond) // polling a file another goroutine writes
	}
	f.StopBroker()
	select {
	case err := <-done:
		// Timeout: the call was acknowledged and no answer came by its
		// deadline. The minion sends its ack before it writes call.start,
		// but on a loaded machine the ack may still be in the minion's or
		// the broker's buffers when the broker dies: then the caller never
		// learnt the call arrived, and unreachable (no ack) is as true.
		if !errors.Is(err, overlord.ErrTimeout) && !(errors.Is(err, overlord.ErrUnreachable) && errors.Is(err, caller.ErrNoAck)) {
			t.Errorf("call in flight when the broker died: %v, want timeout (or unreachable: no ack)", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the call in flight hangs")
	}
	if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); !errors.Is(err, overlord.ErrUnreachable) && !errors.Is(err, overlord.ErrTimeout) {
		t.Errorf("call with no broker: %v", err)
	}
	if err := f.RestartBroker(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(2 * time.Minute)
	for {
		_, err := c.Targets("*").Call(t.Context(), "test", "ping")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("minions not back after the broker restarted: %v", err)
		}
	}
}

func records(t *testing.T, path string, f audit.Filter) []audit.Record {
	t.Helper()
	recs, err := brokertest.AuditRecords(path, f)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// A minion revoked after its answers were verified (and remembered) is
// refused once the overlord holds the new CRL.
func TestRevokedMinionAfterCachedAnswers(t *testing.T) {
	t.Parallel()
	f := brokertest.Start(t, fleettest.Config{Minions: 2, Subnet: "127.0.5"})
	admin, err := f.CA.Issue(gofunc.RoleOverlord, "admin2", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.ClientAs(admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.CA.Revoke("m1.test", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	res, _ := c.Targets("*").Call(t.Context(), "test", "ping")
	if r := res["m1.test"]; !errors.Is(r.Err, overlord.ErrUntrusted) {
		t.Errorf("revoked m1: %v, want untrusted", r.Err)
	}
	if r := res["m2.test"]; r.Err != nil {
		t.Errorf("m2: %v", r.Err)
	}
}
