package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/gofunc/gofunc"
)

// Stats summarizes the CA for monitoring (ca/cametrics turns it into
// Prometheus series). Reading it takes the CA's shared lock once and
// reads the stored requests and the CRL file; it writes nothing.
type Stats struct {
	// Pending counts the requests waiting for the admin; Rejected those
	// the admin refused and that are still stored.
	Pending, Rejected int
	// Issued counts every certificate the CA ever issued, by role
	// (renewals included); it only grows.
	Issued map[gofunc.Role]int
	// Valid counts the certificates usable now (neither revoked nor
	// expired), by role.
	Valid map[gofunc.Role]int
	// Revoked counts the certificates ever revoked.
	Revoked int
	// CRLNumber, CRLThisUpdate and CRLNextUpdate describe the CRL in
	// DIR/crl.pem; zero when there is none.
	CRLNumber                    int64
	CRLThisUpdate, CRLNextUpdate time.Time
	// CAExpiry is the CA certificate's NotAfter.
	CAExpiry time.Time
}

// Stats reads the CA's current Stats.
func (a *Authority) Stats() (Stats, error) {
	st := Stats{Issued: map[gofunc.Role]int{}, Valid: map[gofunc.Role]int{}, CAExpiry: a.cert.NotAfter}
	err := a.view(context.Background(), func(ix *index) error {
		now := a.cfg.Now()
		for _, r := range ix.Certs {
			st.Issued[r.Role]++
			if r.valid(now) {
				st.Valid[r.Role]++
			}
			if r.revoked() {
				st.Revoked++
			}
		}
		reqs, err := a.allRequests(ix)
		for _, rr := range reqs {
			switch rr.Status {
			case StatusPending:
				st.Pending++
			case StatusRejected:
				st.Rejected++
			}
		}
		return err
	})
	if err != nil {
		return st, err
	}
	der, err := a.readCRL()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("ca: read CRL: %w", err)
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return st, fmt.Errorf("ca: parse CRL: %w", err)
	}
	if rl.Number != nil && rl.Number.IsInt64() {
		st.CRLNumber = rl.Number.Int64()
	}
	st.CRLThisUpdate, st.CRLNextUpdate = rl.ThisUpdate, rl.NextUpdate
	return st, nil
}
