package caller_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker/caller"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// A minion whose identity is replaced (SIGHUP reload, SetIdentity)
// reconnects to the broker with the new certificate by itself, and
// presents it again after the broker restarts, past the old one's
// expiry; its answers verify all along.
func TestDoorFollowsRenewedCertificate(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1, Subnet: "127.0.41"})
	e := &env{t: t, f: f}
	if _, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping"); err != nil {
		t.Fatal(err)
	}
	e.startBroker("127.0.0.1:0")
	m := f.Minions()[0]
	short := issueMinion(t, f, m.Name, 40*time.Second)
	if err := m.Server.SetIdentity(short); err != nil {
		t.Fatal(err)
	}
	d, err := door.Dial(t.Context(), []string{e.url}, door.Config{Server: m.Server, AuditPath: m.AuditPath, RenewCheck: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	e.waitPresented(m.Name, short)
	c := e.client(f.Admin())
	start := time.Now()
	ping := func(when string) {
		t.Logf("%s: %s", time.Since(start), when)
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if _, err := c.Targets(m.Name).Call(ctx, "test", "add", 1, 2); err != nil {
			t.Fatalf("%s: %v", when, err)
		}
	}
	ping("with the short-lived certificate")

	renewed := issueMinion(t, f, m.Name, time.Hour)
	if err := m.Server.SetIdentity(renewed); err != nil {
		t.Fatal(err)
	}
	e.waitPresented(m.Name, renewed) // reconnected at once, broker still up
	ping("renewed")

	// Past the old certificate's expiry, a broker restart: the
	// reconnection presents the new certificate.
	for time.Now().Before(short.Leaf().NotAfter.Add(time.Second)) {
		select {
		case <-t.Context().Done():
			return
		case <-time.After(time.Until(short.Leaf().NotAfter.Add(time.Second))):
		}
	}
	e.stopBroker()
	e.startBroker(e.listen)
	e.waitPresented(m.Name, renewed)
	ping("after the broker restarted")
}

// issueMinion issues a certificate for a minion named name, valid for
// validity, from the fleet's CA.
func issueMinion(t *testing.T, f *fleettest.Fleet, name string, validity time.Duration) *identity.Identity {
	t.Helper()
	id, err := f.CA.Issue(gofunc.RoleMinion, name, ca.IssueOptions{Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitPresented waits until the broker's client connection of minion
// name was made with id's certificate and has its subscriptions.
func (e *env) waitPresented(name string, id *identity.Identity) {
	e.t.Helper()
	sum := sha256.Sum256(id.Leaf().Raw)
	want := hex.EncodeToString(sum[:])
	deadline := time.Now().Add(time.Minute)
	var seen []string
	for time.Now().Before(deadline) {
		seen = seen[:0]
		cz, err := e.b.Server().Connz(&server.ConnzOptions{Username: true})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ci := range cz.Conns {
			if ci.Name != "minion "+name || len(ci.TLSPeerCerts) == 0 {
				continue
			}
			seen = append(seen, ci.TLSPeerCerts[0].CertSha256)
			// Subscribed again too (nats.go sends them after the
			// handshake), or a call would find no responders.
			if strings.EqualFold(ci.TLSPeerCerts[0].CertSha256, want) && ci.NumSubs > 0 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("the broker never saw %s with certificate serial %s (sha256 %s); it saw %v",
		name, id.Leaf().SerialNumber.Text(16), want, seen)
}

// An overlord revoked while its transport is connected is told why its
// calls fail once the broker refuses it (here a broker restarted with
// the new CRL): ErrRefused with the reason, not a bare "unreachable".
func TestRevokedOverlordIsToldWhy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fleettest.Config{Minions: 1, Subnet: "127.0.47"})
	m := e.f.Minions()[0]
	eve, err := e.f.CA.Issue(gofunc.RoleOverlord, "eve", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := overlord.New(overlord.WithIdentity(eve), overlord.WithMinions(overlord.Static{{Name: m.Name}}),
		overlord.WithHostTimeout(20*time.Second), overlord.WithTransport(e.transport(eve, caller.Options{AckTimeout: 2 * time.Second})))
	defer c.Close()
	res, _ := c.Targets(m.Name).Call(t.Context(), "test", "ping")
	if r := res[m.Name]; errors.Is(r.Err, caller.ErrRefused) || errors.Is(r.Err, overlord.ErrUnreachable) {
		t.Fatalf("before the revocation: %+v", r)
	}
	if _, err := e.f.CA.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := e.f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	e.stopBroker()
	e.startBrokerCRL(e.listen, crl)
	deadline := time.Now().Add(time.Minute)
	for {
		res, _ := c.Targets(m.Name).Call(t.Context(), "test", "ping")
		r := res[m.Name]
		if errors.Is(r.Err, caller.ErrRefused) {
			if !strings.Contains(r.Err.Error(), "refused this certificate") {
				t.Errorf("no reason: %v", r.Err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("a revoked overlord's call: %+v", r)
		}
	}
}
