package overlord_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// startCertmaster serves f's CA on loopback and returns its address.
func startCertmaster(t *testing.T, f *fleettest.Fleet) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: f.CA}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()
	t.Cleanup(func() {
		_ = svc.Close()
		<-done
	})
	return ln.Addr().String()
}

// logBuffer is an hclog logger whose output a test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: b, Level: hclog.Debug})
}

// After `certmaster revoke m3.test`, a run that asks the certmaster
// saves its CRL, and later runs that target m3 from the cached list
// refuse it.
func TestCertmasterSourceEnforcesCRL(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 3})
	addr := startCertmaster(t, f)
	dir := t.TempDir()
	if err := f.Admin().Save(dir); err != nil {
		t.Fatal(err)
	}
	first := overlord.New(overlord.WithIdentityDir(dir), overlord.WithCertmaster(addr))
	defer first.Close()
	if _, err := first.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if _, err := f.CA.Revoke("m3.test", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	id, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := overlord.Certmaster{Addr: addr, Identity: id}
	if _, err := src.Minions(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !id.Revoked(f.Minion("m3.test").Identity.Leaf()) {
		t.Error("the source did not install the certmaster's CRL")
	}
	if _, err := os.Stat(filepath.Join(dir, "crl.pem")); err != nil {
		t.Errorf("crl.pem not saved: %v", err)
	}
	// A later run from the cached list (m3 still in it) loads the CRL.
	later := overlord.New(overlord.WithIdentityDir(dir))
	defer later.Close()
	res, err := later.Targets("*").Call(t.Context(), "test", "ping")
	if r := res["m3.test"]; !errors.Is(r.Err, overlord.ErrUntrusted) || !errors.Is(r.Err, identity.ErrRevoked) {
		t.Errorf("revoked m3: %v (call: %v), want ErrUntrusted and identity.ErrRevoked", r.Err, err)
	}
	if r := res["m1.test"]; r.Err != nil {
		t.Errorf("m1: %v", r.Err)
	}
}

// A long-lived client picks up a revocation within a CRL interval, even
// on a connection it keeps alive.
func TestClientRefreshesCRL(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	addr := startCertmaster(t, f)
	c := f.Client(overlord.WithCertmaster(addr), overlord.WithCRLInterval(20*time.Millisecond))
	if _, err := c.Targets("m2*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if _, err := f.CA.Revoke("m2.test", ca.ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Targets("m2*").Call(t.Context(), "test", "ping")
		if errors.Is(err, identity.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("m2 still answers 10s after its revocation: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling for the background refresh
	}
	if _, err := c.Targets("m1*").Call(t.Context(), "test", "ping"); err != nil {
		t.Errorf("m1 after m2's revocation: %v", err)
	}
}

// A certificate that names the host but is not a minion's (here a
// certmaster's) is an impersonation.
func TestNonMinionCertificateRefused(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	id, err := f.CA.Issue(gofunc.RoleCertmaster, "fake.test", ca.IssueOptions{IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served sync.WaitGroup
	srv := &http.Server{ErrorLog: log.New(io.Discard, "", 0), TLSConfig: id.ServerTLSConfig(), Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		defer served.Done()
		_, _ = w.Write([]byte(`<?xml version="1.0"?><methodResponse><params><param><value><boolean>1</boolean></value></param></params></methodResponse>`))
	})}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		_ = srv.Close()
		<-done
	}()
	c := f.Client(overlord.WithMinions(overlord.Static{{Name: "fake.test", Addr: ln.Addr().String()}}))
	res, err := c.Targets("*").Call(t.Context(), "test", "ping")
	if !errors.Is(err, overlord.ErrWrongRole) || !errors.Is(err, overlord.ErrImpersonation) {
		t.Fatalf("Call = %v (value %v), want ErrWrongRole", err, res["fake.test"].Value)
	}
	if k := overlord.ErrorKind(res["fake.test"].Err); k != "impersonation" {
		t.Errorf("kind %q", k)
	}
}

// With the certmaster away, the cached list is used, with a warning.
func TestCertmasterSourceFallsBackToCache(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	cache := filepath.Join(t.TempDir(), overlord.CacheFile)
	want := []overlord.Minion{{Name: "m1.test", Addr: f.Minions()[0].Addr}}
	if err := writeMinions(cache, want); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	src := overlord.Certmaster{Addr: down, Identity: f.Admin(), Cache: cache, Logger: logs.logger()}
	got, err := src.Minions(t.Context())
	if err != nil || len(got) != 1 || got[0] != want[0] {
		t.Fatalf("Minions = %v, %v; want the cached list", got, err)
	}
	if !strings.Contains(logs.String(), "certmaster unreachable") {
		t.Errorf("no warning logged: %q", logs.String())
	}
	src.Cache = filepath.Join(t.TempDir(), "none.json")
	if _, err := src.Minions(t.Context()); err == nil {
		t.Error("no certmaster and no cache: no error")
	}
}

// Names from a static list are checked like certificate names: bad
// ones are left out and logged.
func TestInvalidMinionNamesLeftOut(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	var logs logBuffer
	c := f.Client(overlord.WithLogger(logs.logger()), overlord.WithMinions(overlord.Static{
		{Name: "M1.test", Addr: f.Minions()[0].Addr}, {Name: ".."}, {Name: "../etc"}, {Name: "a b"}, {Name: ""},
	}))
	hosts, err := c.Targets("*").Hosts(t.Context())
	if err != nil || strings.Join(hosts, ",") != "m1.test" {
		t.Fatalf("Hosts = %v, %v; want only m1.test", hosts, err)
	}
	ms, err := c.Minions(t.Context())
	if err != nil || len(ms) != 1 {
		t.Errorf("Minions = %v, %v", ms, err)
	}
	if n := strings.Count(logs.String(), "invalid name"); n < 4 {
		t.Errorf("%d warnings, want one per bad name:\n%s", n, logs.String())
	}
}

// Each chunk of a large copy gets the host timeout, not the transfer.
func TestCopyFileTimeoutPerChunk(t *testing.T) {
	t.Parallel()
	// The minion holds every call of the transfer (open, 21 appends of
	// 1 KiB, commit) for 500ms: 11.5s in all, over the 10s host timeout
	// whatever the machine's speed, since a timer never fires early.
	// Each call keeps 9.5s of slack for the little work it does, so
	// only a whole-transfer timeout can fail the copy.
	const hostTimeout, delay, chunk = 10 * time.Second, 500 * time.Millisecond, 1 << 10
	f := fleettest.Start(t, fleettest.Config{Minions: 1, HostTimeout: hostTimeout})
	f.Minions()[0].SetFault(fleettest.Fault{Delay: delay,
		Methods: []string{"copyfile.open", "copyfile.append", "copyfile.commit"}})
	trailPath := filepath.Join(t.TempDir(), "audit.log")
	trail, err := audit.Open(trailPath, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), (20*chunk+16)/16) // 21 chunks
	if calls := 2 + (len(data)+chunk-1)/chunk; time.Duration(calls)*delay <= hostTimeout {
		t.Fatalf("%d calls held %v each do not outlast the host timeout: the test proves nothing", calls, delay)
	}
	target := filepath.Join(t.TempDir(), "big")
	c := f.Client(overlord.WithAudit(trail))
	overlord.SetChunkSize(c, chunk)
	start := time.Now()
	_, err = c.Targets("*").CopyFile(t.Context(), target, data, overlord.CopyOptions{Mode: "0600"})
	if err != nil {
		t.Fatalf("CopyFile: %v", err)
	}
	if took := time.Since(start); took <= hostTimeout {
		t.Fatalf("the copy took %v, not over the %v host timeout: the test proves nothing", took, hostTimeout)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Fatalf("copied %d bytes, want %d", len(got), len(data))
	}
	rec, ok := lastRecord(t, trailPath, audit.KindOverlordCall)
	sum := sha256.Sum256(data)
	if !ok || rec.Details["path"] != target || rec.Details["size"] != strconv.Itoa(len(data)) ||
		rec.Details["sha256"] != hex.EncodeToString(sum[:]) || rec.Details["mode"] != "0600" {
		t.Errorf("audit record details = %v", rec.Details)
	}
}

// A copy in chunks of the real size (4 MiB, the module's cap) arrives
// whole.
func TestCopyFileInFullChunks(t *testing.T) {
	// Not parallel, and a generous host timeout: it moves 4 MiB and a
	// bit, which takes seconds under -race on a busy machine.
	f := fleettest.Start(t, fleettest.Config{Minions: 1, HostTimeout: time.Minute})
	data := bytes.Repeat([]byte("0123456789abcdef"), (4<<20+16)/16) // 2 chunks
	target := filepath.Join(t.TempDir(), "big")
	if _, err := f.Client().Targets("*").CopyFile(t.Context(), target, data, overlord.CopyOptions{}); err != nil {
		t.Fatalf("CopyFile: %v", err)
	}
	if got, _ := os.ReadFile(target); !bytes.Equal(got, data) {
		t.Fatalf("copied %d bytes, want %d", len(got), len(data))
	}
}

// chunkSink records how a file arrives.
type chunkSink struct {
	writes int
	buf    bytes.Buffer
	closed []error
}

func (s *chunkSink) Write(p []byte) (int, error) { s.writes++; return s.buf.Write(p) }
func (s *chunkSink) Close(err error) error       { s.closed = append(s.closed, err); return nil }

// GetFileTo hands the file over chunk by chunk, and audits what it got.
func TestGetFileToStreams(t *testing.T) {
	// Not parallel, and a generous host timeout: it moves 9 MiB to each
	// of two hosts, which takes seconds under -race on a busy machine.
	f := fleettest.Start(t, fleettest.Config{Minions: 2, HostTimeout: time.Minute})
	data := bytes.Repeat([]byte("x"), 9<<20)
	src := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	trailPath := filepath.Join(t.TempDir(), "audit.log")
	trail, err := audit.Open(trailPath, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	var mu sync.Mutex
	sinks := map[string]*chunkSink{}
	res, err := f.Client(overlord.WithAudit(trail)).Targets("*").GetFileTo(t.Context(), src, func(host string, _ int64) (overlord.FileSink, error) {
		mu.Lock()
		defer mu.Unlock()
		sinks[host] = &chunkSink{}
		return sinks[host], nil
	})
	if err != nil {
		t.Fatalf("GetFileTo: %v", err)
	}
	sum := sha256.Sum256(data)
	for h, s := range sinks {
		if s.writes < 3 || !bytes.Equal(s.buf.Bytes(), data) || len(s.closed) != 1 || s.closed[0] != nil {
			t.Errorf("%s: %d writes, %d bytes, closed %v", h, s.writes, s.buf.Len(), s.closed)
		}
		v, _ := res[h].Value.(map[string]any)
		if v["size"] != int64(len(data)) || v["sha256"] != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: value %v", h, v)
		}
	}
	start, _ := lastRecord(t, trailPath, audit.KindOverlordCall)
	end, _ := lastRecord(t, trailPath, overlord.KindCallEnd)
	if start.Details["path"] != src || !strings.Contains(end.Details["m1.test"], hex.EncodeToString(sum[:])) {
		t.Errorf("audit: start %v end %v", start.Details, end.Details)
	}
	// A missing file: the sink is never opened.
	sinks = map[string]*chunkSink{}
	if _, err := f.Client().Targets("*").GetFileTo(t.Context(), "/nonexistent", func(string, int64) (overlord.FileSink, error) {
		t.Error("sink opened for a missing file")
		return &chunkSink{}, nil
	}); err == nil {
		t.Error("GetFileTo of a missing file succeeded")
	}
}

// A done job with hosts whose result was never stored is a failure.
func TestDoneJobWithoutResultsFails(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	c := f.Client(overlord.WithJobStore(jobStore(t, filepath.Join(t.TempDir(), "jobs.db"))))
	job, err := c.Targets("*").Submit(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	if err := overlord.ClaimJob(t.Context(), c, job.ID); err != nil {
		t.Fatal(err)
	}
	overlord.FinishJob(context.WithoutCancel(t.Context()), c, job.ID, overlord.JobDone)
	j, err := c.Job(t.Context(), job.ID)
	if err != nil {
		t.Fatal(err)
	}
	if j.Failed != 2 || !errors.Is(j.Err(), overlord.ErrNoResult) {
		t.Errorf("job: failed %d, err %v; want both hosts failed with ErrNoResult", j.Failed, j.Err())
	}
	list, err := c.Jobs(t.Context())
	if err != nil || len(list) != 1 || list[0].Failed != 2 {
		t.Errorf("Jobs: %v, %v", list, err)
	}
}

// A minion that refuses our certificate at the TLS layer (here: revoked
// in the CRL the minion holds) is reported as rejected, not unreachable.
func TestRevokedOverlordIsRejected(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	if _, err := f.CA.Revoke("admin", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Minions()[0].Identity.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	res, err := f.Client().Targets("*").Call(t.Context(), "test", "ping")
	if !errors.Is(err, overlord.ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	if got := overlord.ErrorKind(res["m1.test"].Err); got != "rejected" {
		t.Fatalf("ErrorKind = %q, want rejected", got)
	}
}
