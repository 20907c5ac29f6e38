package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// func --broker URL discover lists exactly the minions connected to
// the broker, "discovered N" on stderr, exit 0 (a minion that is down
// is not a failure). Real funcbroker, funcd and func processes.
func TestDiscoverCommand(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const ip = "127.0.0.48"
	bdir := filepath.Join(t.TempDir(), "broker")
	if err := c.issue(t, gofunc.RoleBroker, "broker.test", ip).Save(bdir); err != nil {
		t.Fatal(err)
	}
	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	daemon(t, "funcbroker", "--dir", bdir, "--listen", listen)
	for _, name := range []string{"d1.test", "d2.test"} {
		mdir := filepath.Join(t.TempDir(), name)
		if err := c.issue(t, gofunc.RoleMinion, name).Save(mdir); err != nil {
			t.Fatal(err)
		}
		daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)
	}
	c.issue(t, gofunc.RoleMinion, "down.test") // enrolled, never started
	odir := filepath.Join(t.TempDir(), "overlord")
	if err := c.issue(t, gofunc.RoleOverlord, "admin").Save(odir); err != nil {
		t.Fatal(err)
	}
	if err := writeMinions(filepath.Join(odir, overlord.CacheFile), []overlord.Minion{{Name: "d1.test"}, {Name: "d2.test"}, {Name: "down.test"}}); err != nil {
		t.Fatal(err)
	}
	// The minions connect in the background.
	var out, errOut string
	eventually(t, hangTimeout, "both minions discovered", func() error {
		var code int
		out, errOut, code = runCmd(t, "func", "--dir", odir, "--broker", url, "discover", "--window", "1s")
		if code != 0 || out != "d1.test\nd2.test\n" || !strings.Contains(errOut, "discovered 2") {
			return fmt.Errorf("exit %d\n%s%s", code, out, errOut)
		}
		return nil
	})
	out, errOut, code := runCmd(t, "func", "--dir", odir, "--broker", url, "--json", "discover", "--window", "1s")
	var found map[string]struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal([]byte(out), &found); err != nil || code != 0 || len(found) != 2 || !found["d1.test"].OK || !found["d2.test"].OK {
		t.Errorf("--json discover: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	// The broker is remembered; --broker none means no broker.
	if out, errOut, code := runCmd(t, "func", "--dir", odir, "discover", "--window", "1s"); code != 0 || out != "d1.test\nd2.test\n" {
		t.Errorf("discover with the remembered broker: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runCmd(t, "func", "--dir", odir, "--broker", "none", "discover"); code != 2 || !strings.Contains(errOut, "--broker") {
		t.Errorf("discover with --broker none: exit %d\n%s%s", code, out, errOut)
	}
}
