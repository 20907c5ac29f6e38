package web

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// User is the person a request comes from, as their certificate says.
type User struct {
	Name   string      `json:"name"`
	Role   gofunc.Role `json:"role"`
	Serial string      `json:"serial"`
}

// peer is the user as the ACL judges them.
func (u User) peer() gofunc.Peer { return gofunc.Peer{Name: u.Name, Role: u.Role, Serial: u.Serial} }

// OnBehalfOf is how minions and the overlord's audit log name the user:
// "name@role".
func (u User) OnBehalfOf() string { return u.Name + "@" + string(u.Role) }

// rank orders the dashboard's roles: each may do what the ones before it
// may. Other roles rank 0 and may do nothing here.
func rank(r gofunc.Role) int {
	switch r {
	case gofunc.RoleViewer:
		return 1
	case gofunc.RoleOperator:
		return 2
	case gofunc.RoleAdmin:
		return 3
	}
	return 0
}

// may reports whether a user of role has what need asks for.
func may(role, need gofunc.Role) bool { return rank(role) > 0 && rank(role) >= rank(need) }

// authError is a request the dashboard refuses for who sent it.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// Authentication and authorization failures.
var (
	errNoCertificate = &authError{http.StatusUnauthorized,
		"a client certificate from this fleet's CA is required (certmaster issue --role viewer|operator|admin)"}
	errUntrusted = &authError{http.StatusUnauthorized, "the client certificate is not one this fleet's CA issued"}
	errRevoked   = &authError{http.StatusUnauthorized, "the client certificate has been revoked"}
)

// identify returns the user r comes from: the client certificate of its
// connection, verified against the dashboard's CA (whatever TLS server
// it came through), not revoked, with a dashboard role. The CRL is
// checked per request, so a revocation also ends connections made
// before it.
func (d *Dashboard) identify(r *http.Request) (User, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return User{}, errNoCertificate
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: d.roots, Intermediates: inter, CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return User{}, errUntrusted
	}
	if d.id.Revoked(leaf) {
		return User{}, errRevoked
	}
	u := User{Name: leaf.Subject.CommonName, Role: identity.RoleOf(leaf), Serial: fmt.Sprintf("%x", leaf.SerialNumber)}
	if rank(u.Role) == 0 {
		return User{}, &authError{http.StatusForbidden, fmt.Sprintf(
			"%s holds a %q certificate: the dashboard takes viewer, operator and admin certificates", u.Name, u.Role)}
	}
	return u, nil
}

// csp is every response's Content-Security-Policy: scripts, styles and
// connections from the dashboard itself only (no inline script), never
// framed (the Sign button cannot be clickjacked), forms posted only
// here.
const csp = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// secureHeaders sets the headers every response carries.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// maxFormBytes bounds a posted form.
const maxFormBytes = 1 << 20

// guard authorizes one route: the user must be known and hold the
// route's role; a form is read within maxFormBytes.
func (d *Dashboard) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := d.identify(r)
		if err != nil {
			var ae *authError
			errors.As(err, &ae)
			d.log.Info("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", ae.msg)
			d.fail(w, r, User{}, ae.status, ae.msg)
			return
		}
		if !may(u.Role, rt.need) {
			d.log.Info("request denied", "path", r.URL.Path, "user", u.Name, "role", u.Role, "need", rt.need)
			d.fail(w, r, u, http.StatusForbidden, fmt.Sprintf("%s is a %s: this needs the %s role", u.Name, u.Role, rt.need))
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				d.fail(w, r, u, http.StatusBadRequest, "bad form: "+err.Error())
				return
			}
		}
		rt.handle(w, r, u)
	})
}
