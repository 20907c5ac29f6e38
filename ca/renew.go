package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/pki"
)

// ErrExpired: a certificate is past its NotAfter.
var ErrExpired = errors.New("ca: certificate expired")

// Renewal refusals. Each is a fault a renewing holder receives.
var (
	// ErrNotDue: the certificate is not two thirds into its lifetime
	// yet, and the admin granted no re-key (AllowRekey).
	ErrNotDue = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: renewal not due yet"}
	// ErrAlreadyRenewed: the certificate has a valid renewal already. A
	// holder renews once; a second renewal of the same certificate means
	// its key is in two hands (or the holder lost the first renewal), and
	// needs the admin (AllowRekey).
	ErrAlreadyRenewed = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: certificate already renewed"}
	// ErrTooManyCertificates: the name holds Config.MaxLive valid
	// certificates of its role already.
	ErrTooManyCertificates = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: too many valid certificates for the name"}
)

// Renew issues a new certificate for the holder of cert (which the
// caller has verified: the certmaster takes it from the mutual-TLS
// connection) with the public key of csrPEM: same name, role, SANs and
// minion address, no admin action. The new certificate records cert as
// its parent, so revoking cert revokes it too.
//
// cert must be one this CA issued and still valid (not revoked: a
// denial; not expired: ErrExpired), due for renewal (two thirds into its
// lifetime, else ErrNotDue) and not renewed before (ErrAlreadyRenewed),
// and the name must hold fewer than Config.MaxLive valid certificates
// (ErrTooManyCertificates). The old certificate stays valid until it
// expires or is revoked, so a holder that fails to store the new one
// keeps working; it has a third of its lifetime left at most.
//
// When the admin allowed a re-key of the name (AllowRekey), the renewal
// is accepted whenever it comes, and every other valid certificate of
// the name and role is revoked (reason superseded): a re-key is how a
// holder that suspects its key replaces it.
func (a *Authority) Renew(ctx context.Context, cert *x509.Certificate, csrPEM []byte, source string) ([]byte, error) {
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
	err = a.update(ctx, func(tx *txn) error {
		r := tx.ix.find(pki.SerialHex(cert.SerialNumber))
		switch {
		case r == nil:
			return fmt.Errorf("%w: serial %s is not in the index", ErrNotFound, pki.SerialHex(cert.SerialNumber))
		case r.revoked():
			return fmt.Errorf("%w: %w: %s serial %s", errNotAllowed, identity.ErrRevoked, r.Name, r.Serial)
		case !a.cfg.Now().Before(r.NotAfter):
			return fmt.Errorf("%w: %s serial %s", ErrExpired, r.Name, r.Serial)
		case r.Name != cert.Subject.CommonName || r.Role != role:
			return fmt.Errorf("ca: certificate %s does not match the index", r.Serial)
		}
		keyFP, err := pki.KeyFingerprint(csr.PublicKey)
		if err != nil {
			return err
		}
		ev := event{Kind: KindRenew, Caller: r.Name, Role: string(r.Role), Serial: r.Serial, Remote: source,
			Details: map[string]string{"key_fingerprint": keyFP}}
		rekey := tx.ix.rekeyAllowed(r.Name, r.Role, a.cfg.Now())
		if err := a.checkRenewal(tx.ix, r, rekey); err != nil {
			ev.Outcome, ev.Error = audit.OutcomeDenied, err.Error()
			tx.refusal(ev)
			a.logger().Warn("renewal refused", "name", r.Name, "role", r.Role, "serial", r.Serial, "source", source, "error", err)
			return err
		}
		if rekey {
			ev.Details["rekey"] = "admin"
		}
		tx.audit(ev)
		spec := signSpec{role: role, name: r.Name, pub: csr.PublicKey, dns: renewedDNSNames(tx.ix, r, cert.DNSNames),
			ips: cert.IPAddresses, addr: r.Addr, seen: r.Seen, parent: r.Serial}
		parent, name := r.Serial, r.Name
		if out, err = a.issueLocked(tx, spec, event{Kind: KindSign, Remote: source,
			Details: map[string]string{"via": "renew", "renews": parent}}); err != nil {
			return err
		}
		if rekey {
			return a.supersedeLocked(tx, name, role, pki.SerialHex(out.SerialNumber))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCert, out.Raw), nil
}

// checkRenewal applies Renew's limits to r (rekey: the admin allowed a
// re-key, which lifts all but the cap).
func (a *Authority) checkRenewal(ix *index, r *certRecord, rekey bool) error {
	now := a.cfg.Now()
	if !rekey {
		if at := renewAt(r); now.Before(at) {
			return fmt.Errorf("%w: %s serial %s is due at %s (ask the admin for certmaster rekey to renew early)",
				ErrNotDue, r.Name, r.Serial, at.UTC().Format(time.RFC3339))
		}
		for _, c := range ix.lineage(r)[1:] {
			if c.valid(now) {
				return fmt.Errorf("%w: %s serial %s was renewed as serial %s", ErrAlreadyRenewed, r.Name, r.Serial, c.Serial)
			}
		}
		return a.checkLive(ix, r.Name, r.Role)
	}
	return nil
}

// checkLive refuses another certificate for name in role when it holds
// Config.MaxLive valid ones already.
func (a *Authority) checkLive(ix *index, name string, role gofunc.Role) error {
	n := 0
	for _, c := range ix.named(name) {
		if c.Role == role && c.valid(a.cfg.Now()) {
			n++
		}
	}
	if n >= a.cfg.MaxLive {
		return fmt.Errorf("%w: %s holds %d valid %s certificates, the limit is %d; revoke some first",
			ErrTooManyCertificates, name, n, role, a.cfg.MaxLive)
	}
	return nil
}

// renewAt is identity.RenewAt for an index record.
func renewAt(r *certRecord) time.Time {
	life := r.NotAfter.Sub(r.NotBefore)
	return r.NotBefore.Add(life / 3 * 2)
}

// supersedeLocked revokes, with reason superseded, every valid
// certificate of name and role but keep, consumes the name's re-key
// grant and makes a new CRL.
func (a *Authority) supersedeLocked(tx *txn, name string, role gofunc.Role, keep string) error {
	now := a.cfg.Now()
	for _, c := range tx.ix.named(name) {
		if c.Role != role || c.Serial == keep || !c.valid(now) {
			continue
		}
		if err := a.revokeLocked(tx, c, ReasonSuperseded, event{Kind: KindRevoke, Caller: c.Name, Role: string(c.Role),
			Serial: c.Serial, Details: map[string]string{"reason": ReasonSuperseded.String(), "superseded_by": keep}}); err != nil {
			return err
		}
	}
	if err := tx.record(entry{Op: opRekey, Name: name, Role: role}); err != nil {
		return err
	}
	_, err := a.makeCRL(tx)
	return err
}

// AllowRekey lets the holder of name's certificates in role ("" is the
// name's own role) renew once within the given time, however early and
// even if it renewed before; that renewal then revokes every other valid
// certificate of the name and role (reason superseded). It is the
// admin's forced re-key (certmaster rekey): the holder then renews
// (funcd --renew, or Identity.Renew).
func (a *Authority) AllowRekey(name string, role gofunc.Role, within time.Duration) error {
	canon, err := identity.ValidateName(name)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if within <= 0 {
		within = DefaultRekeyWindow
	}
	return a.update(context.Background(), func(tx *txn) error {
		if role == "" {
			roles := tx.ix.roles(canon)
			switch len(roles) {
			case 0:
				return fmt.Errorf("%w: no certificate named %s", ErrNotFound, canon)
			case 1:
				role = roles[0]
			default:
				return fmt.Errorf("%w: %s has %v certificates; give the role", ErrAmbiguousName, canon, roles)
			}
		}
		if tx.ix.current(canon, role, a.cfg.Now()) == nil {
			return fmt.Errorf("%w: no valid %s certificate named %s", ErrNotFound, role, canon)
		}
		until := a.cfg.Now().Add(within).UTC()
		tx.audit(event{Kind: KindRekey, Caller: canon, Role: string(role), Details: map[string]string{"until": until.Format(time.RFC3339)}})
		return tx.record(entry{Op: opRekey, Name: canon, Role: role, At: until})
	})
}

// DefaultRekeyWindow is how long an AllowRekey grant lasts by default.
const DefaultRekeyWindow = 24 * time.Hour

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
