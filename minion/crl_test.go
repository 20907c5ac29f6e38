package minion_test

import (
	"net"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/minion"
)

// A revoked overlord is refused by a real minion once the minion's own
// CRL refresh (Server.Certmaster, against a real certmaster service) has
// run: within one refresh interval plus one fetch of the revocation
// (see the package documentation). The test waits for the new CRL to be
// installed rather than timing it, then checks that the overlord's very
// next call is refused, on the connection it already had and on a new
// one, while another overlord is still served.
func TestRevokedOverlordRefusedAfterCRLRefresh(t *testing.T) {
	// The certmaster's listener exists before the minion starts; it
	// serves once the CA does (the first fetch waits in the backlog).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const refresh = 50 * time.Millisecond
	e := start(t, func(s *minion.Server) { s.Certmaster, s.CRLInterval = ln.Addr().String(), refresh })
	svc := &ca.Service{Authority: e.authority}
	served := make(chan error, 1)
	go func() { served <- svc.Serve(ln) }()
	t.Cleanup(func() {
		svc.Close()
		<-served
	})
	eventually(t, "the first CRL fetch", func() bool { return e.id.CRLNumber() >= 1 })

	eve := e.client(gofunc.RoleOverlord, "eve")
	admin := e.client(gofunc.RoleOverlord, "admin")
	defer eve.CloseIdleConnections()
	if got, err := e.callKeep(eve, "test.ping"); err != nil || got != true {
		t.Fatalf("eve before the revocation: %v, %v", got, err)
	}

	before := e.id.CRLNumber()
	if _, err := e.authority.Revoke("eve", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the minion to install the CRL listing eve", func() bool { return e.id.CRLNumber() > before })

	// The kept-alive connection predates the revocation.
	_, err = e.callKeep(eve, "test.ping")
	wantFault(t, "eve's next call on her open connection", err, gofunc.CodeDenied, "revoked")
	eve.CloseIdleConnections()
	if _, err := e.call(eve, "test.ping"); err == nil {
		t.Error("eve was served on a new connection after the CRL refresh")
	}
	if got, err := e.call(admin, "test.ping"); err != nil || got != true {
		t.Errorf("admin after eve's revocation: %v, %v", got, err)
	}
	var denied bool
	for _, r := range e.records() {
		denied = denied || (r.Caller == "eve" && r.Outcome == "denied")
	}
	if !denied {
		t.Error("eve's refused call is not in the audit log as denied")
	}
}
