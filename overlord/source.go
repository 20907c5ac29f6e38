package overlord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
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

// Source lists the minions an overlord knows. It is called once per
// Targets resolution; implementations should be safe for concurrent use.
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

// CacheFile is the name of the minion list cached in an identity
// directory.
const CacheFile = "minions.json"

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
// Cache (if set) so later runs work while the certmaster is away.
type Certmaster struct {
	Addr     string // host:port of the certmaster
	Identity *ca.Identity
	Cache    string // file to write the list to; empty: no cache
}

// Minions asks the certmaster.
func (c Certmaster) Minions(ctx context.Context) ([]Minion, error) {
	infos, err := ca.FetchMinions(ctx, c.Identity, c.Addr)
	if err != nil {
		return nil, fmt.Errorf("overlord: minions from certmaster %s: %w", c.Addr, err)
	}
	ms := make([]Minion, 0, len(infos))
	for _, in := range infos {
		ms = append(ms, Minion{Name: in.Name, Addr: in.Addr})
	}
	if c.Cache != "" {
		if err := SaveMinions(c.Cache, ms); err != nil {
			return ms, err
		}
	}
	return ms, nil
}

// SaveMinions writes a minion list where File can read it.
func SaveMinions(path string, ms []Minion) error {
	b, err := json.MarshalIndent(ms, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}
