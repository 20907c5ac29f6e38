package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runCmd runs the command in-process.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("certmaster %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func initCA(t *testing.T) (dir, fingerprint string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "ca")
	fp := strings.TrimSpace(mustRun(t, "init", "--dir", dir, "--name", "test CA"))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(fp) {
		t.Fatalf("init printed %q, want a fingerprint", fp)
	}
	return dir, fp
}

func TestInitAndFingerprint(t *testing.T) {
	dir, fp := initCA(t)
	if got := strings.TrimSpace(mustRun(t, "fingerprint", "--dir", dir)); got != fp {
		t.Errorf("fingerprint = %q, init printed %q", got, fp)
	}
	var js map[string]string
	if err := json.Unmarshal([]byte(mustRun(t, "fingerprint", "--dir", dir, "--json")), &js); err != nil || js["fingerprint"] != fp {
		t.Errorf("--json: %v %v", js, err)
	}
	_, errOut, code := runCmd(t, "init", "--dir", dir)
	if code != exitFailure || !strings.Contains(errOut, "already exists") {
		t.Errorf("second init: exit %d, %q", code, errOut)
	}
	// The directory from the environment, JSON from gofunc.toml.
	t.Setenv("GOFUNC_DIR", dir)
	if err := os.WriteFile(filepath.Join(dir, "gofunc.toml"), []byte("json = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "fingerprint"); !strings.Contains(out, `"fingerprint": "`+fp) {
		t.Errorf("GOFUNC_DIR + gofunc.toml json=true: %q", out)
	}
}

func TestUsageErrors(t *testing.T) {
	dir, _ := initCA(t)
	tests := [][]string{
		{"fingerprint"}, // no --dir
		{"bogus", "--dir", dir},
		{"sign", "--dir", dir}, // no glob
		{"revoke", "--dir", dir, "m1", "--reason", "because"},
		{"issue-overlord", "--dir", dir, "alice"}, // no --out
		{"issue-overlord", "--dir", dir, "--out", t.TempDir(), "../alice"},
		{"token", "create", "--dir", dir, "--uses", "0"},
	}
	for _, args := range tests {
		if _, errOut, code := runCmd(t, args...); code != exitUsage {
			t.Errorf("certmaster %q: exit %d, want %d (%s)", args, code, exitUsage, errOut)
		}
	}
	if _, _, code := runCmd(t, "sign", "--dir", dir, "nobody"); code != exitFailure {
		t.Errorf("sign with no match: exit %d, want 1", code)
	}
	if _, _, code := runCmd(t, "list", "--dir", t.TempDir()); code != exitFailure {
		t.Errorf("list without a CA: exit %d, want 1", code)
	}
	if out, _, code := runCmd(t, "--help"); code != exitOK || !strings.Contains(out, "issue-overlord") {
		t.Errorf("--help: exit %d, %q", code, out)
	}
}

func TestOverlordTokensRevokeCRL(t *testing.T) {
	dir, fp := initCA(t)
	out := filepath.Join(t.TempDir(), "alice")
	mustRun(t, "issue-overlord", "--dir", dir, "--out", out, "alice")
	id, err := identity.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if id.Role() != gofunc.RoleOverlord || id.Name() != "alice" || id.CAFingerprint() != fp || id.CRLNumber() < 1 {
		t.Errorf("overlord identity %s/%s crl %d", id.Name(), id.Role(), id.CRLNumber())
	}
	if st, _ := os.Stat(filepath.Join(out, "key.pem")); st.Mode().Perm() != 0o600 {
		t.Errorf("key.pem mode %v", st.Mode().Perm())
	}

	tok := strings.TrimSpace(mustRun(t, "token", "create", "--dir", dir, "--uses", "2", "--ttl", "1h", "--name", "web*"))
	if !strings.HasPrefix(tok, "gft_") {
		t.Fatalf("token create printed %q", tok)
	}
	var toks []ca.TokenInfo
	listOut := mustRun(t, "token", "list", "--dir", dir, "--json")
	if err := json.Unmarshal([]byte(listOut), &toks); err != nil || len(toks) != 1 || toks[0].MaxUses != 2 || toks[0].NameGlob != "web*" {
		t.Fatalf("token list: %v %v", toks, err)
	}
	if strings.Contains(listOut, tok) || strings.Contains(mustRun(t, "token", "list", "--dir", dir), tok) {
		t.Error("token list shows the secret")
	}
	mustRun(t, "token", "revoke", "--dir", dir, toks[0].ID)
	if !strings.Contains(mustRun(t, "token", "list", "--dir", dir), "revoked") {
		t.Error("revoked token not shown as revoked")
	}

	mustRun(t, "revoke", "--dir", dir, "alice", "--reason", "key-compromise")
	var certs []ca.CertInfo
	if err := json.Unmarshal([]byte(mustRun(t, "list-signed", "--dir", dir, "--all", "--json")), &certs); err != nil {
		t.Fatal(err)
	}
	if len(certs) != 1 || !certs[0].Revoked || certs[0].Reason != ca.ReasonKeyCompromise {
		t.Errorf("list-signed after revoke: %+v", certs)
	}
	if strings.Contains(mustRun(t, "list-signed", "--dir", dir), "alice") {
		t.Error("list-signed without --all shows a revoked certificate")
	}
	crlFile := filepath.Join(t.TempDir(), "crl.pem")
	mustRun(t, "crl", "--dir", dir, "--out", crlFile)
	pemOut := mustRun(t, "crl", "--dir", dir)
	b, _ := os.ReadFile(crlFile)
	if !strings.HasPrefix(pemOut, "-----BEGIN X509 CRL-----") || string(b) != pemOut {
		t.Errorf("crl output %q vs file %q", pemOut, b)
	}
	der, _ := decodePEM(b)
	if err := id.SetCRL(der); err != nil {
		t.Fatal(err)
	}
	if !id.Revoked(id.Leaf()) {
		t.Error("the CRL printed by crl does not list the revoked overlord")
	}
	if _, err := audit.Verify(filepath.Join(dir, "audit.log")); err != nil {
		t.Errorf("audit log: %v", err)
	}
}

// daemonAddr reads the daemon's log until it names its listen address.
func daemonAddr(t *testing.T, r io.Reader, logs *syncBuffer) string {
	t.Helper()
	re := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		sent := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := re.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatalf("daemon exited without serving:\n%s", logs.String())
		}
		return addr
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not report its address:\n%s", logs.String())
	}
	return ""
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteString(str string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(str)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// enrollAll enrolls n minions against addr, pinned to fp, and returns
// their identities; the caller signs them.
func enrollAll(ctx context.Context, t *testing.T, addr, fp string, n int) (<-chan *identity.Identity, <-chan error) {
	ids := make(chan *identity.Identity, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			id, err := identity.Enroll(ctx, identity.EnrollRequest{
				Certmaster: addr, CAFingerprint: fp, Name: fmt.Sprintf("m%d", i),
				Addr: fmt.Sprintf("127.0.0.1:%d", 7000+i), Dir: filepath.Join(t.TempDir(), fmt.Sprint(i)),
				MinPoll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond,
			})
			if err != nil {
				errs <- err
				return
			}
			ids <- id
		}()
	}
	return ids, errs
}

// In-process daemon, in-process admin: the daemon serves while the admin
// lists and signs, and every minion ends up with a unique certificate.
func TestServeWithConcurrentAdmin(t *testing.T) {
	dir, fp := initCA(t)
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	var logs syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--dir", dir, "--listen", "127.0.0.1:0"}, io.Discard, pw)
		pw.Close()
	}()
	addr := daemonAddr(t, pr, &logs)
	checkEnrollAndSign(t, ctx, dir, addr, fp, 6, func(args ...string) (string, int) {
		out, _, code := runCmd(t, args...)
		return out, code
	})
	cancel()
	if code := <-served; code != exitOK {
		t.Errorf("serve exit %d\n%s", code, logs.String())
	}
}

// checkEnrollAndSign enrolls n minions while the admin signs in a loop
// with the given runner, then checks certificates, listing and audit.
func checkEnrollAndSign(t *testing.T, ctx context.Context, dir, addr, fp string, n int, admin func(args ...string) (string, int)) {
	t.Helper()
	ectx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ids, errs := enrollAll(ectx, t, addr, fp, n)
	serials := map[string]bool{}
	for got := 0; got < n; {
		select {
		case id := <-ids:
			serials[id.Leaf().SerialNumber.Text(16)] = true
			got++
		case err := <-errs:
			t.Fatalf("enroll: %v", err)
		case <-time.After(20 * time.Millisecond):
			admin("list", "--dir", dir)
			admin("sign", "--dir", dir, "m*") // exit 1 when nothing is pending yet
		}
	}
	if len(serials) != n {
		t.Errorf("%d distinct serials for %d minions", len(serials), n)
	}
	out, code := admin("list-signed", "--dir", dir, "--json")
	var certs []ca.CertInfo
	if err := json.Unmarshal([]byte(out), &certs); code != 0 || err != nil {
		t.Fatalf("list-signed: %d %v", code, err)
	}
	minions := 0
	for _, c := range certs {
		if c.Role == gofunc.RoleMinion {
			minions++
		}
	}
	if minions != n {
		t.Errorf("list-signed shows %d minions, want %d", minions, n)
	}
	if out, _ := admin("list", "--dir", dir, "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("requests left pending: %s", out)
	}
	sum, err := audit.Verify(filepath.Join(dir, "audit.log"))
	if err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	if sum.Records < 2*n {
		t.Errorf("audit log has %d records for %d enrollments", sum.Records, n)
	}
}

// The built binary: init, serve as a real process, admin commands from
// this process at the same time, SIGHUP reload, SIGTERM graceful stop.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the binary build in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "certmaster")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOTOOLCHAIN="+os.Getenv("GOTOOLCHAIN"))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "ca")
	out, err := exec.Command(bin, "init", "--dir", dir).Output()
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	fp := strings.TrimSpace(string(out))

	daemon := exec.Command(bin, "serve", "--dir", dir, "--listen", "127.0.0.1:0")
	stderr, err := daemon.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	waited := false
	defer func() {
		if !waited {
			daemon.Process.Kill()
			daemon.Wait()
		}
	}()
	addr := daemonAddr(t, stderr, &logs)

	checkEnrollAndSign(t, t.Context(), dir, addr, fp, 4, func(args ...string) (string, int) {
		out, _, code := runCmd(t, args...)
		return out, code
	})

	if err := daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "reloaded")
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = daemon.Wait()
	waited = true
	if err != nil {
		t.Errorf("daemon exit after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), "shutting down") {
		t.Errorf("no graceful shutdown in the log:\n%s", logs.String())
	}
}

func waitLog(t *testing.T, logs *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not in the daemon's log:\n%s", want, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func decodePEM(b []byte) ([]byte, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("no PEM block")
	}
	return block.Bytes, nil
}
