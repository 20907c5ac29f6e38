package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/overlord"
)

// A minion behind the broker reports through it: funcd --listen none
// --broker pushes each new journal event on its own event subject,
// where a monitor subscribed to gf.v1.evt.> receives it verbatim (its
// chain checks, the minion named by the subject), and func --broker
// SPEC events reads the same journal by pull. Real funcbroker, funcd and
// func processes.
func TestMinionEventsOverTheBroker(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const ip = "127.0.0.43"
	bdir := filepath.Join(t.TempDir(), "broker")
	if err := c.issue(t, gofunc.RoleBroker, "broker.test", ip).Save(bdir); err != nil {
		t.Fatal(err)
	}
	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	daemon(t, "funcbroker", "--dir", bdir, "--listen", listen)

	mon := natsDial(t, url, c.issue(t, gofunc.RoleMonitor, "prom"))
	got := make(chan *nats.Msg, 64)
	sub, err := mon.ChanSubscribe(broker.EventPrefix+">", got)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}

	watched := filepath.Join(t.TempDir(), "motd")
	if err := os.WriteFile(watched, []byte("one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(t.TempDir(), "minion")
	if err := c.issue(t, gofunc.RoleMinion, "ev1.test").Save(mdir); err != nil {
		t.Fatal(err)
	}
	toml := fmt.Sprintf("[[watch]]\ntype = \"file\"\nname = \"motd\"\npath = %q\nevery = \"1s\"\n", watched)
	if err := os.WriteFile(filepath.Join(mdir, "gofunc.toml"), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)

	// receive waits for the next message whose event is of type typ
	// and source src (the door connects in the background: lifecycle
	// and the first file state may come before or after it is up).
	var cur events.Cursor
	receive := func(typ, src string) events.Event {
		t.Helper()
		deadline := time.After(hangTimeout)
		for {
			select {
			case msg := <-got:
				name, err := door.EventOrigin(msg.Subject)
				if err != nil || name != "ev1.test" {
					t.Fatalf("subject %s: %q %v", msg.Subject, name, err)
				}
				evs, err := events.Receive(name, []string{string(msg.Data)})
				if err != nil {
					t.Fatalf("%s: %q: %v", msg.Subject, msg.Data, err)
				}
				next, deliver, notices := cur.Next(evs[0])
				if !deliver || (cur.Seq != 0 && len(notices) > 0) {
					t.Errorf("%s #%d: delivered %v, notices %v", evs[0].Type, evs[0].Seq, deliver, notices)
				}
				cur = next
				if evs[0].Type == typ && evs[0].Source == src {
					return evs[0]
				}
			case <-deadline:
				t.Fatalf("no %s %s event through the broker", typ, src)
			}
		}
	}
	// Wait for the minion to be reachable through the broker, then change
	// the file: its event is pushed.
	odir := filepath.Join(t.TempDir(), "overlord")
	if err := c.issue(t, gofunc.RoleOverlord, "admin").Save(odir); err != nil {
		t.Fatal(err)
	}
	if err := writeMinions(filepath.Join(odir, overlord.CacheFile), []overlord.Minion{{Name: "ev1.test"}}); err != nil {
		t.Fatal(err)
	}
	fn := func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, "func", append([]string{"--dir", odir, "--broker", url}, args...)...)
	}
	eventually(t, hangTimeout, "a call through the broker", func() error {
		if out, errOut, code := fn("ev1.test", "ping"); code != 0 {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	if err := os.WriteFile(watched, []byte("two, longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pushed := receive(events.TypeFileChanged, "motd")

	// The same event by pull, through the broker too.
	out, errOut, code := fn("ev1.test", "events", "--type", "file.*")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("ev1.test #%d ", pushed.Seq)) {
		t.Errorf("func --broker events: exit %d\n%s%s", code, out, errOut)
	}
}
