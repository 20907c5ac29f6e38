package ca

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
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

// signCRL signs the CRL that follows the current one in ix: number
// ix.CRLNumber+1, listing every revoked certificate that has not expired
// yet (an expired certificate is refused anyway). It costs the number of
// revocations, not of certificates.
func (a *Authority) signCRL(ix *index) (der []byte, number int64, err error) {
	now := a.cfg.Now()
	number = ix.CRLNumber + 1
	tmpl := &x509.RevocationList{
		Number:     big.NewInt(number),
		ThisUpdate: now.Add(-clockSkew),
		NextUpdate: now.Add(a.cfg.CRLValidity),
	}
	for _, i := range ix.revoked {
		r := ix.Certs[i]
		if !now.Before(r.NotAfter) {
			continue
		}
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return nil, 0, fmt.Errorf("%w: bad serial %q", ErrCorruptIndex, r.Serial)
		}
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries, x509.RevocationListEntry{
			SerialNumber:   n,
			RevocationTime: r.RevokedAt,
			ReasonCode:     int(r.Reason),
		})
	}
	der, err = x509.CreateRevocationList(rand.Reader, tmpl, a.cert, a.key)
	if err != nil {
		return nil, 0, fmt.Errorf("ca: create CRL: %w", err)
	}
	return der, number, nil
}

// makeCRL signs a new CRL in tx: its number goes into the journal, and
// DIR/crl.pem is written once the journal is (a crash in between leaves
// an older crl.pem, which CRL notices by its number and replaces).
func (a *Authority) makeCRL(tx *txn) ([]byte, error) {
	der, number, err := a.signCRL(tx.ix)
	if err != nil {
		return nil, err
	}
	if err := tx.record(entry{Op: opCRL, Number: number, At: a.cfg.Now().UTC()}); err != nil {
		return nil, err
	}
	tx.afterJournal(func() error { return a.writeCRL(der) })
	return der, nil
}

func (a *Authority) writeCRL(der []byte) error {
	if err := writeFileAtomic(a.path(fileCRL), encodePEM(pemCRL, der), 0o644); err != nil {
		return fmt.Errorf("ca: write CRL: %w", err)
	}
	a.crlCache.Store(nil)
	return nil
}

// crlFile is DIR/crl.pem as last read, kept so that get_crl, which
// every minion calls every half minute, does not parse it each time.
type crlFile struct {
	der    []byte
	number int64
	at     time.Time // the index's CRLAt for this number
}

// CRL returns the current CRL (DER). It makes a fresh one when the stored
// CRL is missing, older than the index says (a crash after a
// revocation), or past half of Config.CRLValidity, so a certmaster that
// serves get_crl never hands out a CRL close to its NextUpdate.
func (a *Authority) CRL() ([]byte, error) { return a.crl(context.Background()) }

// crl is CRL; ctx bounds the wait for the lock.
func (a *Authority) crl(ctx context.Context) ([]byte, error) {
	var der []byte
	err := a.view(ctx, func(ix *index) error {
		der = a.currentCRL(ix)
		return nil
	})
	if err != nil || der != nil {
		return der, err
	}
	err = a.update(ctx, func(tx *txn) error {
		// Another process may have refreshed it while we waited.
		if der = a.currentCRL(tx.ix); der != nil {
			return nil
		}
		d, err := a.makeCRL(tx)
		der = d
		return err
	})
	return der, err
}

