package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

// submitRequest files an enrollment request for name, as funcd does,
// and returns its key fingerprint as the CA lists it.
func submitRequest(t *testing.T, a *ca.Authority, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name}, DNSNames: []string{name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	res, err := a.Submit(context.Background(), ca.Request{CSR: csr, Name: name, Source: "127.0.0.9:5000"}, "")
	if err != nil || res.Status != ca.StatusPending {
		t.Fatalf("Submit(%s) = %+v, %v", name, res, err)
	}
	fp, err := identity.KeyFingerprint(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// fixtures are what the route matrix fills path parameters and forms
// with: a real job, a real pending request, a real certificate.
type fixtures struct {
	job, failedJob string
	pending        map[string]string // name -> key fingerprint
	last           string            // the last request sampled
	serial         string            // a certificate an admin may revoke
}

func (e *env) fixtures(t *testing.T) *fixtures {
	t.Helper()
	fx := &fixtures{pending: map[string]string{}}
	ok, err := e.ov.Targets("*").CallAsync(t.Context(), "test", "ping")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := e.ov.Targets("*").CallAsync(t.Context(), "test", "explode")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ok.ID, bad.ID} {
		if _, err := e.ov.WaitJob(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	fx.job, fx.failedJob = ok.ID, bad.ID
	spare, err := e.fleet.CA.Issue(gofunc.RoleViewer, "spare", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fx.serial = strings.ToLower(spare.Leaf().SerialNumber.Text(16))
	return fx
}

// sample fills a route's path parameters and its form for one request.
func (fx *fixtures) sample(t *testing.T, e *env, rt route) (path string, form url.Values) {
	t.Helper()
	form = url.Values{}
	params := map[string]string{"{$}": "", "{name}": "m1.test", "{id}": fx.job, "{file}": "app.css", "{serial}": fx.serial}
	switch rt.pattern() {
	case "POST /enrollment/requests/{name}/{action}":
		name := "new" + strings.ToLower(rand.Text()[:6]) + ".test"
		fx.pending[name] = submitRequest(t, e.fleet.CA, name)
		fx.last = name
		params["{name}"], params["{action}"] = name, "sign"
		form.Set("fingerprint", fx.pending[name])
	case "GET /enrollment/requests/{name}/{action}":
		name := "show" + strings.ToLower(rand.Text()[:6]) + ".test"
		submitRequest(t, e.fleet.CA, name)
		params["{name}"], params["{action}"] = name, "sign"
	case "POST /enrollment/certs/{serial}/revoke":
		form.Set("reason", "superseded")
	case "POST /jobs/{id}/rerun":
		params["{id}"] = fx.failedJob
	case "POST /run":
		form.Set("spec", "*")
		form.Set("module", "test")
		form.Set("method", "add")
		form.Set("action", "dry-run")
		form.Set("arg0", "2")
		form.Set("arg1", "3")
	case "GET /":
		params["{$}"] = ""
		return "/no/such/page", form
	}
	path = rt.path
	for k, v := range params {
		path = strings.ReplaceAll(path, k, url.PathEscape(v))
	}
	if strings.Contains(path, "{") {
		t.Fatalf("route %s: no sample for its parameters (%s): add one to fixtures.sample", rt.pattern(), path)
	}
	return path, form
}

// send makes rt's request as id (nil: no certificate).
func (e *env) send(t *testing.T, fx *fixtures, id *identity.Identity, rt route, header map[string]string) (*http.Response, string) {
	t.Helper()
	path, form := fx.sample(t, e, rt)
	var body *strings.Reader
	h := map[string]string{"Accept": "text/html"}
	if rt.method == "POST" {
		body = strings.NewReader(form.Encode())
		h["Content-Type"] = "application/x-www-form-urlencoded"
	} else {
		body = strings.NewReader("")
	}
	for k, v := range header {
		h[k] = v
	}
	if rt.stream {
		// A stream may never end (events are followed): its status and
		// headers are the answer.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, rt.method, e.srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := e.client(id).Do(req)
		if err != nil {
			return nil, err.Error()
		}
		resp.Body.Close()
		return resp, ""
	}
	return e.do(e.client(id), rt.method, path, body, h)
}

// wantStatus is what a role gets from a route: 2xx when its role is
// enough (404 for the catch-all), 403 when not.
func wantStatus(rt route, role gofunc.Role) int {
	switch {
	case !may(role, rt.need):
		return http.StatusForbidden
	case rt.path == "/":
		return http.StatusNotFound
	}
	return http.StatusOK
}

// The route x role matrix, made from the route table: no certificate is
// refused at the handshake, a revoked one too, a role that is not enough
// gets 403 (every POST for a viewer), and every route works for the role
// it names and those above.
// handshakeRefused reports whether a client's error is the server
// refusing its certificate. Under TLS 1.3 the client learns it only when
// it reads: as the server's alert, or as the connection the server
// closed (reset, EOF, closed) if the alert is lost in the race.
func handshakeRefused(err string) bool {
	for _, s := range []string{"tls", "certificate", "use of closed network connection", "connection reset", "EOF", "broken pipe"} {
		if strings.Contains(err, s) {
			return true
		}
	}
	return false
}

func TestRouteRoleMatrix(t *testing.T) {
	e := newEnv(t, envOptions{subnet: "127.0.11"})
	fx := e.fixtures(t)
	if len(e.dash.routes) < 15 {
		t.Fatalf("only %d routes in the table", len(e.dash.routes))
	}
	for _, rt := range e.dash.routes {
		if rank(rt.need) == 0 {
			t.Errorf("route %s has no policy", rt.pattern())
		}
		if rt.method != "GET" && rt.method != "POST" {
			t.Errorf("route %s: only GET and POST are served", rt.pattern())
		}
	}

	// No certificate, and a revoked one: refused at the handshake.
	revoked, err := e.fleet.CA.Issue(gofunc.RoleAdmin, "gone", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fleet.CA.Revoke("gone", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := e.fleet.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.self.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	for _, rt := range e.dash.routes {
		for who, id := range map[string]*identity.Identity{"no certificate": nil, "revoked": revoked} {
			if resp, body := e.send(t, fx, id, rt, nil); resp != nil {
				t.Errorf("%s, %s: got %s, want the handshake refused", rt.pattern(), who, resp.Status)
			} else if !handshakeRefused(body) {
				t.Errorf("%s, %s: %s", rt.pattern(), who, body)
			}
		}
	}

	for _, role := range []gofunc.Role{gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin} {
		for _, rt := range e.dash.routes {
			resp, body := e.send(t, fx, e.users[role], rt, nil)
			if resp == nil {
				t.Errorf("%s as %s: %s", rt.pattern(), role, body)
				continue
			}
			if want := wantStatus(rt, role); resp.StatusCode != want {
				t.Errorf("%s as %s: %s, want %d\n%s", rt.pattern(), role, resp.Status, want, clipText(body, 600))
			}
			if strings.HasPrefix(rt.pattern(), "POST /enrollment/requests/") {
				if signed := e.certOf(t, fx.last) != nil; signed != (role == gofunc.RoleAdmin) {
					t.Errorf("%s's Sign of %s: signed %v", role, fx.last, signed)
				}
			}
		}
	}
	// The admin's revocation was made.
	if c := e.certBySerial(t, fx.serial); c == nil || !c.Revoked {
		t.Errorf("admin's Revoke of %s: %+v", fx.serial, c)
	}
}

func (e *env) certOf(t *testing.T, name string) *ca.CertInfo {
	certs, err := e.fleet.CA.Signed()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.Name == name {
			return &c
		}
	}
	return nil
}

func (e *env) certBySerial(t *testing.T, serial string) *ca.CertInfo {
	certs, err := e.fleet.CA.Signed()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		if c.Serial == serial {
			return &c
		}
	}
	return nil
}

// Behind a TLS server that neither demands a certificate nor reads the
// CRL (an embedding program's), the handler itself answers 401 for no
// certificate, a foreign one or a revoked one, and 403 for a role that
// is not a dashboard's.
func TestHandlerChecksCertificatesItself(t *testing.T) {
	e := newEnv(t, envOptions{subnet: "127.0.12"})
	lax := httptest.NewUnstartedServer(e.dash)
	lax.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, Certificates: []tls.Certificate{*e.self.Certificate()}}
	lax.StartTLS()
	defer lax.Close()
	foreign, err := ca.Init(ca.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := foreign.Issue(gofunc.RoleAdmin, "stranger", ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	revoked, _ := e.fleet.CA.Issue(gofunc.RoleAdmin, "gone", ca.IssueOptions{})
	if _, err := e.fleet.CA.Revoke("gone", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, _ := e.fleet.CA.CRL()
	if err := e.self.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	overlordCert := e.fleet.Admin()
	for _, tc := range []struct {
		who  string
		id   *identity.Identity
		want int
	}{
		{"no certificate", nil, 401}, {"foreign CA", stranger, 401}, {"revoked", revoked, 401},
		{"overlord role", overlordCert, 403}, {"viewer", e.users[gofunc.RoleViewer], 200},
	} {
		cfg := e.tlsConfig(tc.id)
		tr := &http.Transport{TLSClientConfig: cfg}
		c := &http.Client{Transport: tr}
		req, _ := http.NewRequestWithContext(t.Context(), "GET", lax.URL+"/jobs", nil)
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.who, err)
		}
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.who, resp.Status, tc.want)
		}
	}
}

// A browser posting from another site is refused on every mutating route
// (an admin's certificate goes with it, as cookies would); the action is
// not taken. Every HTML response carries the CSP and frame-ancestors.
func TestCrossSiteAndHeaders(t *testing.T) {
	e := newEnv(t, envOptions{subnet: "127.0.13"})
	fx := e.fixtures(t)
	admin := e.users[gofunc.RoleAdmin]
	posts := 0
	for _, rt := range e.dash.routes {
		if rt.method != "POST" {
			continue
		}
		posts++
		for _, h := range []map[string]string{
			{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
			{"Origin": "https://evil.example"}, // an older browser: Origin alone
		} {
			resp, body := e.send(t, fx, admin, rt, h)
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Errorf("cross-site %s with %v: %v, want 403\n%s", rt.pattern(), h, resp, clipText(body, 300))
			}
		}
	}
	if posts < 4 {
		t.Fatalf("only %d POST routes", posts)
	}
	for name := range fx.pending {
		if e.certOf(t, name) != nil {
			t.Errorf("a cross-site POST signed %s", name)
		}
	}
	if c := e.certBySerial(t, fx.serial); c == nil || c.Revoked {
		t.Errorf("a cross-site POST revoked %s", fx.serial)
	}
	// A same-origin POST passes.
	for _, rt := range e.dash.routes {
		if rt.pattern() == "POST /run" {
			if resp, _ := e.send(t, fx, admin, rt, map[string]string{"Sec-Fetch-Site": "same-origin"}); resp == nil || resp.StatusCode != 200 {
				t.Errorf("same-origin POST /run: %v", resp)
			}
		}
	}

	frameAncestors := regexp.MustCompile(`(^|;)\s*frame-ancestors 'none'\s*(;|$)`)
	defaultSrc := regexp.MustCompile(`(^|;)\s*default-src 'self'\s*(;|$)`)
	for _, role := range []gofunc.Role{gofunc.RoleViewer, gofunc.RoleAdmin} {
		for _, rt := range e.dash.routes {
			if rt.method != "GET" {
				continue
			}
			resp, _ := e.send(t, fx, e.users[role], rt, nil)
			if resp == nil {
				t.Fatalf("%s: no response", rt.pattern())
			}
			ct := resp.Header.Get("Content-Type")
			csp := resp.Header.Get("Content-Security-Policy")
			if strings.HasPrefix(ct, "text/html") && (!defaultSrc.MatchString(csp) || !frameAncestors.MatchString(csp)) {
				t.Errorf("%s as %s (%s): CSP %q", rt.pattern(), role, resp.Status, csp)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("%s: no nosniff", rt.pattern())
			}
		}
	}
}
