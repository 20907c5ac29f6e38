package ca

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc/identity"
)

// RevocationReason is an RFC 5280 CRLReason code.
type RevocationReason int

// RFC 5280 section 5.3.1 reason codes. certificateHold and
// removeFromCRL are left out: a gofunc revocation is final.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonCACompromise         RevocationReason = 2
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonPrivilegeWithdrawn   RevocationReason = 9
)

var reasonNames = map[RevocationReason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonCACompromise:         "cACompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// String returns the RFC 5280 name ("keyCompromise").
func (r RevocationReason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// ErrBadReason is returned by ParseReason for an unknown reason.
var ErrBadReason = errors.New("ca: unknown revocation reason")

// ParseReason accepts an RFC 5280 reason name in any case, with or
// without hyphens or underscores ("keyCompromise", "key-compromise",
// "KEY_COMPROMISE"), or its number. The empty string is "unspecified".
func ParseReason(s string) (RevocationReason, error) {
	if s == "" {
		return ReasonUnspecified, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		r := RevocationReason(n)
		if _, ok := reasonNames[r]; ok {
			return r, nil
		}
		return 0, fmt.Errorf("%w: %q", ErrBadReason, s)
	}
	fold := func(s string) string {
		return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
	}
	for r, name := range reasonNames {
		if fold(name) == fold(s) {
			return r, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrBadReason, s)
}

// makeCRL signs a new CRL listing every revoked certificate of ix that has
// not expired yet (an expired certificate is refused anyway), bumps the
// CRL number, and writes DIR/crl.pem. The caller holds the exclusive lock
// and writes ix.
func (a *Authority) makeCRL(ix *index) ([]byte, error) {
	now := a.cfg.Now()
	ix.CRLNumber++
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(ix.CRLNumber),
		ThisUpdate: now.Add(-clockSkew),
		NextUpdate: now.Add(a.cfg.CRLValidity),
	}
	for _, r := range ix.Certs {
		if !r.revoked() || !now.Before(r.NotAfter) {
			continue
		}
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, fmt.Errorf("ca: index holds a bad serial %q", r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   n,
			RevocationTime: r.RevokedAt,
			ReasonCode:     int(r.Reason),
		})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, a.cert, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: create CRL: %w", err)
	}
	if err := writeFileAtomic(a.path(fileCRL), encodePEM(pemCRL, der), 0o644); err != nil {
		return nil, fmt.Errorf("ca: write CRL: %w", err)
	}
	ix.CRLAt = now
	return der, nil
}

// CRL returns the current CRL (DER). It makes a fresh one when the stored
// CRL is missing or past half of Config.CRLValidity, so a certmaster that
// serves get_crl never hands out a CRL close to its NextUpdate.
func (a *Authority) CRL() ([]byte, error) {
	var fresh bool
	var der []byte
	err := a.view(func(ix *index) error {
		d, err := a.readCRL()
		if err != nil {
			return nil // made below
		}
		der = d
		fresh = a.cfg.Now().Sub(ix.CRLAt) < a.cfg.CRLValidity/2
		return nil
	})
	if err != nil {
		return nil, err
	}
	if fresh && der != nil {
		return der, nil
	}
	err = a.update(func(ix *index) error {
		// Another process may have refreshed it while we waited.
		if d, err := a.readCRL(); err == nil && a.cfg.Now().Sub(ix.CRLAt) < a.cfg.CRLValidity/2 {
			der = d
			return nil
		}
		d, err := a.makeCRL(ix)
		der = d
		return err
	})
	return der, err
}

// CRLPEM is CRL in PEM form.
func (a *Authority) CRLPEM() ([]byte, error) {
	der, err := a.CRL()
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCRL, der), nil
}

func (a *Authority) readCRL() ([]byte, error) {
	b, err := os.ReadFile(a.path(fileCRL))
	if err != nil {
		return nil, err
	}
	return decodeOnePEM(b, pemCRL, maxCRLBytes)
}

// Revoke revokes every valid certificate whose serial (hex, any case,
// optional "0x" or colons) or name equals nameOrSerial, makes a new CRL
// and returns the revoked certificates. Revoking by name revokes the
// certificates of every role with that name. It returns ErrNotFound when
// nothing valid matches.
func (a *Authority) Revoke(nameOrSerial string, reason RevocationReason) ([]CertInfo, error) {
	if _, ok := reasonNames[reason]; !ok {
		return nil, fmt.Errorf("%w: %d", ErrBadReason, int(reason))
	}
	var out []CertInfo
	err := a.update(func(ix *index) error {
		now := a.cfg.Now()
		serial, isSerial := normalizeSerial(nameOrSerial)
		name, nameErr := identity.ValidateName(nameOrSerial)
		for i := range ix.Certs {
			r := &ix.Certs[i]
			if r.revoked() {
				continue
			}
			if !(isSerial && r.Serial == serial) && !(nameErr == nil && r.Name == name) {
				continue
			}
			if err := a.audit(event{Kind: KindRevoke, Caller: r.Name, Role: string(r.Role), Serial: r.Serial,
				Details: map[string]string{"reason": reason.String()}}); err != nil {
				return err
			}
			r.RevokedAt, r.Reason = now.UTC(), reason
			out = append(out, r.info())
		}
		if len(out) == 0 {
			return fmt.Errorf("%w: no unrevoked certificate named or numbered %q", ErrNotFound, nameOrSerial)
		}
		_, err := a.makeCRL(ix)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		a.logger().Info("certificate revoked", "name", c.Name, "serial", c.Serial, "reason", c.Reason)
	}
	return out, nil
}

// normalizeSerial turns a serial typed by a person ("0x1A:2b", "1a2b")
// into the canonical lower-case hex without leading zeros.
func normalizeSerial(s string) (string, bool) {
	s = strings.TrimPrefix(strings.TrimPrefix(strings.ToLower(s), "0x"), "0X")
	s = strings.ReplaceAll(s, ":", "")
	if s == "" || len(s) > 40 {
		return "", false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return "", false
	}
	return serialHex(n), true
}
