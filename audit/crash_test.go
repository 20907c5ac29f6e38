//go:build unix

package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash tests re-run this test binary as a child process selected by
// -test.run and switched on by an environment variable naming the log.
const (
	envCrashChild = "GOFUNC_AUDIT_CRASH_CHILD"
	envFsizeChild = "GOFUNC_AUDIT_FSIZE_CHILD"
)

func childCommand(ctx context.Context, t *testing.T, test, env, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+path)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestCrashChild appends from several goroutines until it is killed,
// printing "seq callid" for each record only after Append returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(envCrashChild)
	if path == "" {
		t.Skip("helper process for TestKill9")
	}
	l, err := Open(path, Config{MaxFileBytes: 16 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-%d", g, i)
				rec, err := l.Append(Record{Kind: KindCallStart, CallID: id, Method: "test.ping"})
				if err != nil {
					fmt.Fprintln(os.Stderr, "child: append:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "%d %s\n", rec.Seq, id)
				out.Unlock()
			}
		}()
	}
	select {} // until SIGKILL
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := childCommand(ctx, t, "TestCrashChild", envCrashChild, path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reported := map[uint64]string{}
	sc := bufio.NewScanner(stdout)
	killed := false
	for sc.Scan() {
		seq, id, ok := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseUint(seq, 10, 64)
		if !ok || err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		reported[n] = id
		if len(reported) == 400 && !killed {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true // keep reading: lines already printed count too
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !killed || !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v after %d records, want death by SIGKILL after 400", err, len(reported))
	}

	// Open repairs a torn tail if the kill left one; then the whole
	// chain must verify and hold every record the child was told was durable.
	l, err := Open(path, Config{MaxFileBytes: 16 << 10})
	if err != nil {
		t.Fatalf("Open after kill -9: %v", err)
	}
	mustAppend(t, l, Record{Kind: "after.crash"})
	l.Close()
	sum, err := VerifyLog(path)
	if err != nil {
		t.Fatalf("VerifyLog after kill -9: %v", err)
	}
	onDisk := map[uint64]string{}
	for _, r := range records(t, path) {
		onDisk[r.Seq] = r.CallID
	}
	for seq, id := range reported {
		if got, ok := onDisk[seq]; !ok || got != id {
			t.Errorf("seq %d: child was told %s was durable; the log has %q (present: %v)", seq, id, got, ok)
		}
	}
	files, _ := Files(path)
	t.Logf("child reported %d records; log holds %d in %d files", len(reported), sum.Records, len(files))
}

// TestFsizeChild writes records until the file size limit (RLIMIT_FSIZE)
// stops a write half-way: a real file failing mid-record, without root.
func TestFsizeChild(t *testing.T) {
	path := os.Getenv(envFsizeChild)
	if path == "" {
		t.Skip("helper process for TestFileSizeLimit")
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
		os.Exit(2)
	}
	l, err := Open(path, Config{})
	if err != nil {
		fail("open: %v", err)
	}
	for range 3 {
		if _, err := l.Append(Record{Kind: "small"}); err != nil {
			fail("append: %v", err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		fail("%v", err)
	}
	// Room for one small record, not for a big one. Go ignores SIGXFSZ,
	// so the write fails with EFBIG after writing what fits.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fail("getrlimit: %v", err)
	}
	lim.Cur = uint64(fi.Size()) + 400
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		fail("setrlimit: %v", err)
	}
	_, err = l.Append(Record{Kind: "big", Error: strings.Repeat("x", 2000)})
	fmt.Printf("big: %v\n", errors.Is(err, ErrWrite) && errors.Is(err, syscall.EFBIG))
	rec, err := l.Append(Record{Kind: "small"})
	fmt.Printf("small: %d %v\n", rec.Seq, err)
	if err := l.Close(); err != nil {
		fail("close: %v", err)
	}
	os.Exit(0)
}

func TestFileSizeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	out, err := childCommand(t.Context(), t, "TestFsizeChild", envFsizeChild, path).Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if want := "big: true\nsmall: 4 <nil>\n"; string(out) != want {
		t.Fatalf("child printed %q, want %q", out, want)
	}
	sum, err := Verify(path)
	if err != nil || sum.Records != 4 {
		t.Fatalf("Verify = %+v, %v: the half-written record must have been cut off", sum, err)
	}
}
