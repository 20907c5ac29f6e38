package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/funcd, cmd/func, cmd/certmaster, cmd/funcweb and cmd/funcbroker once per test
// run into a temporary directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gofunc-e2e-bin-")
		if buildErr != nil {
			return
		}
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", binDir, "./cmd/funcd", "./cmd/func", "./cmd/certmaster", "./cmd/funcweb", "./cmd/funcbroker")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// The deadlines below guard against hangs, not slowness: CI runs on a
// loaded 2-core machine, where a daemon under -race may take tens of
// seconds to start or to stop.
const (
	// hangTimeout bounds one command, a daemon's start, or a wait for
	// something that should happen soon.
	hangTimeout = 2 * time.Minute
	// stopTimeout is how long a daemon gets to stop on SIGTERM before
	// it is killed.
	stopTimeout = 30 * time.Second
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// fleet is a CA with an overlord identity, on disk.
type fleet struct {
	dir       string
	authority *ca.Authority
	overlord  string // identity dir
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	dir := t.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := a.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	odir := filepath.Join(dir, "overlord")
	if err := admin.Save(odir); err != nil {
		t.Fatal(err)
	}
	return &fleet{dir: dir, authority: a, overlord: odir}
}

// funcd starts a real funcd with an identity issued for name, listening
// on ip, and returns its address. It is stopped with SIGTERM at cleanup.
func (f *fleet) funcd(t *testing.T, name, ip string, extra ...string) (addr string, proc *exec.Cmd) {
	t.Helper()
	port := freePort(t, ip)
	addr = net.JoinHostPort(ip, port)
	id, err := f.authority.Issue(gofunc.RoleMinion, name, ca.IssueOptions{IPs: []net.IP{net.ParseIP(ip)}, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	mdir := filepath.Join(f.dir, name)
	if err := id.Save(mdir); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--dir", mdir, "--listen", addr, "--name", name}, extra...)
	cmd := exec.Command(filepath.Join(binaries(t), "funcd"), args...)
	cmd.Dir = mdir // a minion of its own: relative paths in commands differ per minion
	logf, err := os.Create(filepath.Join(f.dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("funcd %s log:\n%s", name, b)
		}
	})
	waitListening(t, addr)
	return addr, cmd
}

func freePort(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangTimeout)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nothing listens on %s: %v", addr, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// python runs a Python 3 script with args, skipping the test loudly when
// python3 is missing.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("SKIP: python3 is not installed (.ci/run installs it where it can); interop with xmlrpc.client not checked")
	}
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// writeMinions writes an overlord's cached minion list (DIR/minions.json)
// as `func list_minions --refresh` leaves it.
func writeMinions(path string, ms []overlord.Minion) error {
	b, err := json.Marshal(ms)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}
