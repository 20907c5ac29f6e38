package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

// A stock broker end to end: Debian's nats-server, configured by
// funcbroker --stock-config from the CA directory, carries a real func
// call to a real funcd --listen none and its answer back; a minion the
// file does not list (issued after it was written) cannot connect, so
// the call to it is unreachable.
func TestStockBrokerEndToEnd(t *testing.T) {
	t.Parallel()
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nats-server is not installed (.ci/run installs Debian's nats-server)")
		}
		t.Skip("SKIPPED: nats-server is not installed (apt-get install nats-server); the stock broker is untested")
	}
	root := t.TempDir()
	caDir := filepath.Join(root, "ca")
	a, err := ca.Init(ca.Config{Dir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	const ip = "127.0.0.46"
	save := func(role gofunc.Role, name, dir string, opts ca.IssueOptions) string {
		t.Helper()
		id, err := a.Issue(role, name, opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := id.Save(filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(root, dir)
	}
	bdir := save(gofunc.RoleBroker, "broker.test", "broker", ca.IssueOptions{IPs: []net.IP{net.ParseIP(ip)}})
	mdir := save(gofunc.RoleMinion, "stock1.test", "minion", ca.IssueOptions{})
	odir := save(gofunc.RoleOverlord, "admin", "overlord", ca.IssueOptions{})

	listen := ip + ":" + freePort(t, ip)
	url := "nats://" + listen
	conf := filepath.Join(root, "nats.conf")
	if out, errOut, code := runCmd(t, "funcbroker", "--dir", bdir, "--ca-dir", caDir, "--listen", listen, "--stock-config", conf); code != 0 {
		t.Fatalf("funcbroker --stock-config: exit %d\n%s%s", code, out, errOut)
	}
	// Issued after the file was written: the stock broker does not know it.
	late := save(gofunc.RoleMinion, "late.test", "late", ca.IssueOptions{})

	srv := exec.Command(natsBin, "-c", conf)
	log := &lockedWriter{buf: new(bytes.Buffer)}
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Wait(); close(done) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopTimeout):
			srv.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("nats-server log:\n%s", log.String())
		}
	})
	waitListening(t, listen)

	daemon(t, "funcd", "--dir", mdir, "--listen", "none", "--broker", url)
	daemon(t, "funcd", "--dir", late, "--listen", "none", "--broker", url)
	if err := writeMinions(filepath.Join(odir, overlord.CacheFile), []overlord.Minion{{Name: "stock1.test"}, {Name: "late.test"}}); err != nil {
		t.Fatal(err)
	}
	fn := func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, "func", append([]string{"--dir", odir, "--broker", url}, args...)...)
	}
	eventually(t, hangTimeout, "a call through the stock broker", func() error {
		if out, errOut, code := fn("stock1.test", "call", "test", "add", "2", "3"); code != 0 || !strings.Contains(out, "5") {
			return fmt.Errorf("exit %d: %s%s", code, out, errOut)
		}
		return nil
	})
	if out, errOut, code := fn("late.test", "ping"); code == 0 || !strings.Contains(out+errOut, "unreachable") {
		t.Errorf("a minion the stock config does not list: exit %d\n%s%s", code, out, errOut)
	}
	// The broker refused it (funcd retries quietly: see notes/brokerd.md).
	eventually(t, hangTimeout, "nats-server refusing the unlisted minion", func() error {
		if !strings.Contains(log.String(), "late.test\" - authentication error") {
			return fmt.Errorf("no refusal logged")
		}
		return nil
	})
}
