package web

import (
	"context"

	"github.com/gofunc/gofunc/ca"
)

// CA is what the Enrollment page needs of the certificate authority.
// Its methods are called concurrently. LocalCA serves it from a CA
// directory on this host.
type CA interface {
	// Requests lists the stored requests, pending and rejected.
	Requests(ctx context.Context) ([]ca.RequestInfo, error)
	// Certificates lists every certificate issued, revoked and expired
	// ones included.
	Certificates(ctx context.Context) ([]ca.CertInfo, error)
	// Sign signs name's pending request if its key has the fingerprint
	// the admin confirmed (ca.Authority.SignRequest).
	Sign(ctx context.Context, name, keyFingerprint string, by ca.Actor) (ca.CertInfo, error)
	// Reject rejects name's pending request if its key has the
	// fingerprint the admin confirmed.
	Reject(ctx context.Context, name, keyFingerprint string, by ca.Actor) (ca.RequestInfo, error)
	// Revoke revokes the certificate with this serial and its renewals.
	Revoke(ctx context.Context, serial string, reason ca.RevocationReason, by ca.Actor) ([]ca.CertInfo, error)
}

// LocalCA serves the Enrollment page from an open CA: the dashboard must
// then run where the CA directory is, as its owner, and holds the CA's
// key. The CA's own audit log records every action with the person it
// was taken for.
func LocalCA(a *ca.Authority) CA { return localCA{a} }

type localCA struct{ a *ca.Authority }

func (l localCA) Requests(context.Context) ([]ca.RequestInfo, error)  { return l.a.Requests() }
func (l localCA) Certificates(context.Context) ([]ca.CertInfo, error) { return l.a.Signed() }
func (l localCA) Sign(_ context.Context, name, fp string, by ca.Actor) (ca.CertInfo, error) {
	return l.a.SignRequest(name, fp, by)
}
func (l localCA) Reject(_ context.Context, name, fp string, by ca.Actor) (ca.RequestInfo, error) {
	return l.a.RejectRequest(name, fp, by)
}
func (l localCA) Revoke(_ context.Context, serial string, reason ca.RevocationReason, by ca.Actor) ([]ca.CertInfo, error) {
	return l.a.RevokeCertificate(serial, reason, by)
}
