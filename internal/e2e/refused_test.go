package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

// A broker that refuses a certificate is explained, not retried in
// silence: funcd logs why once and keeps trying (spaced out), and
// func --broker stops at once with the reason, exit 1 and a
// "broker_refused" error in --json, instead of every host unreachable.
// Real funcbroker, funcd and func processes.
func TestBrokerRefusalsAreExplained(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const ip = "127.0.0.47"
	minionID := c.issue(t, gofunc.RoleMinion, "revoked.test")
	overlordID := c.issue(t, gofunc.RoleOverlord, "mallory")
	for _, name := range []string{"revoked.test", "mallory"} {
		if _, err := c.Revoke(name, ca.ReasonKeyCompromise); err != nil {
			t.Fatal(err)
		}
	}
	crl, err := c.CRL()
	if err != nil {
		t.Fatal(err)
	}
	brokerID := c.issue(t, gofunc.RoleBroker, "broker.test", ip)
	if err := brokerID.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(t.TempDir(), "broker")
	if err := brokerID.Save(bdir); err != nil {
		t.Fatal(err)
	}
	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	brokerProc := daemon(t, "funcbroker", "--dir", bdir, "--listen", listen)

	mdir := filepath.Join(t.TempDir(), "minion")
	if err := minionID.Save(mdir); err != nil {
		t.Fatal(err)
	}
	minionProc := daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)
	// Three refusals at the broker, and funcd has said why once.
	eventually(t, hangTimeout, "three refused attempts", func() error {
		if n := strings.Count(brokerProc.output(), "revoked.test serial"); n < 3 {
			return fmt.Errorf("%d refusals in the broker's log", n)
		}
		return nil
	})
	log := minionProc.output()
	if n := strings.Count(log, "broker connection refused"); n != 1 || !strings.Contains(log, "the broker refused") {
		t.Errorf("funcd logged the refusal %d times, want once with the reason:\n%s", n, log)
	}
	select {
	case <-minionProc.done:
		t.Errorf("funcd exited after the refusals:\n%s", log)
	default:
	}

	odir := filepath.Join(t.TempDir(), "overlord")
	if err := overlordID.Save(odir); err != nil {
		t.Fatal(err)
	}
	if err := writeMinions(filepath.Join(odir, overlord.CacheFile), []overlord.Minion{{Name: "revoked.test"}, {Name: "other.test"}}); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCmd(t, "func", "--dir", odir, "--broker", url, "*", "ping")
	if code != 1 || !strings.Contains(errOut, "refused") || strings.Contains(out+errOut, "unreachable") {
		t.Errorf("func --broker with a revoked certificate: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = runCmd(t, "func", "--dir", odir, "--broker", url, "--json", "*", "ping")
	var rep struct {
		Error struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
			Exit    int    `json:"exit"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 1 || rep.Error.Kind != "broker_refused" || rep.Error.Exit != 1 ||
		!strings.Contains(rep.Error.Message, "refused") {
		t.Errorf("func --broker --json with a revoked certificate: exit %d, %v\n%s%s", code, err, out, errOut)
	}
}
