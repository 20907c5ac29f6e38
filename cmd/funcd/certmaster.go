package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// certmasterFile, in the identity directory, remembers which certmaster
// the minion enrolled with, so later starts without --certmaster still
// fetch the CRL and renew the certificate.
const certmasterFile = "certmaster.json"

// savedCertmaster is DIR/certmaster.json. CAFingerprint is the CA the
// enrollment pinned: the address is used only with an identity of that CA.
type savedCertmaster struct {
	Certmaster    string `json:"certmaster"`
	CAFingerprint string `json:"ca_fingerprint"`
}

// saveCertmaster writes DIR/certmaster.json atomically (mode 0644: it
// holds no secret).
func saveCertmaster(dir string, s savedCertmaster) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, certmasterFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save certmaster address: %w", err)
	}
	return nil
}

// loadCertmaster reads DIR/certmaster.json; the error matches
// fs.ErrNotExist when there is none.
func loadCertmaster(dir string) (savedCertmaster, error) {
	var s savedCertmaster
	b, err := os.ReadFile(filepath.Join(dir, certmasterFile))
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", filepath.Join(dir, certmasterFile), err)
	}
	if s.Certmaster == "" {
		return s, fmt.Errorf("%s: no certmaster address", filepath.Join(dir, certmasterFile))
	}
	return s, nil
}

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
