package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
)

// unitFile reads contrib/systemd/NAME.
func unitFile(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "contrib", "systemd", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// execStart is a unit's ExecStart command line, split into words.
func execStart(t *testing.T, unit string) []string {
	t.Helper()
	for _, l := range strings.Split(unit, "\n") {
		if cmd, ok := strings.CutPrefix(l, "ExecStart="); ok {
			return strings.Fields(cmd)
		}
	}
	t.Fatal("no ExecStart")
	return nil
}

// TestSystemdUnits: the daemons' units are valid (systemd-analyze
// verify), and their ExecStart lines, run as written (with the binaries
// and directories moved into the test's), start the daemons with the
// rest of their configuration taken from the system-wide files the
// units document (/etc/gofunc/certmaster.toml, /etc/gofunc/funcd.toml,
// /etc/gofunc/funcbroker.toml).
func TestSystemdUnits(t *testing.T) {
	bin := binaries(t)
	sysconf := t.TempDir()
	dir := t.TempDir()
	caDir := filepath.Join(dir, "gofunc-ca")
	minionDir := filepath.Join(dir, "gofunc")
	for _, unit := range []string{"certmaster.service", "funcd.service", "funcbroker.service"} {
		text := unitFile(t, unit)
		words := execStart(t, text)
		local := strings.Replace(text, "ExecStart="+words[0], "ExecStart="+filepath.Join(bin, filepath.Base(words[0])), 1)
		analyze, err := exec.LookPath("systemd-analyze")
		if err != nil {
			if os.Getenv("CI") != "" {
				t.Fatal("systemd-analyze is not installed")
			}
			t.Log("SKIPPED systemd-analyze verify: not installed")
			continue
		}
		f := filepath.Join(t.TempDir(), unit)
		if err := os.WriteFile(f, []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(analyze, "verify", f).CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}

	// The certmaster: its CA initialized as the unit's comments say,
	// its listen address only in /etc/gofunc/certmaster.toml.
	if _, e, code := runCmd(t, "certmaster", "init", "--dir", caDir); code != 0 {
		t.Fatalf("certmaster init: %s", e)
	}
	cmAddr := net.JoinHostPort("127.0.0.88", freePort(t, "127.0.0.88"))
	writeFile(t, filepath.Join(sysconf, "certmaster.toml"), fmt.Sprintf("dir = %q\n[serve]\nlisten = %q\n", caDir, cmAddr))
	words := execStart(t, unitFile(t, "certmaster.service"))
	startUnit(t, sysconf, words, "/var/lib/gofunc-ca", caDir)
	waitListening(t, cmAddr)
	// Admin commands find the CA directory in the same file.
	if out, e, code := runCmdEnv(t, []string{"GOFUNC_SYSCONFDIR=" + sysconf}, "certmaster", "list-signed"); code != 0 {
		t.Errorf("certmaster list-signed with dir from %s: exit %d\n%s%s", sysconf, code, out, e)
	}

	// funcd: an identity in its directory, the address in
	// /etc/gofunc/funcd.toml.
	a, err := ca.Open(ca.Config{Dir: caDir})
	if err != nil {
		t.Fatal(err)
	}
	mAddr := net.JoinHostPort("127.0.0.89", freePort(t, "127.0.0.89"))
	id, err := a.Issue(gofunc.RoleMinion, "unit.test", ca.IssueOptions{IPs: []net.IP{net.ParseIP("127.0.0.89")}, Addr: mAddr})
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Save(minionDir); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(sysconf, "funcd.toml"), fmt.Sprintf("listen = %q\nname = \"unit.test\"\ncertmaster = %q\n", mAddr, cmAddr))
	startUnit(t, sysconf, execStart(t, unitFile(t, "funcd.service")), "/var/lib/gofunc", minionDir)
	waitListening(t, mAddr)

	// funcbroker: a broker identity in its directory, the address and
	// the certmaster in /etc/gofunc/funcbroker.toml.
	brokerDir := filepath.Join(dir, "funcbroker")
	bid, err := a.Issue(gofunc.RoleBroker, "broker.test", ca.IssueOptions{IPs: []net.IP{net.ParseIP("127.0.0.87")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := bid.Save(brokerDir); err != nil {
		t.Fatal(err)
	}
	bAddr := net.JoinHostPort("127.0.0.87", freePort(t, "127.0.0.87"))
	writeFile(t, filepath.Join(sysconf, "funcbroker.toml"), fmt.Sprintf("listen = %q\ncertmaster = %q\n", bAddr, cmAddr))
	startUnit(t, sysconf, execStart(t, unitFile(t, "funcbroker.service")), "/var/lib/funcbroker", brokerDir)
	waitListening(t, bAddr)
}

// startUnit runs a unit's ExecStart words with the binary from the test
// build and from its directory moved to to; GOFUNC_SYSCONFDIR stands for
// /etc/gofunc.
func startUnit(t *testing.T, sysconf string, words []string, from, to string) {
	t.Helper()
	args := make([]string, 0, len(words)-1)
	for _, w := range words[1:] {
		args = append(args, strings.ReplaceAll(w, from, to))
	}
	daemonEnv(t, []string{"GOFUNC_SYSCONFDIR=" + sysconf}, filepath.Base(words[0]), args...)
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
