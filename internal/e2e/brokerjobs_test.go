package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// A job for a minion that is not running: func --broker --async stores
// it in a real funcbroker --jetstream; funcd --listen none --broker,
// started afterwards, runs it once; another overlord collects the
// signed result with func --broker jobs status|wait. Real processes.
func TestBrokerJobForOfflineMinion(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const ip = "127.0.0.57"
	bdir := filepath.Join(t.TempDir(), "broker")
	if err := c.issue(t, gofunc.RoleBroker, "broker.test", ip).Save(bdir); err != nil {
		t.Fatal(err)
	}
	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	daemon(t, "funcbroker", "--dir", bdir, "--listen", listen, "--jetstream")

	overlordDir := func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := c.issue(t, gofunc.RoleOverlord, name).Save(dir); err != nil {
			t.Fatal(err)
		}
		if err := writeMinions(filepath.Join(dir, overlord.CacheFile), []overlord.Minion{{Name: "jobs1.test"}}); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	admin, ops := overlordDir("admin"), overlordDir("ops")
	fn := func(dir string, args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, "func", append([]string{"--dir", dir, "--broker", url}, args...)...)
	}
	var out, errOut string
	var code int
	// The broker takes a moment to listen: submit until it does.
	eventually(t, hangTimeout, "the job submitted", func() error {
		if out, errOut, code = fn(admin, "--async", "--start-by", "2h", "jobs1.test", "call", "test", "add", "2", "3"); code != 0 {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	id := strings.TrimSpace(out)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("job id %q", out)
	}
	if out, errOut, code = fn(admin, "--async", "--start-by", "200h", "jobs1.test", "ping"); code == 0 || !strings.Contains(errOut, "start-by") {
		t.Errorf("--start-by 200h: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = fn(ops, "jobs", "status", id); code == 0 || !strings.Contains(out, "jobs1.test: pending") {
		t.Errorf("status before the minion ran it: exit %d\n%s%s", code, out, errOut)
	}

	mdir := filepath.Join(t.TempDir(), "minion")
	if err := c.issue(t, gofunc.RoleMinion, "jobs1.test").Save(mdir); err != nil {
		t.Fatal(err)
	}
	daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)
	out, errOut, code = fn(ops, "--json", "jobs", "wait", id)
	var got struct {
		Caller  string `json:"caller"`
		Pending int    `json:"pending"`
		Results []struct {
			Minion string `json:"minion"`
			State  string `json:"state"`
			Value  any    `json:"value"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("jobs wait: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if got.Caller != "admin" || got.Pending != 0 || len(got.Results) != 1 || got.Results[0].State != "ok" || got.Results[0].Value != float64(5) {
		t.Errorf("jobs wait: %+v", got)
	}
	log, err := os.ReadFile(filepath.Join(mdir, "audit.log"))
	if err != nil || strings.Count(string(log), `"job":"`+id+`"`) == 0 {
		t.Errorf("minion audit log names no job %s: %v\n%s", id, err, log)
	}
	if out, errOut, code = fn(ops, "jobs", "status", id); code != 0 || !strings.Contains(out, "5") {
		t.Errorf("status: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = fn(ops, "jobs", "list"); code != 0 || !strings.Contains(out, id+"\tdone\ttest.add\t1/1 answered, 0 failed") ||
		!strings.Contains(out, "(broker, by admin, start by ") {
		t.Errorf("jobs list: exit %d\n%s%s", code, out, errOut)
	}
	// func remembers the broker (DIR/broker.json): without the flag the
	// job is found; with --broker none it is a broker's job and no broker.
	if out, errOut, code = runCmd(t, "func", "--dir", ops, "jobs", "status", id); code != 0 || !strings.Contains(out, "5") {
		t.Errorf("status with the remembered broker: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code = runCmd(t, "func", "--dir", ops, "--broker", "none", "jobs", "status", id); code == 0 || !strings.Contains(errOut, "--broker") {
		t.Errorf("a broker job with --broker none: exit %d\n%s%s", code, out, errOut)
	}
}
