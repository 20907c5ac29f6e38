package identity_test

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

// fakeCertmaster serves answer to every call, with a real certmaster
// certificate, and returns its address and a minion identity of the
// same CA.
func fakeCertmaster(t *testing.T, answer string) (string, *identity.Identity) {
	t.Helper()
	a, err := ca.Init(ca.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := a.Issue(gofunc.RoleCertmaster, "cm", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := a.Issue(gofunc.RoleMinion, "m1", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cm.ServerTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/xml")
		w.Write([]byte(answer))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), m
}

// The certmaster clients decode like the overlord: a fault is a
// *gofunc.Fault with its code; a broken or oversized answer is an error
// that is not a fault (Enroll retries those).
func TestClientAnswers(t *testing.T) {
	t.Parallel()
	fault := `<?xml version="1.0"?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>-32001</int></value></member>
<member><name>faultString</name><value><string>not allowed</string></value></member>
</struct></value></fault></methodResponse>`
	for _, tt := range []struct {
		name, answer string
		wantFault    bool
	}{
		{"fault", fault, true},
		{"not XML-RPC", "<html>oops</html>", false},
		{"wrong type", `<methodResponse><params><param><value><int>1</int></value></param></params></methodResponse>`, false},
		{"oversized", "<methodResponse>" + strings.Repeat(" ", 17<<20) + "</methodResponse>", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			addr, id := fakeCertmaster(t, tt.answer)
			err := identity.FetchCRL(t.Context(), id, addr)
			var f *gofunc.Fault
			if isFault := errors.As(err, &f); err == nil || isFault != tt.wantFault {
				t.Fatalf("FetchCRL = %v, want fault %v", err, tt.wantFault)
			}
			if tt.wantFault && !errors.Is(err, gofunc.ErrDenied) {
				t.Errorf("FetchCRL = %v, want a denial", err)
			}
		})
	}
}
