package main

import (
	"errors"
	"io/fs"

	"github.com/gofunc/gofunc/internal/certmasterfile"
)

// certmasterFile, in the identity directory, remembers which certmaster
// the minion enrolled with, so later starts without --certmaster still
// fetch the CRL and renew the certificate.
const certmasterFile = certmasterfile.Name

// savedCertmaster is DIR/certmaster.json. CAFingerprint is the CA the
// enrollment pinned: the address is used only with an identity of that CA.
type savedCertmaster = certmasterfile.Entry

// saveCertmaster writes DIR/certmaster.json.
func saveCertmaster(dir string, s savedCertmaster) error { return certmasterfile.Save(dir, s) }

// loadCertmaster reads DIR/certmaster.json; the error matches
// fs.ErrNotExist when there is none.
func loadCertmaster(dir string) (savedCertmaster, error) { return certmasterfile.Load(dir) }

// Where the certmaster address came from, as --info shows it.
const (
	certmasterFromConfig = "config" // --certmaster, GOFUNC_CERTMASTER or gofunc.toml
	certmasterFromFile   = certmasterFile
	certmasterNone       = "none"
)

// noCertmasterWarning is logged at start and shown by --info when the
// minion knows no certmaster.
const noCertmasterWarning = "no certmaster known (no --certmaster and no " + certmasterFile +
	"): CRL refresh and certificate renewal are OFF; revoked overlords stay trusted and the certificate will expire"

// resolveCertmaster fills in d.Certmaster from DIR/certmaster.json when
// no flag, variable or config file set it, and says where it came from.
// A saved address for another CA than the identity's is ignored.
func (d *daemon) resolveCertmaster(caFingerprint string) (source string) {
	if d.Certmaster != "" {
		return certmasterFromConfig
	}
	s, err := loadCertmaster(d.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		d.log.Warn("ignoring the saved certmaster address", "error", err)
	case s.CAFingerprint != caFingerprint:
		d.log.Warn("ignoring the saved certmaster address: it was saved for another CA",
			"certmaster", s.Certmaster, "saved_ca", s.CAFingerprint, "identity_ca", caFingerprint)
	default:
		d.Certmaster = s.Certmaster
		return certmasterFromFile
	}
	return certmasterNone
}
