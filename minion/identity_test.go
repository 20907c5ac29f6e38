package minion_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
)

// whoami answers with the caller its context carries.
type whoami struct{}

func (whoami) Name(ctx context.Context, token string) (string, error) {
	p, ok := gofunc.PeerFromContext(ctx)
	if !ok {
		return "", errors.New("no peer")
	}
	return p.Name + "|" + string(p.Role) + "|" + token, nil
}

// Many callers with different identities and permissions, at once, on
// kept-alive connections: every answer, every denial and every audit
// record names the caller that made the call, never another.
func TestConcurrentCallersNeverCross(t *testing.T) {
	const identities, calls = 8, 50
	acl, err := minion.ParseACL("t.acl", strings.NewReader("user[0-3]@overlord = whoami.*\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minion.Server) {
		mustRegister(t, s, "whoami", whoami{})
		s.ACL = acl
	})
	clients := make([]*namedClient, identities)
	for i := range clients {
		clients[i] = &namedClient{name: fmt.Sprintf("user%d", i), c: e.client(gofunc.RoleOverlord, fmt.Sprintf("user%d", i))}
		t.Cleanup(clients[i].c.CloseIdleConnections)
	}
	var wg sync.WaitGroup
	errs := make(chan error, identities*calls)
	for i, cl := range clients {
		allowed := i < 4
		for g := range 2 { // two goroutines per identity share its connections
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range calls / 2 {
					token := fmt.Sprintf("%s-%d-%d", cl.name, g, n)
					got, err := e.callKeep(cl.c, "whoami.name", token)
					switch {
					case allowed && (err != nil || got != cl.name+"|overlord|"+token):
						errs <- fmt.Errorf("%s: whoami.name(%s) = %v, %v", cl.name, token, got, err)
					case !allowed:
						var f *gofunc.Fault
						if !errors.As(err, &f) || f.Code != gofunc.CodeDenied || !strings.Contains(f.Message, cl.name+" (overlord)") {
							errs <- fmt.Errorf("%s: whoami.name = %v, %v; want a denial naming the caller", cl.name, got, err)
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	// Refusal records are rate limited per caller: the denials beyond
	// the limit are counted in call.suppressed records, per caller,
	// written at the latest when the server stops.
	e.stop()
	starts, denials := 0, 0
	owners := map[string]string{} // call id -> the identity the token names
	for _, r := range e.records() {
		if r.Kind == "call.suppressed" {
			n, err := strconv.Atoi(r.Details["denied"])
			if err != nil || r.Caller < "user4" || r.Role != "overlord" || r.Details["methods"] != "whoami.name" {
				t.Errorf("record %d = %+v, want a count of denials of one of the callers denied", r.Seq, r)
			}
			denials += n
			continue
		}
		if r.Kind != "call.end" {
			if len(r.Args) != 1 {
				t.Fatalf("record %d has args %v", r.Seq, r.Args)
			}
			owners[r.CallID], _, _ = strings.Cut(r.Args[0].(string), "-")
		}
		if owner := owners[r.CallID]; r.Caller != owner {
			t.Errorf("record %d (%s) names caller %q for a call made by %q", r.Seq, r.Kind, r.Caller, owner)
		}
		if r.Kind == "call.end" && r.Outcome != "ok" {
			t.Errorf("record %d: call %s ended %s", r.Seq, r.CallID, r.Outcome)
		}
		switch r.Kind {
		case "call.start":
			starts++
		case "call.denied":
			denials++
		}
	}
	if starts != identities/2*calls || denials != identities/2*calls {
		t.Errorf("audit has %d starts and %d denials, want %d each", starts, denials, identities/2*calls)
	}
}

type namedClient struct {
	name string
	c    *http.Client
}

// Revoking a certificate cuts off even a connection made before: the
// CRL is checked on every request, not only at the handshake.
func TestRevocationAppliesToOpenConnections(t *testing.T) {
	e := start(t, nil)
	mallory, err := e.authority.Issue(gofunc.RoleOverlord, "mallory", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := httpClient(mallory.ClientTLSConfig("m1.test"))
	defer c.CloseIdleConnections()
	if _, err := e.callKeep(c, "test.ping"); err != nil {
		t.Fatal(err)
	}
	e.revoke("mallory")
	_, err = e.callKeep(c, "test.ping")
	wantFault(t, "test.ping after revocation", err, gofunc.CodeDenied, "revoked")
	recs := e.records()
	if last := recs[len(recs)-1]; last.Caller != "mallory" || last.Code != int(gofunc.CodeDenied) {
		t.Errorf("last record = %+v, want mallory's refusal", last)
	}
}

// SetIdentity swaps the minion's certificate and CRL: new connections
// see the new certificate, and the new CRL applies to every request.
func TestSetIdentityReloads(t *testing.T) {
	e := start(t, nil)
	admin := e.identity(gofunc.RoleOverlord, "admin")
	if _, err := e.call(httpClient(admin.ClientTLSConfig("m1.test")), "test.ping"); err != nil {
		t.Fatal(err)
	}

	// The CA revokes admin and re-issues the minion's certificate; the
	// minion reads its directory again, as funcd does on SIGHUP.
	if _, err := e.authority.Revoke("admin", 0); err != nil {
		t.Fatal(err)
	}
	renewed, err := e.authority.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := e.authority.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := renewed.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(e.dir, "renewed")
	if err := renewed.Save(dir); err != nil {
		t.Fatal(err)
	}
	reloaded, err := identity.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.srv.SetIdentity(reloaded); err != nil {
		t.Fatal(err)
	}
	if e.srv.CurrentIdentity() != reloaded {
		t.Fatal("CurrentIdentity is not the identity set")
	}
	if err := e.srv.SetIdentity(nil); !errors.Is(err, minion.ErrNoIdentity) {
		t.Fatalf("SetIdentity(nil) = %v", err)
	}

	other := e.identity(gofunc.RoleOverlord, "other")
	conn, err := tls.Dial("tcp", e.addr, other.ClientTLSConfig("m1.test"))
	if err != nil {
		t.Fatal(err)
	}
	served := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if served.SerialNumber.Cmp(reloaded.Leaf().SerialNumber) != 0 {
		t.Errorf("new connections get serial %x, want the reloaded %x", served.SerialNumber, reloaded.Leaf().SerialNumber)
	}
	_, err = e.call(httpClient(admin.ClientTLSConfig("m1.test")), "test.ping")
	if err == nil {
		t.Fatal("a revoked caller was served after the reload")
	}
}
