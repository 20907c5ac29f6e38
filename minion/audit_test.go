package minion_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
)

// vault has a secret argument and a content argument.
type vault struct{ logins atomic.Int32 }

func (v *vault) Login(user, password string) bool { v.logins.Add(1); return password != "" }
func (v *vault) Store(path string, content []byte) int {
	return len(content)
}
func (v *vault) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Methods: map[string]gofunc.MethodDoc{
		"Login": {Args: []gofunc.ArgDoc{{Name: "user"}, {Name: "password", Secret: true}}},
		"Store": {Args: []gofunc.ArgDoc{{Name: "path"}, {Name: "content", Content: true}}},
	}}
}

func TestSecretsRedactedContentDigested(t *testing.T) {
	e := start(t, func(s *minion.Server) { mustRegister(t, s, "vault", &vault{}) })
	c := e.client(gofunc.RoleOverlord, "admin")
	const password = "hunter2-Sup3rS3cret"
	if got, err := e.call(c, "vault.login", "root", password); err != nil || got != true {
		t.Fatalf("vault.login = %v, %v", got, err)
	}
	content := []byte("BEGIN PRIVATE FILE CONTENTS " + strings.Repeat("z", 1000))
	if got, err := e.call(c, "vault.store", "/etc/thing", content); err != nil || got != int64(len(content)) {
		t.Fatalf("vault.store = %v, %v", got, err)
	}
	// A denied call with a secret is redacted too.
	_, err := e.call(e.client(gofunc.RoleMinion, "m2.test"), "vault.login", "root", password)
	wantFault(t, "minion calling vault.login", err, gofunc.CodeDenied)

	raw, err := os.ReadFile(e.auditPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{password, "BEGIN PRIVATE FILE"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
	}
	sum := sha256.Sum256(content)
	var sawLogin, sawStore, sawDenied bool
	for _, r := range e.records() {
		switch {
		case r.Kind == "call.start" && r.Method == "vault.login":
			sawLogin = r.Args[0] == "root" && r.Args[1] == audit.Redacted
		case r.Kind == "call.start" && r.Method == "vault.store":
			m, _ := r.Args[1].(map[string]any)
			sawStore = r.Args[0] == "/etc/thing" && m["size"] == float64(len(content)) && m["sha256"] == hex.EncodeToString(sum[:])
		case r.Kind == "call.denied":
			sawDenied = len(r.Args) == 2 && r.Args[1] == audit.Redacted
		}
	}
	if !sawLogin || !sawStore || !sawDenied {
		t.Errorf("records lack the expected summaries (login %v, store %v, denied %v): %+v", sawLogin, sawStore, sawDenied, e.records())
	}
}

// failingSink is a WriteSyncer that can be made to fail.
type failingSink struct {
	mu   sync.Mutex
	fail bool
	data []byte
}

func (f *failingSink) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return 0, errors.New("disk full")
	}
	f.data = append(f.data, p...)
	return len(p), nil
}

func (f *failingSink) Sync() error { return nil }

func (f *failingSink) setFail(v bool) {
	f.mu.Lock()
	f.fail = v
	f.mu.Unlock()
}

