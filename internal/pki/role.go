package pki

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"slices"

	"github.com/gofunc/gofunc"
)

// How a role is written into a certificate. The CA sets all three marks
// and RoleOf demands that they agree, so a certificate only has a role if
// this CA's signing code gave it one:
//
//   - Subject OU "gofunc-<role>" (readable with openssl, and Func's OU);
//   - a URI SAN "urn:gofunc:role:<role>" (the machine-readable mark, in the
//     style of SPIFFE IDs; an URI SAN rather than a private extension
//     because a private OID needs a registered arc and the 2.25 UUID arcs
//     do not fit crypto/x509's int-based extension OIDs);
//   - the extended key usages: certmaster = server auth only; the roles
//     that serve (minion, broker, delegate) server and client auth; every
//     other role (overlord, monitor, viewer, operator, admin) client auth
//     only, so it can never act as a TLS server.
//
// Nothing of a CSR's subject or extensions is copied, so a requester
// cannot mark itself as an overlord.
const (
	roleOUPrefix  = "gofunc-"
	roleURIPrefix = "urn:gofunc:role:"
)

// RoleOU is the subject OU that marks role.
func RoleOU(r gofunc.Role) string { return roleOUPrefix + string(r) }

// RoleURI is the URI SAN that marks role.
func RoleURI(r gofunc.Role) *url.URL {
	u, _ := url.Parse(roleURIPrefix + string(r))
	return u
}

// RoleEKU is the extended key usages of role.
func RoleEKU(r gofunc.Role) []x509.ExtKeyUsage {
	switch {
	case !r.Valid():
		return nil
	case r == gofunc.RoleCertmaster:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case r.Serves():
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
}

// ValidRole reports whether r is a role the CA issues.
func ValidRole(r gofunc.Role) bool { return r.Valid() }

// RoleOf returns the role the CA wrote into cert, or "" when the
// certificate carries no consistent gofunc role (its OU, role URI and key
// usages must all agree). RoleOf does not verify the signature: use it on
// certificates from a verified chain (identity.PeerFromConnState does).
func RoleOf(cert *x509.Certificate) gofunc.Role {
	if cert == nil || cert.IsCA {
		return ""
	}
	var role gofunc.Role
	for _, u := range cert.URIs {
		s := u.String()
		if len(s) > len(roleURIPrefix) && s[:len(roleURIPrefix)] == roleURIPrefix {
			if role != "" {
				return "" // two role marks: not something this CA issues
			}
			role = gofunc.Role(s[len(roleURIPrefix):])
		}
	}
	if !ValidRole(role) {
		return ""
	}
	if len(cert.Subject.OrganizationalUnit) != 1 || cert.Subject.OrganizationalUnit[0] != RoleOU(role) {
		return ""
	}
	if !slices.Equal(cert.ExtKeyUsage, RoleEKU(role)) || len(cert.UnknownExtKeyUsage) != 0 {
		return ""
	}
	return role
}

// TLS policy of every gofunc endpoint (minion, overlord, certmaster,
// enrollment client): TLS 1.3, or TLS 1.2 with ephemeral ECDH key
// exchange and an AEAD cipher only. Go offers CBC and SHA-1 suites for
// TLS 1.2 by default (ECDHE-ECDSA-AES128-SHA completed a handshake); they
// are dropped, with the RSA key exchange that has no forward secrecy.
// TLS 1.2 stays for clients that have no 1.3 yet (older Python and
// OpenSSL builds on long-lived servers). Every gofunc key is ECDSA, so
// only ECDSA suites are listed. TLS 1.3's own suites are all AEAD and
// are not configurable in crypto/tls.
var TLSCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSMinVersion is the oldest protocol version gofunc speaks.
const TLSMinVersion = tls.VersionTLS12
