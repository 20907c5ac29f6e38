package ca

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// The two-process test re-executes the test binary; childEnv names the CA
// directory the child signs in, childCountEnv how many certificates.
const (
	childEnv      = "GOFUNC_CA_TEST_CHILD_DIR"
	childCountEnv = "GOFUNC_CA_TEST_CHILD_COUNT"
)

// childMain is the child process of TestConcurrentIssueProcesses: it
// opens the CA directory and issues certificates, printing each serial.
func childMain() int {
	n, _ := strconv.Atoi(os.Getenv(childCountEnv))
	dir := os.Getenv(childEnv)
	a, err := Open(Config{Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("ready-%d", os.Getpid())), nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Start line: wait for the parent's signal so that the processes
	// really sign at the same time.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			fmt.Fprintln(os.Stderr, "no start signal")
			return 1
		}
	}
	for i := range n {
		id, err := a.Issue(gofunc.RoleMinion, fmt.Sprintf("child%d-%d", os.Getpid(), i), IssueOptions{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(serialHex(id.Leaf().SerialNumber))
	}
	return 0
}

// checkIndex verifies that the index lists exactly the serials in want,
// once each, and that every one has a parseable certs/SERIAL.pem.
func checkIndex(t *testing.T, a *Authority, want map[string]bool) {
	t.Helper()
	signed, err := a.Signed()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range signed {
		if seen[c.Serial] {
			t.Errorf("serial %s listed twice", c.Serial)
		}
		seen[c.Serial] = true
		if !want[c.Serial] {
			t.Errorf("serial %s in the index was never returned by Issue", c.Serial)
		}
		b, err := a.CertificatePEMBySerial(c.Serial)
		if err != nil {
			t.Errorf("certs/%s.pem: %v", c.Serial, err)
			continue
		}
		if _, err := identity.ParseCertificatePEM(b); err != nil {
			t.Errorf("certs/%s.pem: %v", c.Serial, err)
		}
	}
	for s := range want {
		if !seen[s] {
			t.Errorf("serial %s issued but missing from the index (lost update)", s)
		}
	}
}

func TestConcurrentIssueGoroutines(t *testing.T) {
	a := newTestCA(t)
	// A second Authority on the same directory, as a second Open in the
	// same process would make: only the flock protects across the two.
	b, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 10
	var mu sync.Mutex
	want := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			auth := a
			if w%2 == 1 {
				auth = b
			}
			for i := range each {
				id, err := auth.Issue(gofunc.RoleMinion, fmt.Sprintf("w%d-%d", w, i), IssueOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[serialHex(id.Leaf().SerialNumber)] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(want) != workers*each {
		t.Fatalf("%d distinct serials, want %d", len(want), workers*each)
	}
	checkIndex(t, a, want)
}

func TestConcurrentIssueProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the two-process test in -short mode")
	}
	a := newTestCA(t)
	const each = 30
	var cmds []*exec.Cmd
	var outs []*bytes.Buffer
	for range 2 {
		cmd := exec.CommandContext(testCtx(t), os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+a.Dir(), childCountEnv+"="+strconv.Itoa(each))
		out := new(bytes.Buffer)
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(time.Millisecond) {
		ready, _ := filepath.Glob(filepath.Join(a.Dir(), "ready-*"))
		if len(ready) == len(cmds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("children did not get ready")
		}
	}
	if err := os.WriteFile(filepath.Join(a.Dir(), "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for i := range each {
		id := issue(t, a, gofunc.RoleMinion, fmt.Sprintf("parent-%d", i), IssueOptions{})
		want[serialHex(id.Leaf().SerialNumber)] = true
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
		sc := bufio.NewScanner(outs[i])
		n := 0
		for sc.Scan() {
			want[sc.Text()] = true
			n++
		}
		if n != each {
			t.Fatalf("child %d printed %d serials, want %d", i, n, each)
		}
	}
	if len(want) != 3*each {
		t.Fatalf("%d distinct serials, want %d", len(want), 3*each)
	}
	checkIndex(t, a, want)
	// No temporary file is left behind by the atomic writes.
	left, _ := filepath.Glob(filepath.Join(a.Dir(), ".*tmp*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
