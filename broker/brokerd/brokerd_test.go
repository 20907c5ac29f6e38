package brokerd

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/ca"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func subject(t *testing.T, f func(string) (string, error), name string) string {
	t.Helper()
	s, err := f(name)
	must(t, err)
	return s
}

// nextMsg is the next message on sub, failing the test after a minute.
func nextMsg(t *testing.T, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	m, err := sub.NextMsg(time.Minute)
	if err != nil {
		t.Fatalf("%s: %v", sub.Subject, err)
	}
	return m
}

// The allowed paths work: an overlord's call reaches the minion it
// names and its broadcast reaches every minion; the minion's answer
// reaches that overlord and its event reaches overlords and monitors.
func TestRolesDoWhatTheyMay(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkRolesMay(t, c, func() string { return startBroker(t, c, "127.0.0.1", Config{}).ClientURL() })
}

func checkRolesMay(t *testing.T, c *testCA, start func() string) {
	web1ID := c.issue(gofunc.RoleMinion, "web1.example.org")
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	monID := c.issue(gofunc.RoleMonitor, "prometheus")
	deleID := c.issue(gofunc.RoleDelegate, "funcweb")
	url := start()
	web1 := mustDial(t, url, web1ID)
	alice := mustDial(t, url, aliceID)
	mon := mustDial(t, url, monID)
	dele := mustDial(t, url, deleID)

	callSub, err := web1.SubscribeSync(subject(t, broker.CallSubject, "web1.example.org"))
	must(t, err)
	bcastSub, err := web1.SubscribeSync(broker.BroadcastAll)
	must(t, err)
	inbox := broker.ReplyInbox(aliceID.Leaf())
	replySub, err := alice.SubscribeSync(inbox + ".>")
	must(t, err)
	aliceEvt, err := alice.SubscribeSync("gf.v1.evt.>")
	must(t, err)
	monEvt, err := mon.SubscribeSync("gf.v1.evt.>")
	must(t, err)
	for _, cl := range []*client{web1, alice, mon} {
		cl.flush(t)
	}

	must(t, alice.Publish(callSub.Subject, []byte("call")))
	must(t, dele.Publish(callSub.Subject, []byte("delegated call")))
	must(t, alice.Publish(broker.BroadcastAll, []byte("discover")))
	got := map[string]bool{string(nextMsg(t, callSub).Data): true, string(nextMsg(t, callSub).Data): true}
	if !got["call"] || !got["delegated call"] {
		t.Errorf("call subject got %v", got)
	}
	if m := nextMsg(t, bcastSub); string(m.Data) != "discover" {
		t.Errorf("broadcast got %q", m.Data)
	}
	must(t, web1.Publish(inbox+".0123", []byte("answer")))
	evt := subject(t, broker.EventSubject, "web1.example.org") + ".hello"
	must(t, web1.Publish(evt, []byte("hello")))
	if m := nextMsg(t, replySub); string(m.Data) != "answer" {
		t.Errorf("reply inbox got %q", m.Data)
	}
	for _, s := range []*nats.Subscription{aliceEvt, monEvt} {
		if m := nextMsg(t, s); m.Subject != evt {
			t.Errorf("events got %q", m.Subject)
		}
	}
	for _, cl := range []*client{web1, alice, mon, dele} {
		cl.flush(t)
		if len(cl.errs) != 0 {
			t.Errorf("unexpected errors: %q", cl.errs)
		}
	}
}

// A minion that tries every subject it must not use is refused each
// time, and nothing it tried is delivered: it cannot call or impersonate
// other minions, read their calls, anyone's answers or events, or reach
// $SYS, $JS or inboxes.
func TestMinionForbiddenSubjects(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkMinionForbidden(t, c, func() string { return startBroker(t, c, "127.0.0.1", Config{}).ClientURL() })
}

