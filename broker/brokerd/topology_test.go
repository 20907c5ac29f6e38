package brokerd

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
)

// eventually polls cond until it holds, failing the test after a
// minute: route and interest propagation between brokers is
// asynchronous and has no event to wait on.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// callUntilReceived publishes to subj from pub until sub gets one of
// them: the subscription's interest reaches the publisher's broker some
// time after the subscription.
func callUntilReceived(t *testing.T, pub *client, subj string, sub *nats.Subscription) *nats.Msg {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); {
		must(t, pub.Publish(subj, []byte("call")))
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			return m
		}
	}
	t.Fatalf("nothing crossed to %s", subj)
	return nil
}

// Three brokers form a cluster from routes to the first one (the rest
// of the mesh is gossiped), and a call published on one broker reaches
// a minion on another, its answer coming back across the routes.
func TestThreeBrokerCluster(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	first := startBroker(t, c, "127.0.0.2", Config{ClusterListen: "127.0.0.2:0"})
	routes := []string{first.ClusterURL()}
	second := startBroker(t, c, "127.0.0.3", Config{ClusterListen: "127.0.0.3:0", Routes: routes})
	third := startBroker(t, c, "127.0.0.4", Config{ClusterListen: "127.0.0.4:0", Routes: routes})
	for _, b := range []*Broker{first, second, third} {
		eventually(t, "a full mesh", func() bool { return len(b.Peers()) == 2 })
	}

	minion := mustDial(t, third.ClientURL(), c.issue(gofunc.RoleMinion, "web1.example.org"))
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	alice := mustDial(t, first.ClientURL(), aliceID)
	calls, err := minion.SubscribeSync(subject(t, broker.CallSubject, "web1.example.org"))
	must(t, err)
	answers, err := alice.SubscribeSync(broker.ReplyInbox(aliceID.Leaf()) + ".>")
	must(t, err)
	minion.flush(t)
	alice.flush(t)
	callUntilReceived(t, alice, calls.Subject, calls)
	callUntilReceived(t, minion, broker.ReplyInbox(aliceID.Leaf())+".1", answers)

	// The permissions hold across routes: a minion on the second broker
	// cannot read the calls of one on the third.
	spy := mustDial(t, second.ClientURL(), c.issue(gofunc.RoleMinion, "web2.example.org"))
	_, err = spy.SubscribeSync(calls.Subject)
	must(t, err)
	spy.flush(t)
	spy.waitViolation(t, calls.Subject)
}

// A site broker connects to the hub as a leaf node: calls from an
// overlord on the hub reach a minion behind the site broker, and its
// answers come back.
func TestSiteLeafNode(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	hub := startBroker(t, c, "127.0.0.5", Config{LeafListen: "127.0.0.5:0"})
	if hub.LeafURL() == "" {
		t.Fatal("no leaf URL")
	}
	site := startBroker(t, c, "127.0.0.6", Config{LeafRemotes: []string{hub.LeafURL()}})
	eventually(t, "the leaf connection", func() bool { return hub.NumLeafNodes() == 1 && site.NumLeafNodes() == 1 })

	minion := mustDial(t, site.ClientURL(), c.issue(gofunc.RoleMinion, "pos1.shop.example.org"))
	aliceID := c.issue(gofunc.RoleOverlord, "alice")
	alice := mustDial(t, hub.ClientURL(), aliceID)
	mon := mustDial(t, hub.ClientURL(), c.issue(gofunc.RoleMonitor, "prometheus"))
	calls, err := minion.SubscribeSync(subject(t, broker.CallSubject, "pos1.shop.example.org"))
	must(t, err)
	bcast, err := minion.SubscribeSync(broker.BroadcastAll)
	must(t, err)
	answers, err := alice.SubscribeSync(broker.ReplyInbox(aliceID.Leaf()) + ".>")
	must(t, err)
	events, err := mon.SubscribeSync("gf.v1.evt.>")
	must(t, err)
	for _, cl := range []*client{minion, alice, mon} {
		cl.flush(t)
	}
	callUntilReceived(t, alice, calls.Subject, calls)
	callUntilReceived(t, alice, broker.BroadcastAll, bcast)
	callUntilReceived(t, minion, broker.ReplyInbox(aliceID.Leaf())+".1", answers)
	callUntilReceived(t, minion, subject(t, broker.EventSubject, "pos1.shop.example.org")+".hello", events)

	// A site may not send calls into the hub: an overlord connected to
	// the site broker does not reach a minion on the hub. Its call goes
	// over the leaf connection before the site minion's next event, so
	// once the event has reached the hub and the hub minion's connection
	// is flushed, the call would be there.
	hubMinion := mustDial(t, hub.ClientURL(), c.issue(gofunc.RoleMinion, "core1.example.org"))
	hubCalls, err := hubMinion.SubscribeSync(subject(t, broker.CallSubject, "core1.example.org"))
	must(t, err)
	hubMinion.flush(t)
	callUntilReceived(t, alice, hubCalls.Subject, hubCalls) // the hub's own path works
	siteOverlord := mustDial(t, site.ClientURL(), c.issue(gofunc.RoleOverlord, "mallory"))
	for i := 0; i < 10; i++ {
		must(t, siteOverlord.Publish(hubCalls.Subject, []byte("from the site")))
	}
	siteOverlord.flush(t)
	callUntilReceived(t, minion, subject(t, broker.EventSubject, "pos1.shop.example.org")+".bye", events)
	hubMinion.flush(t)
	for {
		m, err := hubCalls.NextMsg(10 * time.Millisecond)
		if err != nil {
			break
		}
		if string(m.Data) == "from the site" {
			t.Fatal("a call from the site crossed into the hub")
		}
	}
}

