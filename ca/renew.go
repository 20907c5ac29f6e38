package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
)

// ErrExpired: a certificate is past its NotAfter.
var ErrExpired = errors.New("ca: certificate expired")

// renewFraction is the part of a certificate's lifetime after which it is
// renewed: two thirds, leaving a third (four months of a year) to
// retry in.
const renewNum, renewDen = 2, 3

// RenewAt returns when cert is due for renewal: two thirds into its
// lifetime.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(life / renewDen * renewNum)
}

func due(cert *x509.Certificate, now time.Time) bool { return !now.Before(RenewAt(cert)) }

// Renew issues a new certificate for the holder of cert (which the
// caller has verified: the certmaster takes it from the mutual-TLS
// connection) with the public key of csrPEM: same name, role, SANs and
// minion address, no admin action. cert must be one this CA issued and
// still valid: not revoked (ErrRevoked), not expired (ErrExpired). The
// old certificate stays valid until it expires or is revoked, so a
// holder that fails to store the new one keeps working.
func (a *Authority) Renew(cert *x509.Certificate, csrPEM []byte, source string) ([]byte, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, err
	}
	if err := cert.CheckSignatureFrom(a.cert); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotIssuedByCA, err)
	}
	role := RoleOf(cert)
	if role == "" {
		return nil, ErrNoRole
	}
	var out *x509.Certificate
	err = a.update(func(ix *index) error {
		r := ix.find(serialHex(cert.SerialNumber))
		switch {
		case r == nil:
			return fmt.Errorf("%w: serial %s is not in the index", ErrNotFound, serialHex(cert.SerialNumber))
		case r.revoked():
			return fmt.Errorf("%w: %s serial %s", ErrRevoked, r.Name, r.Serial)
		case !a.cfg.Now().Before(r.NotAfter):
			return fmt.Errorf("%w: %s serial %s", ErrExpired, r.Name, r.Serial)
		case r.Name != cert.Subject.CommonName || r.Role != role:
			return fmt.Errorf("ca: certificate %s does not match the index", r.Serial)
		}
		keyFP, err := KeyFingerprint(csr.PublicKey)
		if err != nil {
			return err
		}
		if err := a.audit(event{Kind: KindRenew, Caller: r.Name, Role: string(r.Role), Serial: r.Serial, Remote: source,
			Details: map[string]string{"key_fingerprint": keyFP}}); err != nil {
			return err
		}
		spec := signSpec{role: role, name: r.Name, pub: csr.PublicKey, dns: renewedDNSNames(ix, r, cert.DNSNames), ips: cert.IPAddresses, addr: r.Addr}
		out, err = a.issueLocked(ix, spec, event{Kind: KindSign, Remote: source,
			Details: map[string]string{"via": "renew", "renews": r.Serial}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCert, out.Raw), nil
}

// RenewIfDue renews the identity's certificate at the certmaster when it
// is two thirds into its lifetime, and reports whether it did. See
// Renew.
func (id *Identity) RenewIfDue(ctx context.Context, certmaster string) (renewed bool, err error) {
	if !due(id.Leaf(), time.Now()) {
		return false, nil
	}
	if err := id.Renew(ctx, certmaster); err != nil {
		return false, err
	}
	return true, nil
}

// Renew gets a new certificate for a new key from the certmaster over
// mutual TLS, authenticated by the current certificate. The new
// certificate and key are saved first (to the directory the identity was
// loaded from or saved to, if any) and then swapped in: servers and
// clients built from the identity's TLS configs use them from their next
// handshake, without a restart and without dropping connections.
func (id *Identity) Renew(ctx context.Context, certmaster string) error {
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	csrPEM, err := makeCSR(key, id.Name())
	if err != nil {
		return err
	}
	c, err := identityClient(id, certmaster)
	if err != nil {
		return err
	}
	defer c.close()
	var ans enrollAnswer
	if err := c.call(ctx, "renew", &ans, string(csrPEM)); err != nil {
		return err
	}
	leaf, err := ParseCertificatePEM([]byte(ans.Cert))
	if err != nil {
		return fmt.Errorf("ca: renew answer: %w", err)
	}
	next, err := id.replace(leaf, key)
	if err != nil {
		return err
	}
	if ans.CRL != "" {
		if der, err := decodeOnePEM([]byte(ans.CRL), pemCRL, maxCRLBytes); err == nil {
			if err := id.SetCRL(der); err != nil && !errors.Is(err, ErrCRLRollback) {
				return fmt.Errorf("ca: renew answer: CRL: %w", err)
			}
		}
	}
	id.mu.Lock()
	defer id.mu.Unlock()
	if id.dir != "" {
		if err := id.saveLocked(id.dir, next, true); err != nil {
			return err
		}
	}
	id.cur.Store(next)
	return nil
}

// RenewLoop keeps id's certificate fresh until ctx is done, then returns
// ctx's error: it sleeps until the certificate is two thirds into its
// lifetime, renews it at the certmaster, and starts over; failures are
// logged and retried with backoff (one minute, doubling up to one hour).
// logger nil means no logging.
func RenewLoop(ctx context.Context, id *Identity, certmaster string, logger hclog.Logger) error {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	bo := backoff{min: time.Minute, max: time.Hour}
	for {
		wait := time.Until(RenewAt(id.Leaf()))
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		renewed, err := id.RenewIfDue(ctx, certmaster)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			logger.Warn("certificate renewal failed; will retry", "name", id.Name(), "error", err)
			if err := bo.wait(ctx); err != nil {
				return err
			}
		case renewed:
			bo = backoff{min: time.Minute, max: time.Hour}
			logger.Info("certificate renewed", "name", id.Name(), "serial", serialHex(id.Leaf().SerialNumber),
				"not_after", id.Leaf().NotAfter)
		}
	}
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
	for _, c := range ix.Certs {
		if c.Role == gofunc.RoleMinion && strings.EqualFold(c.Name, name) {
			return true
		}
	}
	return false
}