// checkMinionForbidden issues the identities it needs from c, then
// starts a broker with start and tries every forbidden subject through
// it.
func checkMinionForbidden(t *testing.T, c *testCA, start func() string) {
	const attackerName, victimName = "web1.example.org", "web2.example.org"
	attackerID := c.issue(gofunc.RoleMinion, attackerName)
	victimID := c.issue(gofunc.RoleMinion, victimName)
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	url := start()
	attacker := mustDial(t, url, attackerID)
	victim := mustDial(t, url, victimID)
	alice := mustDial(t, url, aliceID)

	ownCall := subject(t, broker.CallSubject, attackerName)
	victimCall := subject(t, broker.CallSubject, victimName)
	victimEvents := subject(t, broker.EventSubject, victimName)
	aliceInbox := broker.ReplyInbox(aliceID.Leaf())

	victimSub, err := victim.SubscribeSync(victimCall)
	must(t, err)
	aliceEvents, err := alice.SubscribeSync("gf.v1.evt.>")
	must(t, err)
	victim.flush(t)
	alice.flush(t)

	// Publishing: each refused, and the subscriber that would have got
	// it sees the legitimate message that follows first.
	forbiddenPubs := []string{
		victimCall, ownCall, "gf.v1.call.*", broker.BroadcastAll, "gf.v1.bcast.site.paris",
		victimEvents + ".hello", victimEvents + ".bye", "gf.v1.evt.x",
		"$SYS.REQ.SERVER.PING", "$JS.API.INFO", "$JS.API.STREAM.CREATE.X", "_INBOX.abc", "gf.v1.rpl", "other",
	}
	for _, s := range forbiddenPubs {
		if err := attacker.Publish(s, []byte("forged")); err != nil && !errors.Is(err, nats.ErrBadSubject) {
			t.Fatalf("publish %q: %v", s, err)
		}
	}
	attacker.flush(t)
	for _, s := range forbiddenPubs {
		if s == "gf.v1.call.*" {
			continue // a wildcard is not a publish subject: the client library refuses it
		}
		attacker.waitViolation(t, s)
	}
	must(t, alice.Publish(victimCall, []byte("real call")))
	if m := nextMsg(t, victimSub); string(m.Data) != "real call" {
		t.Errorf("the victim's call subject delivered %q from the attacker", m.Data)
	}
	must(t, victim.Publish(victimEvents+".hello", []byte("real hello")))
	if m := nextMsg(t, aliceEvents); string(m.Data) != "real hello" {
		t.Errorf("events delivered %q (%s) from the attacker", m.Data, m.Subject)
	}

	// Subscribing: each refused.
	forbiddenSubs := []string{
		victimCall, "gf.v1.call.*", "gf.v1.call.>", "gf.v1.>", ">", "gf.v1.bcast.>", "gf.v1.bcast.site.paris",
		aliceInbox + ".>", aliceInbox + ".*", "gf.v1.rpl.>", "gf.v1.rpl.*.*",
		"gf.v1.evt.>", victimEvents + ".>", "$SYS.>", "$JS.API.>", "_INBOX.>",
	}
	var subs []*nats.Subscription
	for _, s := range forbiddenSubs {
		sub, err := attacker.SubscribeSync(s)
		must(t, err)
		subs = append(subs, sub)
	}
	ownSub, err := attacker.SubscribeSync(ownCall)
	must(t, err)
	attacker.flush(t)
	for _, s := range forbiddenSubs {
		attacker.waitViolation(t, s)
	}
	// alice's call to the victim and the victim's answer to alice, then
	// a call to the attacker: once the attacker has that, the earlier
	// messages would have reached its forbidden subscriptions.
	must(t, alice.Publish(victimCall, []byte("secret call")))
	must(t, victim.Publish(aliceInbox+".1", []byte("secret answer")))
	victim.flush(t)
	nextMsg(t, victimSub)
	must(t, alice.Publish(ownCall, []byte("own call")))
	if m := nextMsg(t, ownSub); string(m.Data) != "own call" {
		t.Errorf("own call subject got %q", m.Data)
	}
	for _, sub := range subs {
		if m, err := sub.NextMsg(10 * time.Millisecond); err == nil {
			t.Errorf("forbidden subscription %q received %q on %s", sub.Subject, m.Data, m.Subject)
		}
	}
	if !attacker.IsConnected() {
		t.Error("violations should be refused one by one, not end the connection")
	}
}

