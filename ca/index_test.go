package ca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
)

func appendToFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func signedNames(t *testing.T, a *Authority) []string {
	t.Helper()
	certs, err := a.Signed()
	if err != nil {
		t.Fatalf("Signed: %v", err)
	}
	var names []string
	for _, c := range certs {
		names = append(names, c.Name)
	}
	return names
}

// A crash in the middle of an append leaves a torn last line: readers
// skip it, the next writer cuts it off, and nothing before it is lost.
func TestJournalTornTail(t *testing.T) {
	a := newTestCA(t)
	issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	path := filepath.Join(a.Dir(), fileJournal)
	appendToFile(t, path, `{"op":"cert","cert":{"serial":"ab`)

	reader, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := signedNames(t, reader); strings.Join(got, ",") != "m1" {
		t.Fatalf("reader sees %v, want [m1]", got)
	}
	issue(t, reader, gofunc.RoleMinion, "m2", IssueOptions{})
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"serial":"ab`+"\n") || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("torn line not cut off:\n%s", b)
	}
	for _, auth := range []*Authority{a, reader} {
		if got := signedNames(t, auth); strings.Join(got, ",") != "m1,m2" {
			t.Errorf("after the repair: %v, want [m1 m2]", got)
		}
	}
}

// A damaged line in the middle stops the CA rather than letting it act
// on a partial view (a lost revocation would un-revoke a certificate).
func TestJournalCorruptLine(t *testing.T) {
	a := newTestCA(t)
	issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	path := filepath.Join(a.Dir(), fileJournal)
	appendToFile(t, path, "{not json}\n")
	issueErr := func(auth *Authority) error {
		_, err := auth.Issue(gofunc.RoleMinion, "m2", IssueOptions{})
		return err
	}
	fresh, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []*Authority{a, fresh} {
		if _, err := auth.Signed(); !errors.Is(err, ErrCorruptIndex) {
			t.Errorf("Signed on a corrupt index: %v, want ErrCorruptIndex", err)
		}
		if err := issueErr(auth); !errors.Is(err, ErrCorruptIndex) {
			t.Errorf("Issue on a corrupt index: %v, want ErrCorruptIndex", err)
		}
	}
	// An operation the journal does not know is refused too.
	a2 := newTestCA(t)
	appendToFile(t, filepath.Join(a2.Dir(), fileJournal), `{"op":"frobnicate"}`+"\n")
	if _, err := a2.Signed(); !errors.Is(err, ErrCorruptIndex) {
		t.Errorf("unknown op: %v, want ErrCorruptIndex", err)
	}
}

