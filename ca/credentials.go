package ca

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/fsutil"
)

// ErrCredentialsExist: SaveCredentials found credentials in the
// directory already and was not told to replace them.
var ErrCredentialsExist = errors.New("ca: the directory holds credentials already (replace them with --force)")

// BrowserRole reports whether certificates of role r are meant for a
// person's web browser (the dashboard roles viewer, operator and admin),
// which imports a PKCS#12 file rather than PEM files.
func BrowserRole(r gofunc.Role) bool {
	return r == gofunc.RoleViewer || r == gofunc.RoleOperator || r == gofunc.RoleAdmin
}

// Credentials says what SaveCredentials wrote.
type Credentials struct {
	Dir string `json:"dir"`
	// P12 is the PKCS#12 file for a browser role ("" otherwise), and
	// P12Password the password protecting it: shown once, never stored.
	P12         string `json:"p12,omitempty"`
	P12Password string `json:"p12_password,omitempty"`
}

// CredentialsFree returns ErrCredentialsExist when dir holds cert.pem,
// key.pem or (for a browser role) NAME.p12: what SaveCredentials would
// replace. Check it before issuing, so that a refusal leaves no
// certificate behind.
func CredentialsFree(dir string, role gofunc.Role, name string) error {
	files := []string{"cert.pem", "key.pem"}
	if BrowserRole(role) {
		files = append(files, name+".p12")
	}
	for _, f := range files {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w: %s", ErrCredentialsExist, filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ca: %w", err)
		}
	}
	return nil
}

// SaveCredentials writes a freshly issued identity into dir: ca.pem,
// cert.pem and key.pem (0600), as identity.Save does, and for a browser
// role also NAME.p12 (0600; the key, the certificate and the CA, AES-256
// and PBKDF2-SHA-256 as browsers and OpenSSL 3 read them) protected by
// p12Password, or by a random password when it is "" (returned in
// Credentials). It refuses, with ErrCredentialsExist, to replace a
// cert.pem, key.pem or NAME.p12 already in dir unless force: an admin
// re-running the command must not silently throw away someone's key.
func SaveCredentials(id *identity.Identity, dir, p12Password string, force bool) (Credentials, error) {
	out := Credentials{Dir: dir}
	browser := BrowserRole(id.Role())
	if browser {
		out.P12 = filepath.Join(dir, id.Name()+".p12")
	}
	if !force {
		if err := CredentialsFree(dir, id.Role(), id.Name()); err != nil {
			return Credentials{}, err
		}
	}
	if err := id.Save(dir); err != nil {
		return Credentials{}, err
	}
	if !browser {
		return out, nil
	}
	if p12Password == "" {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return Credentials{}, fmt.Errorf("ca: %w", err)
		}
		p12Password = base64.RawURLEncoding.EncodeToString(b)
		out.P12Password = p12Password
	}
	c := id.Certificate()
	der, err := pkcs12.Modern2023.Encode(c.PrivateKey, c.Leaf, []*x509.Certificate{id.CACert()}, p12Password)
	if err != nil {
		return Credentials{}, fmt.Errorf("ca: PKCS#12: %w", err)
	}
	if err := fsutil.WriteFileAtomic(out.P12, der, 0o600); err != nil {
		return Credentials{}, fmt.Errorf("ca: %w", err)
	}
	return out, nil
}