// Overlords may not answer or speak for minions, read other callers'
// answers or minions' calls; monitors may only read events.
func TestOverlordAndMonitorForbiddenSubjects(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	checkOverlordForbidden(t, c, func() string { return startBroker(t, c, "127.0.0.1", Config{}).ClientURL() })
}

func checkOverlordForbidden(t *testing.T, c *testCA, start func() string) {
	bobID := c.issue(gofunc.RoleOverlord, "bob")
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	monID := c.issue(gofunc.RoleMonitor, "prometheus")
	url := start()
	alice := mustDial(t, url, aliceID)
	mon := mustDial(t, url, monID)
	bobInbox := broker.ReplyInbox(bobID.Leaf())
	call := subject(t, broker.CallSubject, "web1")
	evt := subject(t, broker.EventSubject, "web1") + ".hello"

	cases := []struct {
		who       *client
		pubs      []string
		subs      []string
		whoseName string
	}{
		{alice, []string{bobInbox + ".1", evt, "$SYS.REQ.SERVER.PING", "$JS.API.INFO"},
			[]string{bobInbox + ".>", "gf.v1.rpl.>", call, "gf.v1.call.>", broker.BroadcastAll, "$SYS.>", ">"}, "overlord"},
		{mon, []string{call, broker.BroadcastAll, bobInbox + ".1", evt},
			[]string{call, broker.BroadcastAll, "gf.v1.rpl.>", ">"}, "monitor"},
	}
	for _, tc := range cases {
		for _, s := range tc.pubs {
			must(t, tc.who.Publish(s, nil))
		}
		for _, s := range tc.subs {
			_, err := tc.who.SubscribeSync(s)
			must(t, err)
		}
		tc.who.flush(t)
		for _, s := range append(tc.pubs, tc.subs...) {
			tc.who.waitViolation(t, s)
		}
	}
}

// Connections without an acceptable certificate are refused: none, a
// foreign CA's, a revoked one, and roles the broker admits nobody of.
func TestRefusedConnections(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	brokerID := c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1")
	revoked := c.issue(gofunc.RoleMinion, "gone.example.org")
	_, err := c.Revoke("gone.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	must(t, brokerID.SetCRL(c.crl()))
	b := startBroker(t, c, "127.0.0.1", Config{Identity: brokerID})

	if _, err := dial(t, b.ClientURL(), nil); err == nil {
		t.Error("a client without a certificate was admitted")
	}
	foreign := newCA(t).issue(gofunc.RoleMinion, "web1.example.org")
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: brokerID.Roots(), Certificates: []tls.Certificate{*foreign.Certificate()}}
	if _, err := dialTLS(t, b.ClientURL(), tc); err == nil {
		t.Error("a foreign CA's certificate was admitted")
	}
	if _, err := dial(t, b.ClientURL(), revoked); err == nil {
		t.Error("a revoked certificate was admitted")
	}
	for _, role := range []gofunc.Role{gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin, gofunc.RoleBroker, gofunc.RoleCertmaster} {
		var ips []string
		if role.Serves() {
			ips = []string{"127.0.0.1"}
		}
		id := c.issue(role, "x-"+string(role), ips...)
		_, err := dial(t, b.ClientURL(), id)
		if role == gofunc.RoleCertmaster && err != nil {
			continue // not even a client certificate: refused by TLS
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("role %s: got %v, want an authorization violation", role, err)
		}
	}
	// A certificate revoked after the broker started is refused at once
	// after the CRL is installed (the handshake's check, then Check's).
	late := c.issue(gofunc.RoleMinion, "late.example.org")
	_, err = c.Revoke("late.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	must(t, brokerID.SetCRL(c.crl()))
	if _, err := dial(t, b.ClientURL(), late); err == nil {
		t.Error("a certificate revoked after start was admitted")
	}
}

// A client connected before its certificate was revoked is dropped when
// the broker's CRL refresher fetches the new CRL from a real
// certmaster; other clients stay.
func TestRevokedClientDroppedAfterCRLRefresh(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	svc := &ca.Service{Authority: c.Authority}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ln) }()
	t.Cleanup(func() {
		svc.Close()
		<-served
	})
	b := startBroker(t, c, "127.0.0.1", Config{Certmaster: ln.Addr().String(), CRLInterval: 100 * time.Millisecond})

	doomed := mustDial(t, b.ClientURL(), c.issue(gofunc.RoleMinion, "doomed.example.org"))
	closed := make(chan struct{})
	doomed.SetClosedHandler(func(*nats.Conn) { close(closed) })
	stays := mustDial(t, b.ClientURL(), c.issue(gofunc.RoleOverlord, "alice"))
	_, err = c.Revoke("doomed.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	select {
	case <-closed:
	case <-time.After(2 * time.Minute):
		t.Fatal("the revoked client is still connected")
	}
	stays.flush(t)
	if !stays.IsConnected() {
		t.Error("a client in good standing was dropped")
	}
}

