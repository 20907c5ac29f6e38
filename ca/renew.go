package ca

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/pki"
)

// ErrExpired: a certificate is past its NotAfter.
var ErrExpired = errors.New("ca: certificate expired")

// Renew issues a new certificate for the holder of cert (which the
// caller has verified: the certmaster takes it from the mutual-TLS
// connection) with the public key of csrPEM: same name, role, SANs and
// minion address, no admin action. cert must be one this CA issued and
// still valid: not revoked (identity.ErrRevoked, a denial), not expired (ErrExpired). The
// old certificate stays valid until it expires or is revoked, so a
// holder that fails to store the new one keeps working.
func (a *Authority) Renew(cert *x509.Certificate, csrPEM []byte, source string) ([]byte, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	if err := cert.CheckSignatureFrom(a.cert); err != nil {
		return nil, fmt.Errorf("%w: %w", identity.ErrNotIssuedByCA, err)
	}
	role := identity.RoleOf(cert)
	if role == "" {
		return nil, fmt.Errorf("%w: %w", errNotAllowed, identity.ErrNoRole)
	}
	var out *x509.Certificate
	err = a.update(func(tx *txn) error {
		r := tx.ix.find(pki.SerialHex(cert.SerialNumber))
		switch {
		case r == nil:
			return fmt.Errorf("%w: serial %s is not in the index", ErrNotFound, pki.SerialHex(cert.SerialNumber))
		case r.revoked():
			return fmt.Errorf("%w: %w: %s serial %s", errNotAllowed, identity.ErrRevoked, r.Name, r.Serial)
		case !a.cfg.Now().Before(r.NotAfter):
			return fmt.Errorf("%w: %s serial %s", ErrExpired, r.Name, r.Serial)
		case r.Name != cert.Subject.CommonName || r.Role != role:
			return fmt.Errorf("identity: certificate %s does not match the index", r.Serial)
		}
		keyFP, err := identity.KeyFingerprint(csr.PublicKey)
		if err != nil {
			return err
		}
		tx.audit(event{Kind: KindRenew, Caller: r.Name, Role: string(r.Role), Serial: r.Serial, Remote: source,
			Details: map[string]string{"key_fingerprint": keyFP}})
		spec := signSpec{role: role, name: r.Name, pub: csr.PublicKey, dns: renewedDNSNames(tx.ix, r, cert.DNSNames), ips: cert.IPAddresses, addr: r.Addr, seen: r.Seen}
		out, err = a.issueLocked(tx, spec, event{Kind: KindSign, Remote: source,
			Details: map[string]string{"via": "renew", "renews": r.Serial}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return pki.Encode(pki.PEMCert, out.Raw), nil
}

// renewedDNSNames returns the DNS SANs a renewed certificate keeps. A
// minion certificate never keeps an extra name that another minion
// holds: versions before the fix for requested addresses turned an
// address's host into a DNS SAN, and renewal must not carry such a name
// forward.
func renewedDNSNames(ix *index, r *certRecord, names []string) []string {
	if r.Role != gofunc.RoleMinion {
		return names
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n != r.Name && ix.hasMinion(n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// hasMinion reports whether any minion certificate, valid or not, was
// issued for name.
func (ix *index) hasMinion(name string) bool {
	for _, c := range ix.named(strings.ToLower(name)) {
		if c.Role == gofunc.RoleMinion {
			return true
		}
	}
	return false
}