// currentCRL returns DIR/crl.pem when it is the index's current CRL and
// fresh enough to serve, else nil. The caller holds the lock.
func (a *Authority) currentCRL(ix *index) []byte {
	if a.cfg.Now().Sub(ix.CRLAt) >= a.cfg.CRLValidity/2 {
		return nil
	}
	if c := a.crlCache.Load(); c != nil && c.number == ix.CRLNumber && c.at.Equal(ix.CRLAt) {
		return c.der
	}
	der, err := a.readCRL()
	if err != nil {
		return nil
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil || rl.Number == nil || rl.Number.Cmp(big.NewInt(ix.CRLNumber)) != 0 {
		return nil
	}
	a.crlCache.Store(&crlFile{der: der, number: ix.CRLNumber, at: ix.CRLAt})
	return der
}

// CRLPEM is CRL in PEM form.
func (a *Authority) CRLPEM() ([]byte, error) { return a.crlPEM(context.Background()) }

func (a *Authority) crlPEM(ctx context.Context) ([]byte, error) {
	der, err := a.crl(ctx)
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

// ErrAmbiguousName: a name holds certificates of several roles (issued
// before one name, one role was enforced); revoking it by name needs the
// role (RevokeRole, certmaster revoke --role).
var ErrAmbiguousName = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: the name holds certificates of several roles"}

// Revoke revokes the certificate whose serial (hex, any case, optional
// "0x" or colons) is nameOrSerial, or every certificate of the name
// nameOrSerial in the name's role, together with every renewal
// descended from them (a renewal is a new key for the same holder, so a
// revocation must not leave it valid). It makes a new CRL and returns
// the certificates revoked. It returns ErrNotFound when nothing valid
// matches, and ErrAmbiguousName for a name that holds certificates of
// several roles: use RevokeRole.
func (a *Authority) Revoke(nameOrSerial string, reason RevocationReason) ([]CertInfo, error) {
	return a.RevokeRole(nameOrSerial, "", reason)
}

// RevokeRole is Revoke limited to role: a name's certificates of that
// role, or a serial only if its certificate has that role. Role "" is
// the name's own role.
func (a *Authority) RevokeRole(nameOrSerial string, role gofunc.Role, reason RevocationReason) ([]CertInfo, error) {
	if role != "" && !role.Valid() {
		return nil, fmt.Errorf("%w: unknown role %q", ErrBadRequest, role)
	}
	return a.revoke(func(ix *index) ([]*certRecord, error) { return revocationTargets(ix, nameOrSerial, role) },
		nameOrSerial, reason, nil)
}

// revoke revokes what targets selects, and the renewals descended from
// it, with extra details in each audit record (who asked, through what).
// what names the targets in the error when none is valid.
func (a *Authority) revoke(targets func(*index) ([]*certRecord, error), what string, reason RevocationReason, extra map[string]string) ([]CertInfo, error) {
	if _, ok := reasonNames[reason]; !ok {
		return nil, fmt.Errorf("%w: %d", ErrBadReason, int(reason))
	}
	var out []CertInfo
	err := a.updateTx(context.Background(), true, func(tx *txn) error {
		targets, err := targets(tx.ix)
		if err != nil {
			return err
		}
		for _, r := range targets {
			for _, d := range tx.ix.lineage(r) {
				if d.revoked() {
					continue
				}
				ev := event{Kind: KindRevoke, Caller: d.Name, Role: string(d.Role), Serial: d.Serial,
					Details: withExtra(map[string]string{"reason": reason.String()}, extra)}
				if d != r {
					ev.Details["descendant_of"] = r.Serial
				}
				if err := a.revokeLocked(tx, d, reason, ev); err != nil {
					return err
				}
				out = append(out, d.info())
			}
		}
		if len(out) == 0 {
			return fmt.Errorf("%w: no unrevoked certificate named or numbered %q", ErrNotFound, what)
		}
		_, err = a.makeCRL(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		a.logger().Info("certificate revoked", "name", c.Name, "role", c.Role, "serial", c.Serial, "reason", c.Reason)
	}
	return out, nil
}

// revocationTargets resolves what Revoke names: a serial, or a name's
// certificates in role ("" is the name's one role; a name with only the
// certmaster's own certificates is revoked in that role).
func revocationTargets(ix *index, nameOrSerial string, role gofunc.Role) ([]*certRecord, error) {
	var out []*certRecord
	if serial, ok := normalizeSerial(nameOrSerial); ok {
		if r := ix.find(serial); r != nil && (role == "" || r.Role == role) {
			out = append(out, r)
		}
	}
	name, err := identity.ValidateName(nameOrSerial)
	if err != nil {
		return out, nil
	}
	if role == "" {
		switch roles := ix.roles(name); len(roles) {
		case 0:
			role = gofunc.RoleCertmaster
		case 1:
			role = roles[0]
		default:
			return nil, fmt.Errorf("%w: %s has %v certificates; give the role", ErrAmbiguousName, name, roles)
		}
	}
	for _, r := range ix.named(name) {
		if r.Role == role && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// revokeLocked records the revocation of r in tx, audited as ev.
func (a *Authority) revokeLocked(tx *txn, r *certRecord, reason RevocationReason, ev event) error {
	tx.audit(ev)
	return tx.record(entry{Op: opRevoke, Serial: r.Serial, At: a.cfg.Now().UTC(), Reason: reason})
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
