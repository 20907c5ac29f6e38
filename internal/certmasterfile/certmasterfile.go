// Package certmasterfile is DIR/certmaster.json: the certmaster an
// identity directory's owner enrolled with or last talked to, and the
// CA it was pinned to. funcd writes it at enrollment and func when
// --certmaster worked, so later runs fetch the CRL, renew the
// certificate and refresh the minion list without being told again.
package certmasterfile

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// Name is the file's name in the identity directory.
const Name = "certmaster.json"

// maxBytes bounds the file: it holds two short strings.
const maxBytes = fsutil.MaxRememberedBytes

// Entry is the file's content. The address is used only with an
// identity of the CA whose fingerprint it names.
type Entry struct {
	Certmaster    string `json:"certmaster"`     // HOST:PORT
	CAFingerprint string `json:"ca_fingerprint"` // sha256:<hex> of the CA certificate
}

// Save writes dir/certmaster.json atomically, mode 0644 (it holds no
// secret).
func Save(dir string, e Entry) error {
	if err := fsutil.WriteJSON(filepath.Join(dir, Name), e, 0o644); err != nil {
		return fmt.Errorf("save certmaster address: %w", err)
	}
	return nil
}

// Load reads dir/certmaster.json; the error matches fs.ErrNotExist when
// there is none.
func Load(dir string) (Entry, error) {
	var e Entry
	path := filepath.Join(dir, Name)
	if err := fsutil.ReadJSON(path, maxBytes, &e); err != nil {
		return e, err
	}
	if e.Certmaster == "" {
		return e, fmt.Errorf("%s: %w", path, errNoAddress)
	}
	return e, nil
}

var errNoAddress = errors.New("no certmaster address")
