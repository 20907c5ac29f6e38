package ca

import (
	"fmt"
	"strings"

	"github.com/gofunc/gofunc"
)

// ErrChanged: the request is no longer the one the admin confirmed (its
// key fingerprint differs), so nothing was done.
var ErrChanged = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: the request changed since it was shown"}

// Actor is the person an admin action is taken for, when a program acts
// for them (the dashboard, funcweb): the audit record of the action names
// the person as well as the program.
type Actor struct {
	// Name, Role and Serial are the person's certificate's.
	Name   string
	Role   gofunc.Role
	Serial string
	// Via names the program acting for the person ("funcweb").
	Via string
}

// details is the actor as audit record details: by ("alice@admin"),
// by_serial and by_via.
func (by Actor) details() map[string]string {
	d := map[string]string{}
	if by.Name != "" {
		d["by"] = by.Name + "@" + string(by.Role)
	}
	if by.Serial != "" {
		d["by_serial"] = by.Serial
	}
	if by.Via != "" {
		d["by_via"] = by.Via
	}
	return d
}

// withExtra adds extra to d (d's own keys win) and returns d.
func withExtra(d, extra map[string]string) map[string]string {
	for k, v := range extra {
		if _, ok := d[k]; !ok {
			d[k] = v
		}
	}
	return d
}

// SignRequest signs the pending request of name, but only while its key
// is the one whose fingerprint the admin confirmed (keyFingerprint, as
// RequestInfo.KeyFingerprint and `certmaster list` show it): a request
// replaced since it was shown is not signed (ErrChanged). It returns the
// new certificate; ErrNotFound when name has no pending request,
// ErrConflict when the name holds a valid certificate for another key.
// The audit record names by.
func (a *Authority) SignRequest(name, keyFingerprint string, by Actor) (CertInfo, error) {
	if err := a.checkConfirmed(name, keyFingerprint); err != nil {
		return CertInfo{}, err
	}
	out, err := a.signWhere(func(rr requestRecord) bool {
		return strings.EqualFold(rr.Name, name) && rr.KeyFingerprint == keyFingerprint
	}, by.details(), fmt.Sprintf("no pending request of %q with key %s", name, keyFingerprint))
	if len(out) == 0 {
		return CertInfo{}, err
	}
	return out[0], err
}

// RejectRequest rejects the pending request of name while its key is
// the one the admin confirmed, as SignRequest does for signing.
func (a *Authority) RejectRequest(name, keyFingerprint string, by Actor) (RequestInfo, error) {
	if err := a.checkConfirmed(name, keyFingerprint); err != nil {
		return RequestInfo{}, err
	}
	out, err := a.rejectWhere(func(rr requestRecord) bool {
		return strings.EqualFold(rr.Name, name) && rr.KeyFingerprint == keyFingerprint
	}, by.details(), fmt.Sprintf("no pending request of %q with key %s", name, keyFingerprint))
	if err != nil {
		return RequestInfo{}, err
	}
	return out[0], nil
}

// checkConfirmed tells apart "no such request" (ErrNotFound) from "the
// request has another key now" (ErrChanged), for the admin's message.
// The action itself matches name and key again under the lock.
func (a *Authority) checkConfirmed(name, keyFingerprint string) error {
	if keyFingerprint == "" {
		return fmt.Errorf("%w: the key fingerprint the admin confirmed is required", ErrBadRequest)
	}
	reqs, err := a.Pending()
	if err != nil {
		return err
	}
	for _, r := range reqs {
		if strings.EqualFold(r.Name, name) && r.KeyFingerprint != keyFingerprint {
			return fmt.Errorf("%w: %s now asks with key %s, not %s", ErrChanged, r.Name, r.KeyFingerprint, keyFingerprint)
		}
	}
	return nil
}

// RevokeCertificate revokes the certificate with this serial (hex) and
// the renewals descended from it, as Revoke does, with by in the audit
// records. Only a serial is taken: an action confirmed on one
// certificate never reaches a name's others.
func (a *Authority) RevokeCertificate(serial string, reason RevocationReason, by Actor) ([]CertInfo, error) {
	canon, ok := normalizeSerial(serial)
	if !ok {
		return nil, fmt.Errorf("%w: serial %q", ErrNotFound, serial)
	}
	return a.revoke(func(ix *index) ([]*certRecord, error) {
		if r := ix.find(canon); r != nil {
			return []*certRecord{r}, nil
		}
		return nil, fmt.Errorf("%w: serial %s", ErrNotFound, canon)
	}, canon, reason, by.details())
}
