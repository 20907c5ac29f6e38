// Package certmasterfile is DIR/certmaster.json: the certmaster an
// identity directory's owner enrolled with or last talked to, and the
// CA it was pinned to. funcd writes it at enrollment and func when
// --certmaster worked, so later runs fetch the CRL, renew the
// certificate and refresh the minion list without being told again.
package certmasterfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// Name is the file's name in the identity directory.
const Name = "certmaster.json"

// maxBytes bounds the file: it holds two short strings.
const maxBytes = 64 << 10

// Entry is the file's content. The address is used only with an
// identity of the CA whose fingerprint it names.
type Entry struct {
	Certmaster    string `json:"certmaster"`     // HOST:PORT
	CAFingerprint string `json:"ca_fingerprint"` // sha256:<hex> of the CA certificate
}

// Save writes dir/certmaster.json atomically, mode 0644 (it holds no
// secret).
func Save(dir string, e Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, Name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save certmaster address: %w", err)
	}
	return nil
}

// Load reads dir/certmaster.json; the error matches fs.ErrNotExist when
// there is none.
func Load(dir string) (Entry, error) {
	var e Entry
	path := filepath.Join(dir, Name)
	f, err := os.Open(path)
	if err != nil {
		return e, err
	}
	defer f.Close()
	dec := json.NewDecoder(&limited{f, maxBytes})
	if err := dec.Decode(&e); err != nil {
		return e, fmt.Errorf("%s: %w", path, err)
	}
	if e.Certmaster == "" {
		return e, fmt.Errorf("%s: %w", path, errNoAddress)
	}
	return e, nil
}

var errNoAddress = errors.New("no certmaster address")

// limited fails reads past n bytes instead of ending quietly.
type limited struct {
	f *os.File
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("larger than %d bytes", maxBytes)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.f.Read(p)
	l.n -= int64(n)
	return n, err
}