// Recheck drops exactly the revoked connections and forgets closed ones.
func TestRecheck(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	brokerID := c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1")
	b := startBroker(t, c, "127.0.0.1", Config{Identity: brokerID})
	a := mustDial(t, b.ClientURL(), c.issue(gofunc.RoleMinion, "a.example.org"))
	mustDial(t, b.ClientURL(), c.issue(gofunc.RoleMinion, "b.example.org"))
	a.Close()
	for deadline := time.Now().Add(time.Minute); b.NumClients() != 1; {
		if time.Now().After(deadline) {
			t.Fatal("the closed client is still listed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := b.Recheck(); n != 0 {
		t.Errorf("Recheck dropped %d with nothing revoked", n)
	}
	if n := len(b.conns.snapshot()); n != 1 {
		t.Errorf("%d connections tracked, want 1 (the closed one forgotten)", n)
	}
	_, err := c.Revoke("b.example.org", ca.ReasonKeyCompromise)
	must(t, err)
	must(t, brokerID.SetCRL(c.crl()))
	if n := b.Recheck(); n != 1 {
		t.Errorf("Recheck dropped %d, want 1", n)
	}
}

// New refuses configurations that cannot work, with ErrConfig.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	brokerID := c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1")
	cases := map[string]Config{
		"no identity":          {},
		"minion identity":      {Identity: c.issue(gofunc.RoleMinion, "m1")},
		"bad listen":           {Identity: brokerID, Listen: "nowhere"},
		"bad port":             {Identity: brokerID, Listen: "127.0.0.1:99999"},
		"routes, no cluster":   {Identity: brokerID, Routes: []string{"nats://127.0.0.1:6222"}},
		"route without port":   {Identity: brokerID, ClusterListen: "127.0.0.1:0", Routes: []string{"nats://127.0.0.1"}},
		"route, wrong scheme":  {Identity: brokerID, ClusterListen: "127.0.0.1:0", Routes: []string{"http://127.0.0.1:6222"}},
		"route with password":  {Identity: brokerID, ClusterListen: "127.0.0.1:0", Routes: []string{"nats://u:p@127.0.0.1:6222"}},
		"leaf remote":          {Identity: brokerID, LeafRemotes: []string{"::"}},
		"jetstream, no store":  {Identity: brokerID, JetStream: true},
		"monitor not loopback": {Identity: brokerID, MonitorListen: "0.0.0.0:8222"},
	}
	for name, cfg := range cases {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: got %v, want ErrConfig", name, err)
		}
	}
}

// Start reports an address in use as ErrNotReady, with the reason.
func TestStartAddressInUse(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	b, err := New(Config{Identity: c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1"), Listen: ln.Addr().String()})
	must(t, err)
	err = b.Start(t.Context())
	if !errors.Is(err, ErrNotReady) {
		t.Fatalf("got %v, want ErrNotReady", err)
	}
	must(t, b.Shutdown(t.Context()))
}

// A second Shutdown returns once the first one's work is done, not when
// its context ends.
func TestShutdownTwice(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	b, err := New(Config{Identity: c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1"), Listen: "127.0.0.1:0"})
	must(t, err)
	must(t, b.Start(t.Context()))
	must(t, b.Shutdown(t.Context()))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
