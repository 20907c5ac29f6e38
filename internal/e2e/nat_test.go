package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// listeningSockets returns how many TCP sockets in LISTEN state process
// pid holds, from /proc: its socket inodes against /proc/net/tcp{,6}.
func listeningSockets(t *testing.T, pid int) int {
	t.Helper()
	listen := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" { // TCP_LISTEN
				listen[fs[9]] = true
			}
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && listen[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			n++
		}
	}
	return n
}

// A minion behind NAT: funcd --listen none --broker opens no port at all
// and is fully usable with func --broker (calls, --json, exit codes);
// when the broker restarts, the minion is back without anyone touching
// it. Real funcbroker, funcd and func processes.
func TestMinionBehindNAT(t *testing.T) {
	t.Parallel()
	c := newBrokerCA(t)
	const ip = "127.0.0.42"
	bdir := filepath.Join(t.TempDir(), "broker")
	if err := c.issue(t, gofunc.RoleBroker, "broker.test", ip).Save(bdir); err != nil {
		t.Fatal(err)
	}
	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	brokerProc := daemon(t, "funcbroker", "--dir", bdir, "--listen", listen)

	mdir := filepath.Join(t.TempDir(), "minion")
	if err := c.issue(t, gofunc.RoleMinion, "nat1.test").Save(mdir); err != nil {
		t.Fatal(err)
	}
	minionProc := daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)

	odir := filepath.Join(t.TempDir(), "overlord")
	if err := c.issue(t, gofunc.RoleOverlord, "admin").Save(odir); err != nil {
		t.Fatal(err)
	}
	if err := writeMinions(filepath.Join(odir, overlord.CacheFile), []overlord.Minion{{Name: "nat1.test"}, {Name: "gone.test"}}); err != nil {
		t.Fatal(err)
	}
	fn := func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, "func", append([]string{"--dir", odir, "--broker", url}, args...)...)
	}
	// The minion connects in the background: wait for its first answer.
	eventually(t, hangTimeout, "a call through the broker", func() error {
		if out, errOut, code := fn("nat1.test", "call", "test", "add", "2", "3"); code != 0 || !strings.Contains(out, "5") {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	if n := listeningSockets(t, minionProc.cmd.Process.Pid); n != 0 {
		t.Errorf("funcd --listen none holds %d listening sockets", n)
	}
	out, errOut, code := fn("--json", "*", "ping")
	if code == 0 || !strings.Contains(out, `"nat1.test"`) || !strings.Contains(out, "gone.test") {
		t.Errorf("ping * with one minion gone: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := fn("gone.test", "ping"); code == 0 || !strings.Contains(out+errOut, "unreachable") {
		t.Errorf("a minion not connected: exit %d\n%s%s", code, out, errOut)
	}
	// A broker without JetStream keeps no jobs: --async falls back to
	// DIR/jobs.db (an id with a dash), and says so.
	if out, errOut, code := fn("--async", "--async-runner", "none", "nat1.test", "ping"); code != 0 || !strings.Contains(out, "-") ||
		!strings.Contains(errOut, "keeps no jobs") {
		t.Errorf("--async through a broker without JetStream: exit %d\n%s%s", code, out, errOut)
	}
	// The minion's audit log names the transport.
	audit, err := os.ReadFile(filepath.Join(mdir, "audit.log"))
	if err != nil || !strings.Contains(string(audit), `"via":"nats"`) {
		t.Errorf("minion audit log: %v\n%s", err, audit)
	}

	// The broker restarts on the same address; the minion comes back
	// by itself.
	brokerProc.stop()
	daemon(t, "funcbroker", "--dir", bdir, "--listen", listen)
	eventually(t, hangTimeout, "a call after the broker restarted", func() error {
		if out, errOut, code := fn("nat1.test", "ping"); code != 0 {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	if out, errOut, code := runCmd(t, "funcd", "--dir", mdir, "--listen", "none"); code == 0 || !strings.Contains(out+errOut, "--broker") {
		t.Errorf("--listen none without --broker: exit %d\n%s%s", code, out, errOut)
	}
}
