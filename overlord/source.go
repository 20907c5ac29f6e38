package overlord

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/fsutil"
)

// Minion is a host the overlord can call.
type Minion struct {
	// Name is the minion's certificate name; its certificate must name
	// it, or the call fails as an impersonation.
	Name string `json:"name"`
	// Addr is host:port to dial; empty means Name on port 51234.
	Addr string `json:"addr,omitempty"`
}

func (m Minion) dialAddr() string {
	if m.Addr != "" {
		return m.Addr
	}
	return net.JoinHostPort(m.Name, strconv.Itoa(gofunc.DefaultMinionPort))
}

// Source lists the minions an overlord knows: Static, File, CertDir,
// Certmaster, or any SourceFunc. It is called once per selection
// resolution, possibly concurrently.
type Source interface {
	Minions(ctx context.Context) ([]Minion, error)
}

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) ([]Minion, error)

// Minions calls f.
func (f SourceFunc) Minions(ctx context.Context) ([]Minion, error) { return f(ctx) }

// Static is a fixed list of minions.
type Static []Minion

// Minions returns the list.
func (s Static) Minions(context.Context) ([]Minion, error) { return s, nil }

// ErrNoMinionList is returned when no minion list has been fetched yet.
var ErrNoMinionList = errors.New("overlord: no minion list; run `func list_minions --refresh` or configure a source")

// File reads a JSON list of minions ([{"name":..., "addr":...}]).
type File string

// Minions reads the file.
func (f File) Minions(context.Context) ([]Minion, error) {
	b, err := os.ReadFile(string(f))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s missing)", ErrNoMinionList, f)
	}
	if err != nil {
		return nil, fmt.Errorf("overlord: minion list: %w", err)
	}
	var ms []Minion
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("overlord: minion list %s: %w", f, err)
	}
	return ms, nil
}

// Certmaster fetches the signed minions from a certmaster over mutual
// TLS with the overlord's own certificate, and caches the list in
// Cache (if set) so later runs work while the certmaster is away. It
// also fetches the certmaster's CRL into Identity (so that revoked
// minions are refused from then on) and, when it is newer than the one
// held, saves it as crl.pem in Identity's directory, where later runs
// load it. A minion's address is the one the CA vouches for
// (identity.MinionInfo.VouchedAddr), never merely the one the minion
// claimed; a replaced claim is logged as a warning.
//
// When the certmaster cannot be asked (down, unreachable, refusing),
// Minions falls back to the list in Cache, with a warning in Logger;
// it fails only when there is no usable cache either. The CRL is then
// the one Identity already holds.
type Certmaster struct {
	Addr     string // host:port of the certmaster
	Identity *identity.Identity
	Cache    string // file to write the list to; empty: no cache (and no fallback)
	// Logger receives the warnings (certmaster unreachable, CRL not
	// fetched); nil discards them.
	Logger hclog.Logger
}

// Minions asks the certmaster, or reads the cache when it cannot.
func (c Certmaster) Minions(ctx context.Context) ([]Minion, error) {
	log := c.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	infos, err := identity.FetchMinions(ctx, c.Identity, c.Addr)
	if err != nil {
		err = fmt.Errorf("overlord: minions from certmaster %s: %w", c.Addr, err)
		if c.Cache == "" || ctx.Err() != nil {
			return nil, err
		}
		ms, cacheErr := File(c.Cache).Minions(ctx)
		if cacheErr != nil {
			return nil, errors.Join(err, cacheErr)
		}
		log.Warn("certmaster unreachable; using the cached minion list", "certmaster", c.Addr,
			"cache", c.Cache, "error", err)
		return ms, nil
	}
	if err := identity.FetchCRL(ctx, c.Identity, c.Addr); err != nil {
		log.Warn("crl fetch failed; the crl held stays in force", "certmaster", c.Addr, "error", err)
	}
	ms := make([]Minion, 0, len(infos))
	for _, in := range infos {
		if in.Claimed != "" {
			log.Warn("minion's address not vouched for by its certificate or the certmaster; dialing another",
				"minion", in.Name, "claimed", in.Claimed, "dialing", in.Addr)
		}
		ms = append(ms, Minion{Name: in.Name, Addr: in.Addr})
	}
	if c.Cache != "" {
		if err := saveMinions(c.Cache, ms); err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// saveMinions writes a minion list where File can read it.
func saveMinions(path string, ms []Minion) error {
	b, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// CertDir lists the minions whose certificates are in a directory (the
// certmaster's signed certificates copied out, or Func's certs
// directory): every *.pem, *.crt and *.cert file holding a certificate
// with the minion role. A minion's name is its certificate's common
// name; its address is its first IP address SAN on port 51234, or its
// name when it has none. Files that hold no minion certificate are
// skipped; an unreadable directory is an error.
type CertDir string

// Minions reads the directory.
func (d CertDir) Minions(context.Context) ([]Minion, error) {
	entries, err := os.ReadDir(string(d))
	if err != nil {
		return nil, fmt.Errorf("overlord: minion certificates: %w", err)
	}
	var out []Minion
	seen := map[string]bool{}
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".pem" && ext != ".crt" && ext != ".cert") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(string(d), e.Name()))
		if err != nil {
			return nil, fmt.Errorf("overlord: minion certificates: %w", err)
		}
		for rest := b; ; {
			var blk *pem.Block
			if blk, rest = pem.Decode(rest); blk == nil {
				break
			}
			cert, err := x509.ParseCertificate(blk.Bytes)
			if blk.Type != "CERTIFICATE" || err != nil || identity.RoleOf(cert) != gofunc.RoleMinion {
				continue
			}
			name := cert.Subject.CommonName
			if name == "" || seen[strings.ToLower(name)] {
				continue
			}
			seen[strings.ToLower(name)] = true
			m := Minion{Name: name}
			if len(cert.IPAddresses) > 0 {
				m.Addr = net.JoinHostPort(cert.IPAddresses[0].String(), strconv.Itoa(gofunc.DefaultMinionPort))
			}
			out = append(out, m)
		}
	}
	return out, nil
}
