package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--demo"}, &out); code != 0 {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	for _, want := range []string{"version 1.4.2, queue 5", "enqueue", "status", "get_method_args"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	if code := run(t.Context(), nil, &bytes.Buffer{}); code != 2 {
		t.Fatalf("no flags: exit %d, want 2", code)
	}
}

// The embedded minion, given only its certmaster's address, refuses a
// caller once the CA revokes it: the minion server fetches the CRL by
// itself (this program has no code for it), on the connection the
// caller already has and on new ones, and saves the CRL in its
// directory for the next start. Another caller is still served.
func TestRevokedCallerRefused(t *testing.T) {
	root := t.TempDir()
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(root, "ca")})
	if err != nil {
		t.Fatal(err)
	}
	cmLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: authority}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(cmLn) }()
	defer func() {
		svc.Close()
		<-served
	}()

	addr := freeAddr(t)
	id, err := authority.Issue(gofunc.RoleMinion, "agent1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "agent")
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"--dir", dir, "--listen", addr, "--certmaster", cmLn.Addr().String(), "--crl-refresh", "100ms"}, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-exited; code != 0 {
			t.Errorf("embed-minion exited %d", code)
		}
	}()

	caller := func(name string) (*overlord.Selection, *identity.Identity) {
		who, err := authority.Issue(gofunc.RoleOverlord, name, ca.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o := overlord.New(overlord.WithIdentity(who), overlord.WithHostTimeout(10*time.Second),
			overlord.WithMinions(overlord.Static{{Name: "agent1.test", Addr: addr}}))
		t.Cleanup(func() { o.Close() })
		return o.Targets("agent1.test"), who
	}
	eve, eveID := caller("eve")
	admin, _ := caller("admin")
	eventually(t, "the agent to serve eve", func() bool {
		_, err := eve.Call(t.Context(), "test", "ping")
		return err == nil
	})
	if _, err := authority.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the agent to refuse eve", func() bool {
		_, err := eve.Call(t.Context(), "test", "ping")
		return errors.Is(err, gofunc.ErrDenied) || errors.Is(err, overlord.ErrRejected)
	})
	if _, err := admin.Call(t.Context(), "test", "ping"); err != nil {
		t.Errorf("admin after eve's revocation: %v", err)
	}
	eventually(t, "the CRL listing eve saved in the agent's directory", func() bool {
		saved, err := identity.Load(dir)
		return err == nil && saved.Revoked(eveID.Leaf())
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds, failing the test after 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