// fakeConn is the connection nats-server hands an authenticator: a
// real verified certificate, a chosen kind.
type fakeConn struct {
	cert *x509.Certificate
	kind int
	user *server.User
}

func (f *fakeConn) GetOpts() *server.ClientOpts { return &server.ClientOpts{} }
func (f *fakeConn) GetTLSConnectionState() *tls.ConnectionState {
	if f.cert == nil {
		return &tls.ConnectionState{}
	}
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{f.cert}, VerifiedChains: [][]*x509.Certificate{{f.cert}}}
}
func (f *fakeConn) RegisterUser(u *server.User) { f.user = u }
func (f *fakeConn) RemoteAddress() net.Addr     { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (f *fakeConn) GetNonce() []byte            { return nil }
func (f *fakeConn) Kind() int                   { return f.kind }
func (f *fakeConn) GetID() uint64               { return 1 }

// Routes and leaf nodes are for broker certificates only; clients are
// not brokers; nothing unverified gets in.
func TestAuthenticatorsByKind(t *testing.T) {
	t.Parallel()
	c := newCA(t)
	b, err := New(Config{Identity: c.issue(gofunc.RoleBroker, "broker1", "127.0.0.1"), Listen: "127.0.0.1:0"})
	must(t, err)
	brokerCert := c.issue(gofunc.RoleBroker, "broker2", "127.0.0.1").Leaf()
	minionCert := c.issue(gofunc.RoleMinion, "web1").Leaf()
	overlordCert := c.issue(gofunc.RoleOverlord, "alice").Leaf()
	cases := []struct {
		auth server.Authentication
		cert *x509.Certificate
		kind int
		want bool
	}{
		{&routeAuth{b}, brokerCert, server.ROUTER, true},
		{&routeAuth{b}, minionCert, server.ROUTER, false},
		{&routeAuth{b}, overlordCert, server.ROUTER, false},
		{&routeAuth{b}, nil, server.ROUTER, false},
		{&clientAuth{b}, brokerCert, server.LEAF, true},
		{&clientAuth{b}, minionCert, server.LEAF, false},
		{&clientAuth{b}, overlordCert, server.LEAF, false},
		{&clientAuth{b}, brokerCert, server.CLIENT, false},
		{&clientAuth{b}, minionCert, server.CLIENT, true},
		{&clientAuth{b}, minionCert, server.GATEWAY, false},
		{&clientAuth{b}, nil, server.CLIENT, false},
	}
	for _, tc := range cases {
		f := &fakeConn{cert: tc.cert, kind: tc.kind}
		name := "none"
		if tc.cert != nil {
			name = tc.cert.Subject.CommonName
		}
		if got := tc.auth.Check(f); got != tc.want {
			t.Errorf("%T kind %d %s: admitted %v, want %v", tc.auth, tc.kind, name, got, tc.want)
		}
		if tc.want && tc.kind != server.ROUTER && (f.user == nil || f.user.Permissions == nil) {
			t.Errorf("%T kind %d %s: admitted without permissions", tc.auth, tc.kind, name)
		}
	}
}
