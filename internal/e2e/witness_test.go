package e2e

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/overlord"
)

// rebuildWithout rewrites the audit log at path without record drop and
// with a fresh, valid chain: what someone who can write a minion's log
// would do to hide a call.
func rebuildWithout(t *testing.T, path string, drop uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var keep []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, audit.MaxRecordBytes+1)
	for sc.Scan() {
		r, err := audit.ParseLine(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != drop {
			r.Seq, r.Prev, r.Hash = 0, "", ""
			keep = append(keep, r)
		}
	}
	f.Close()
	forged := path + ".forged"
	l, err := audit.Open(forged, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range keep {
		if _, err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	if err := os.Rename(forged, path); err != nil {
		t.Fatal(err)
	}
}

// A minion's audit log rebuilt after a record was dropped passes the
// chain check alone, but not the check against the heads the minion
// sent with its answers, which the overlord's own log holds (issue 11
// item 11): real funcd, real func, the log edited on disk.
func TestAuditWitnessCatchesARebuiltLog(t *testing.T) {
	f := newFleet(t)
	addr, proc := f.funcd(t, "w1.test", "127.0.0.91")
	if err := writeMinions(filepath.Join(f.overlord, overlord.CacheFile), []overlord.Minion{{Name: "w1.test", Addr: addr}}); err != nil {
		t.Fatal(err)
	}
	fn := func(args ...string) (string, string, int) {
		t.Helper()
		return runCmd(t, "func", append([]string{"--dir", f.overlord}, args...)...)
	}
	for _, args := range [][]string{{"*", "ping"}, {"*", "call", "test", "add", "1", "2"}, {"*", "ping"}} {
		if out, errOut, code := fn(args...); code != 0 {
			t.Fatalf("func %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// Stop the minion, so the file is still.
	proc.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- proc.Wait() }()
	select {
	case <-done:
	case <-time.After(hangTimeout):
		t.Fatal("funcd did not stop")
	}

	minionLog := filepath.Join(f.dir, "w1.test", "audit.log")
	overlordLog := filepath.Join(f.overlord, "audit.log")
	witnessed := []string{"audit", "verify", "--witness", overlordLog, "--host", "w1.test", minionLog}
	out, errOut, code := fn(witnessed...)
	if code != 0 || !strings.Contains(out, ": ok: ") || !strings.Contains(out, "3 witnessed heads agree") {
		t.Fatalf("honest log against its witnesses: exit %d\n%s%s", code, out, errOut)
	}

	// Drop the test.add call's start record (seq 3: ping is 1-2) and
	// rebuild the chain.
	rebuildWithout(t, minionLog, 3)
	if out, errOut, code := fn("audit", "verify", minionLog); code != 0 {
		t.Fatalf("the rebuilt chain should verify on its own (that is the hole): exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = fn(witnessed...)
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "witnessed checkpoint") {
		t.Errorf("rebuilt log against its witnesses: exit %d, want 1 and a failure naming the witness\n%s%s", code, out, errOut)
	}
	if _, _, code := fn("audit", "verify", "--witness", overlordLog, minionLog); code != 2 {
		t.Errorf("--witness without --host: exit %d, want 2", code)
	}
}
