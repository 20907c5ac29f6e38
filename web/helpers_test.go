package web

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/sqlitejobs"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is a dashboard over a real fleet: a CA, minions on loopback, the
// dashboard's own delegate certificate, a SQLite job store, an overlord
// audit log, and a TLS server asking browsers for certificates.
type env struct {
	t         *testing.T
	fleet     *fleettest.Fleet
	dash      *Dashboard
	srv       *httptest.Server
	ov        *overlord.Client
	store     *sqlitejobs.Store
	auditPath string
	self      *identity.Identity // the dashboard's delegate certificate
	users     map[gofunc.Role]*identity.Identity
}

type envOptions struct {
	minions int
	subnet  string
	acl     *minion.ACL // the dashboard's
	modules func(name string, srv *minion.Server) error
	// events gives each minion an event journal (fleettest.Config.Events).
	events bool
	// logs are audit logs the dashboard reads besides its own.
	logs []AuditLog
	// config, if set, adjusts the dashboard's configuration.
	config func(*Config)
}

// fleetACL lets the fleet's overlord call anything and the dashboard's
// certificate (funcweb, role delegate) everything but what is dangerous.
func fleetACL(t testing.TB) *minion.ACL {
	acl, err := minion.NewACL(
		minion.Rule{Identity: "*", Role: gofunc.RoleOverlord, Methods: []string{"*"}},
		minion.Rule{Identity: "funcweb", Role: gofunc.RoleDelegate, Methods: []string{"*"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return acl
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.minions == 0 {
		o.minions = 3
	}
	f := fleettest.Start(t, fleettest.Config{Minions: o.minions, Subnet: o.subnet, ACL: fleetACL(t), Modules: o.modules, Events: o.events})
	e := &env{t: t, fleet: f, users: map[gofunc.Role]*identity.Identity{}}
	var err error
	e.self, err = f.CA.Issue(gofunc.RoleDelegate, "funcweb", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []gofunc.Role{gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin} {
		if e.users[role], err = f.CA.Issue(role, string(role)+"-user", ca.IssueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	e.auditPath = filepath.Join(dir, "audit.log")
	trail := &audit.Shared{Path: e.auditPath}
	e.store = sqlitejobs.New(filepath.Join(dir, sqlitejobs.FileName))
	var list overlord.Static
	for _, m := range f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name, Addr: m.Addr})
	}
	e.ov = overlord.New(overlord.WithIdentity(e.self), overlord.WithMinions(list), overlord.WithJobStore(e.store),
		overlord.WithAudit(trail), overlord.WithHostTimeout(20*time.Second))
	cfg := Config{Overlord: e.ov, Jobs: e.store, CA: LocalCA(f.CA), ACL: o.acl,
		AuditLogs: append([]AuditLog{{Name: "overlord", Path: e.auditPath}}, o.logs...), StatusTimeout: 10 * time.Second,
		PollInterval: 50 * time.Millisecond}
	if o.config != nil {
		o.config(&cfg)
	}
	e.dash, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewUnstartedServer(e.dash)
	e.srv.TLS = e.self.ServerTLSConfig()
	// httptest adds its own certificate unless one is given, and a
	// client dialling an IP sends no SNI: give the dashboard's.
	e.srv.TLS.Certificates = []tls.Certificate{*e.self.Certificate()}
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point of some tests
	e.srv.StartTLS()
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
		e.dash.Close()
		e.ov.Close()
		e.store.Close()
	})
	return e
}

// tlsConfig is a browser's TLS configuration with id's certificate (nil:
// none), trusting the fleet's CA.
func (e *env) tlsConfig(id *identity.Identity) *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(e.fleet.CA.Certificate())
	cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	if id != nil {
		cfg.Certificates = []tls.Certificate{*id.Certificate()}
	}
	return cfg
}

// client is an HTTP client presenting id's certificate.
func (e *env) client(id *identity.Identity) *http.Client {
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(id)}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}
}

// do sends a request as role (empty: no certificate) and returns the
// response with its body read.
func (e *env) do(c *http.Client, method, path string, body io.Reader, header map[string]string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// getJSON fetches path's JSON twin as id into v.
func (e *env) getJSON(id *identity.Identity, path string, v any) int {
	e.t.Helper()
	resp, body := e.do(e.client(id), "GET", path, nil, map[string]string{"Accept": "application/json"})
	if resp == nil {
		e.t.Fatalf("GET %s: %s", path, body)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(body), v); err != nil {
			e.t.Fatalf("GET %s: %v in %q", path, err, body)
		}
	}
	return resp.StatusCode
}

// certmaster serves the fleet's CA on loopback (for enrollments).
func (e *env) certmaster() string {
	e.t.Helper()
	svc := &ca.Service{Authority: e.fleet.CA}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Serve(ln) }()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = svc.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

func TestNaturalCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"m2.test", "m10.test", -1}, {"m10.test", "m9.test", 1}, {"web", "web1", -1}, {"a01", "a1", 0},
		{"db2", "web1", -1}, {"m1b", "m1a", 1}, {"", "", 0},
	} {
		if got := naturalCompare(tc.a, tc.b); got != tc.want {
			t.Errorf("naturalCompare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