// A CA directory of the first version (index.json rewritten whole,
// certs/SERIAL.pem) is migrated on Open, keeping every certificate, its
// revocation and the CRL number.
func TestMigrateLegacyIndex(t *testing.T) {
	a := newTestCA(t)
	m1 := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	issue(t, a, gofunc.RoleOverlord, "alice", IssueOptions{})
	if _, err := a.Revoke("m1", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	want, err := a.Signed()
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the version 1 layout from the journal's state.
	dir := a.Dir()
	legacy := legacyIndex{Version: 1}
	if err := a.view(context.Background(), func(ix *index) error {
		legacy.CRLNumber, legacy.CRLAt = ix.CRLNumber, ix.CRLAt
		legacy.Certs = append(legacy.Certs, ix.Certs...)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, dirLegacyCerts), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range want {
		pemData, err := a.CertificatePEMBySerial(c.Serial)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dirLegacyCerts, c.Serial+".pem"), pemData, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(legacy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fileLegacyIndex), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, fileJournal)); err != nil {
		t.Fatal(err)
	}

	m, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatalf("Open of a version 1 directory: %v", err)
	}
	got, err := m.Signed()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after migration:\n%v\nwant\n%v", got, want)
	}
	pemData, err := m.CertificatePEMBySerial(serialHex(m1.Leaf().SerialNumber))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := identity.ParseCertificatePEM(pemData); err != nil || !c.Equal(m1.Leaf()) {
		t.Errorf("certificate after migration: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, fileLegacyIndex+".v1")); err != nil {
		t.Errorf("index.json not kept as index.json.v1: %v", err)
	}
	// The CRL number goes on from where it was.
	if _, err := m.Revoke("alice", ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	der, err := m.CRL()
	if err != nil {
		t.Fatal(err)
	}
	rl, err := parseCRL(der)
	if err != nil || rl.Number.Int64() != legacy.CRLNumber+1 || len(rl.RevokedCertificateEntries) != 2 {
		t.Errorf("CRL after migration: number %v (want %d), %d entries, %v", rl.Number, legacy.CRLNumber+1, len(rl.RevokedCertificateEntries), err)
	}
}

// A crash after a revocation reached the journal but before crl.pem was
// written leaves an older CRL on disk; CRL notices by the number and
// serves a new one that lists the revocation.
func TestCRLBehindJournalIsRemade(t *testing.T) {
	a := newTestCA(t)
	id := issue(t, a, gofunc.RoleMinion, "m1", IssueOptions{})
	old, err := os.ReadFile(filepath.Join(a.Dir(), fileCRL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke("m1", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a.Dir(), fileCRL), old, 0o644); err != nil {
		t.Fatal(err)
	}
	fresh, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	der, err := fresh.CRL()
	if err != nil {
		t.Fatal(err)
	}
	rl, err := parseCRL(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.RevokedCertificateEntries) != 1 || rl.RevokedCertificateEntries[0].SerialNumber.Cmp(id.Leaf().SerialNumber) != 0 {
		t.Errorf("CRL served after the crash lists %d entries, want the revoked m1", len(rl.RevokedCertificateEntries))
	}
}

// countingLog is a real audit log that counts its writes.
type countingLog struct {
	*audit.Log
	mu      sync.Mutex
	batches int
}

func (c *countingLog) AppendBatch(recs []audit.Record) ([]audit.Record, error) {
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	return c.Log.AppendBatch(recs)
}

// Requests that arrive while a group is being committed are committed
// together: one audit write and one journal write for all of them.
func TestSubmitGroupCommit(t *testing.T) {
	dir := t.TempDir()
	trail, err := audit.Open(filepath.Join(t.TempDir(), "audit.log"), audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	log := &countingLog{Log: trail}
	a, err := Init(Config{Dir: dir, Audit: log})
	if err != nil {
		t.Fatal(err)
	}
	// Another Authority on the directory holds the lock, so the first
	// Submit waits inside its txn while the others queue behind it.
	blocker, err := Open(Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := blocker.lock.lock(context.Background(), lockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	log.mu.Lock()
	log.batches = 0
	log.mu.Unlock()
	const n = 20
	var wg sync.WaitGroup
	results := make([]Result, n)
	for i := range n {
		key, err := newKey()
		if err != nil {
			t.Fatal(err)
		}
		csr, err := makeCSR(key, fmt.Sprintf("m%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			res, err := a.Submit(context.Background(), Request{CSR: csr, Source: "192.0.2.9:1"}, "*")
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	for queued := 0; queued < n-1; runtime.Gosched() {
		a.submits.mu.Lock()
		queued = len(a.submits.queue)
		a.submits.mu.Unlock()
	}
	unlock()
	wg.Wait()
	for i, r := range results {
		if r.Status != StatusSigned {
			t.Errorf("request %d: %v", i, r.Status)
		}
	}
	if log.batches != 2 {
		t.Errorf("%d requests took %d audit writes, want 2 (the first alone, then the %d queued behind it)", n, log.batches, n-1)
	}
	if got := signedNames(t, a); len(got) != n {
		t.Errorf("%d certificates in the index, want %d", len(got), n)
	}
	if sum, err := audit.VerifyLog(trail.Path()); err != nil || sum.Records != 2*n {
		t.Errorf("audit: %v, %v; want %d records (request and signature each)", sum, err, 2*n)
	}
}

// A refused request in a group leaves the others signed, and its
// refusal is audited; a group never signs a name twice.
func TestSubmitGroupMixedOutcomes(t *testing.T) {
	a := newTestCA(t)
	blocker, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := blocker.lock.lock(context.Background(), lockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := newKey()
	k2, _ := newKey()
	csrA, _ := makeCSR(k1, "dup")
	csrB, _ := makeCSR(k2, "dup")
	csrC, _ := makeCSR(k1, "other")
	reqs := []Request{
		{CSR: csrC, Source: "192.0.2.1:1"},
		{CSR: csrA, Source: "192.0.2.1:1"},
		{CSR: csrB, Source: "192.0.2.2:1"},
		{CSR: csrC, Source: "192.0.2.1:1", Token: "gft_nonsense"},
	}
	out := make([]Result, len(reqs))
	errs := make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { out[i], errs[i] = a.Submit(context.Background(), r, "*") })
	}
	for queued := 0; queued < len(reqs)-1; runtime.Gosched() {
		a.submits.mu.Lock()
		queued = len(a.submits.queue)
		a.submits.mu.Unlock()
	}
	unlock()
	wg.Wait()
	signed, conflicts, refused := 0, 0, 0
	for i := range reqs {
		switch {
		case errors.Is(errs[i], ErrBadToken):
			refused++
		case errs[i] != nil:
			t.Errorf("request %d: %v", i, errs[i])
		case out[i].Status == StatusSigned:
			signed++
		case out[i].Status == StatusConflict:
			conflicts++
		}
	}
	// "other" and one of the two "dup" keys are signed (the token request
	// for "other" finds it signed already or is refused for its token).
	if conflicts != 1 || signed+refused != 3 {
		t.Errorf("signed %d, conflicts %d, refused %d; want one conflict for the second key of dup", signed, conflicts, refused)
	}
	n := 0
	for _, name := range signedNames(t, a) {
		if name == "dup" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("dup signed %d times, want once", n)
	}
}

// FuzzReadJournal: the journal reader never panics, never reports more
// bytes than it was given, and what it accepts it reads the same way
// twice (a line is applied whole or not at all).
func FuzzReadJournal(f *testing.F) {
	a, err := Init(Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := a.Issue(gofunc.RoleMinion, "m1", IssueOptions{}); err != nil {
		f.Fatal(err)
	}
	if _, err := a.Revoke("m1", ReasonKeyCompromise); err != nil {
		f.Fatal(err)
	}
	seed, err := os.ReadFile(filepath.Join(a.Dir(), fileJournal))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)-7])
	f.Add([]byte(`{"op":"header","version":2}` + "\n" + `{"op":"revoke","serial":"01"}` + "\n"))
	f.Add([]byte(`{"op":"header","version":2}` + "\n" + `{"op":"cert","cert":{"serial":"01","name":"a"}}` + "\n" + `{"op":"cert","cert":{"serial":"01","name":"b"}}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ix := newIndex()
		n, err := readJournal(strings.NewReader(string(b)), 0, ix)
		if n < 0 || n > int64(len(b)) {
			t.Fatalf("read %d of %d bytes", n, len(b))
		}
		if err != nil {
			return
		}
		again := newIndex()
		if m, err := readJournal(strings.NewReader(string(b[:n])), 0, again); err != nil || m != n || len(again.Certs) != len(ix.Certs) {
			t.Fatalf("second read: %d bytes, %v; %d certs, want %d", m, err, len(again.Certs), len(ix.Certs))
		}
	})
}

// A Submit whose context ends while another process holds the CA
// directory's lock returns the context's error instead of waiting on;
// the queue does not stall behind it: once the lock is free, the next
// Submit is signed.
func TestSubmitHonoursContextWhileLockHeld(t *testing.T) {
	a := newTestCA(t)
	blocker, err := Open(Config{Dir: a.Dir()})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := blocker.lock.lock(testCtx(t), lockExclusive)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		key, _ := newKey()
		csr, _ := makeCSR(key, fmt.Sprintf("gaveup%d", i))
		ctx, cancel := context.WithTimeout(testCtx(t), 200*time.Millisecond)
		defer cancel()
		wg.Go(func() {
			_, errs[i] = a.Submit(ctx, Request{CSR: csr, Source: "192.0.2.7:1"}, "*")
		})
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("submit %d with the lock held elsewhere: %v, want context.DeadlineExceeded", i, err)
		}
	}
	unlock()
	key, _ := newKey()
	csr, _ := makeCSR(key, "after")
	res, err := a.Submit(testCtx(t), Request{CSR: csr, Source: "192.0.2.7:1"}, "*")
	if err != nil || res.Status != StatusSigned {
		t.Fatalf("submit after the lock was freed: %v, %v; want signed", res.Status, err)
	}
}
