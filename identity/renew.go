package identity

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/gofunc/gofunc/internal/pki"
)

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
	key, err := pki.NewKey()
	if err != nil {
		return fmt.Errorf("identity: %w", err)
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
		return fmt.Errorf("identity: renew answer: %w", err)
	}
	next, err := id.replace(leaf, key)
	if err != nil {
		return err
	}
	if ans.CRL != "" {
		if der, err := pki.DecodeOne([]byte(ans.CRL), pki.PEMCRL, pki.MaxCRLBytes); err == nil {
			if err := id.SetCRL(der); err != nil && !errors.Is(err, ErrCRLRollback) {
				return fmt.Errorf("identity: renew answer: CRL: %w", err)
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