// No audit, no execution: when the start record cannot be written the
// call is refused with CodeAuditFailed and the method does not run.
func TestAuditFailureRefusesTheCall(t *testing.T) {
	sink := &failingSink{}
	trail, err := audit.New(sink, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v := &vault{}
	e := start(t, func(s *minion.Server) {
		s.Audit = trail
		mustRegister(t, s, "vault", v)
	})
	c := e.client(gofunc.RoleOverlord, "admin")
	if _, err := e.call(c, "vault.login", "a", "b"); err != nil || v.logins.Load() != 1 {
		t.Fatalf("vault.login with a working log: %v (logins %d)", err, v.logins.Load())
	}
	sink.setFail(true)
	_, err = e.call(c, "vault.login", "a", "b")
	wantFault(t, "vault.login with a failing log", err, gofunc.CodeAuditFailed, "not run")
	_, err = e.call(c, "async.vault.login", "a", "b")
	wantFault(t, "async.vault.login with a failing log", err, gofunc.CodeAuditFailed, "not run")
	if n := v.logins.Load(); n != 1 {
		t.Fatalf("the method ran %d times, want once: it ran without its audit record", n)
	}
	if st := e.srv.Stats(); st.AuditFailed != 2 {
		t.Errorf("Stats.AuditFailed = %d, want 2", st.AuditFailed)
	}
	sink.setFail(false)
	if _, err := e.call(c, "vault.login", "a", "b"); err != nil || v.logins.Load() != 2 {
		t.Fatalf("after the log recovered: %v (logins %d)", err, v.logins.Load())
	}
	if jobs, err := e.call(c, "jobs.list"); err != nil || len(jobs.([]any)) != 0 {
		t.Errorf("jobs.list = %v, %v; the refused async call must leave no job", jobs, err)
	}
}

func TestServerRequiresAuditAndIdentity(t *testing.T) {
	e := start(t, nil)
	cases := map[string]struct {
		srv  *minion.Server
		want error
	}{
		"no identity": {&minion.Server{Audit: e.trail}, minion.ErrNoIdentity},
		"no audit":    {&minion.Server{Identity: e.id}, minion.ErrNoAudit},
	}
	for name, c := range cases {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := c.srv.Serve(ln); !errors.Is(err, c.want) {
			t.Errorf("%s: Serve = %v, want %v", name, err, c.want)
		}
	}
	if _, err := e.call(e.client(gofunc.RoleOverlord, "admin"), "test.ping"); err != nil {
		t.Fatal(err) // the first Serve is running
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.Serve(ln); !errors.Is(err, minion.ErrServing) {
		t.Errorf("second Serve = %v, want ErrServing", err)
	}
	closed := &minion.Server{Addr: "127.0.0.1:0", Identity: e.id, Audit: e.trail}
	closed.Close()
	if err := closed.ListenAndServe(); !errors.Is(err, minion.ErrServerClosed) {
		t.Errorf("ListenAndServe after Close = %v", err)
	}
	if err := closed.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server that never served = %v", err)
	}
}

// Every answer to a call that ran carries the audit log's head, so the
// caller's log can witness it: the last durable record when the answer
// left, at or after the call's start record (durable before the method
// ran) and at most its end record (in the file when the answer leaves,
// durable with the next fsync). A refused call's answer carries none (a
// caller that may call nothing learns nothing of the log).
func TestAnswersCarryTheAuditHead(t *testing.T) {
	e := start(t, nil)
	post := func(c *http.Client, method string) http.Header {
		t.Helper()
		var body bytes.Buffer
		xmlrpcEncodeCall(t, &body, method)
		resp, err := c.Post("https://"+e.addr+"/RPC2", "text/xml", &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		c.CloseIdleConnections()
		return resp.Header
	}
	admin := e.client(gofunc.RoleOverlord, "admin")
	for range 2 {
		h := post(admin, "test.ping")
		recs := e.records()
		end := recs[len(recs)-1]
		if end.Kind != audit.KindCallEnd || end.CallID != h.Get(gofunc.CallIDHeader) {
			t.Fatalf("the log ends with %v, want the call's end record, written before its answer", end)
		}
		head, err := audit.ParseCheckpoint(h.Get(gofunc.AuditHeadHeader))
		if err != nil {
			t.Fatal(err)
		}
		if head.Seq < end.Seq-1 || head.Seq > end.Seq || recs[head.Seq-1].Hash != head.Hash {
			t.Errorf("%s = %v, want the start record's (%d) or the end record's (%d) seq and hash", gofunc.AuditHeadHeader, head, end.Seq-1, end.Seq)
		}
	}
	if h := post(e.client(gofunc.RoleMinion, "m2.test"), "test.ping"); h.Get(gofunc.AuditHeadHeader) != "" {
		t.Errorf("a denied call was told the audit head %q", h.Get(gofunc.AuditHeadHeader))
	}
}
