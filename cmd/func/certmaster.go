package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/certmasterfile"
	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/pki"
	"github.com/gofunc/gofunc/overlord"
)

// What func does with its certmaster, once per run and before any call
// (see prepare):
//
//   - it remembers the certmaster in DIR/certmaster.json once
//     --certmaster worked, as funcd does, for the CA it was used with;
//   - it renews its own certificate at two thirds of its lifetime, as
//     funcd does;
//   - it fetches the CRL when the one in DIR/crl.pem is past its next
//     update or older than --crl-refresh: at most once per run, however
//     many calls the run makes;
//   - it asks the certmaster for the minion list on every run given
//     --certmaster, with list_minions --refresh, or when no list is
//     cached; otherwise it uses DIR/minions.json;
//   - it leaves revoked minions out of the targets and says which.

// cachedMinion is one entry of DIR/minions.json as func writes it: what
// overlord.File reads (name, addr), plus the certificate's serial and
// expiry, so that a later run can tell a revoked minion from one that
// left.
type cachedMinion struct {
	Name     string    `json:"name"`
	Addr     string    `json:"addr,omitempty"`
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
}

// revocation is one CRL entry.
type revocation struct {
	at     time.Time
	reason string
}

// certmaster is what a run knows of its certmaster and the CRL.
type certmaster struct {
	e        *env
	id       *identity.Identity
	addr     string // HOST:PORT; "" when none is known
	explicit bool   // from --certmaster (flag, GOFUNC_CERTMASTER or gofunc.toml), not remembered
	revoked  map[string]revocation
	fetched  bool // the CRL was fetched in this run

	mu      sync.Mutex
	dropped []droppedMinion // revoked minions left out of the list
	list    []overlord.Minion
	listErr error
	listed  bool // list and listErr hold this run's answer
}

// droppedMinion is a minion left out because the CA revoked it.
type droppedMinion struct {
	overlord.Minion
	revocation
}

// crlFetchedFile marks, by its modification time, when func last
// fetched the CRL: crl.pem itself is rewritten only when the CRL
// changes.
const crlFetchedFile = "crl.fetched"

// prepare runs before the overlord client is built: it finds the
// certmaster, renews the certificate when due, refreshes the CRL when
// stale, and refuses to go on with a certificate the CA revoked or that
// expired.
func (e *env) prepare(id *identity.Identity) (*certmaster, error) {
	cm := &certmaster{e: e, id: id}
	cm.addr, cm.explicit = e.certmasterAddr(id)
	leaf := id.Leaf()
	if now := time.Now(); now.After(leaf.NotAfter) {
		return cm, fmt.Errorf("this overlord's certificate (%s, serial %s) expired on %s: ask the CA admin for a new one "+
			"(certmaster issue-overlord --dir CADIR --out %s %s)", id.Name(), serialOf(leaf), day(leaf.NotAfter), e.dir(), id.Name())
	}
	if cm.addr != "" {
		cm.renew()
		if crlStale(e.dir(), e.cli.CRLRefresh, time.Now()) {
			cm.fetchCRL(true)
		}
	} else if due := identity.RenewAt(leaf); time.Now().After(due) {
		e.warn("this overlord's certificate expires on %s and no certmaster is known to renew it from: "+
			"run func --certmaster HOST:PORT list_minions once", day(leaf.NotAfter))
	}
	cm.revoked = readRevocations(e.dir())
	return cm, cm.selfRevoked()
}

// selfRevoked is the error for an overlord the CRL held revokes.
func (cm *certmaster) selfRevoked() error {
	leaf := cm.id.Leaf()
	r, listed := cm.revoked[serialOf(leaf)]
	if !listed && !cm.id.Revoked(leaf) {
		return nil
	}
	return fmt.Errorf("this overlord's certificate (%s, serial %s) was revoked%s: minions refuse it; "+
		"ask the CA admin for new credentials (certmaster issue-overlord)", cm.id.Name(), serialOf(leaf), r.describe())
}

// certmasterAddr is --certmaster, else the address remembered in
// DIR/certmaster.json for this identity's CA.
func (e *env) certmasterAddr(id *identity.Identity) (addr string, explicit bool) {
	if e.cli.Certmaster != "" {
		return e.cli.Certmaster, true
	}
	saved, err := certmasterfile.Load(e.dir())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		e.warn("ignoring %s: %v", certmasterfile.Name, err)
	case saved.CAFingerprint != id.CAFingerprint():
		e.warn("ignoring %s: it names a certmaster of another CA", certmasterfile.Name)
	default:
		return saved.Certmaster, false
	}
	return "", false
}

// remember saves an explicit certmaster that answered, for later runs.
func (cm *certmaster) remember() {
	if !cm.explicit {
		return
	}
	entry := certmasterfile.Entry{Certmaster: cm.addr, CAFingerprint: cm.id.CAFingerprint()}
	if saved, err := certmasterfile.Load(cm.e.dir()); err == nil && saved == entry {
		return
	}
	if err := certmasterfile.Save(cm.e.dir(), entry); err != nil {
		cm.e.warn("%v", err)
	}
}

// renew renews the overlord's certificate at the certmaster when it is
// two thirds into its lifetime, like funcd's; the new certificate and
// key are saved in DIR before they are used.
func (cm *certmaster) renew() {
	if time.Now().Before(identity.RenewAt(cm.id.Leaf())) {
		return
	}
	ctx, cancel := context.WithTimeout(cm.e.ctx, cm.e.cli.Timeout)
	defer cancel()
	old := cm.id.Leaf()
	if err := cm.id.Renew(ctx, cm.addr); err != nil {
		cm.e.warn("this overlord's certificate is due for renewal (it expires on %s), but the certmaster at %s did not renew it: %s",
			day(old.NotAfter), cm.addr, innermost(err))
		return
	}
	cm.remember()
	cm.e.note("renewed this overlord's certificate: serial %s, valid until %s", serialOf(cm.id.Leaf()), day(cm.id.Leaf().NotAfter))
}

// fetchCRL fetches the CRL (identity.FetchCRL saves a newer one in
// DIR) and records when. A failure is said when warn is set; the CRL
// held stays in force either way.
func (cm *certmaster) fetchCRL(warn bool) {
	dir := cm.e.dir()
	cm.fetched = true
	ctx, cancel := context.WithTimeout(cm.e.ctx, cm.e.cli.Timeout)
	defer cancel()
	if err := identity.FetchCRL(ctx, cm.id, cm.addr); err != nil {
		if warn {
			cm.e.warn("could not fetch the CRL from the certmaster at %s (%s); the CRL held stays in force", cm.addr, networkCause(err))
		}
		cm.revoked = readRevocations(dir)
		return
	}
	if err := touch(filepath.Join(dir, crlFetchedFile)); err != nil {
		cm.e.log.Debug("crl fetch time not recorded", "error", err)
	}
	cm.remember()
	cm.revoked = readRevocations(dir)
}

// crlStale reports whether DIR's CRL should be fetched again: there is
// none, it is past its next update, or it was fetched more than maxAge
// ago.
func crlStale(dir string, maxAge time.Duration, now time.Time) bool {
	rl, err := readCRL(dir)
	if err != nil || !now.Before(rl.NextUpdate) {
		return true
	}
	fi, err := os.Stat(filepath.Join(dir, crlFetchedFile))
	return err != nil || now.Sub(fi.ModTime()) >= maxAge
}

func readCRL(dir string) (*x509.RevocationList, error) {
	b, err := os.ReadFile(filepath.Join(dir, pki.FileCRL))
	if err != nil {
		return nil, err
	}
	der, err := pki.DecodeOne(b, pki.PEMCRL, pki.MaxCRLBytes)
	if err != nil {
		return nil, err
	}
	return x509.ParseRevocationList(der)
}

// readRevocations lists DIR/crl.pem's entries by serial (lower-case
// hex, as certificates print it); none when there is no CRL. The CRL
// was checked against the CA when it was installed.
func readRevocations(dir string) map[string]revocation {
	rl, err := readCRL(dir)
	if err != nil {
		return nil
	}
	out := make(map[string]revocation, len(rl.RevokedCertificateEntries))
	for _, r := range rl.RevokedCertificateEntries {
		out[r.SerialNumber.Text(16)] = revocation{at: r.RevocationTime, reason: reasonName(r.ReasonCode)}
	}
	return out
}

// reasonName is RFC 5280's name for a CRL reason code.
func reasonName(code int) string {
	names := []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
		"cessationOfOperation", "certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}
	if code >= 0 && code < len(names) && names[code] != "" {
		return names[code]
	}
	return fmt.Sprintf("reason %d", code)
}

// describe is " on 2026-12-07 (keyCompromise)", or "" for the zero value.
func (r revocation) describe() string {
	if r.at.IsZero() {
		return ""
	}
	s := " on " + day(r.at)
	if r.reason != "" && r.reason != "unspecified" {
		s += " (" + r.reason + ")"
	}
	return s
}

// Minions implements overlord.Source: the certmaster's list when this
// run should ask for it, else the cached one; revoked minions left out.
// A run asks once: the overlord resolves a selection more than once.
func (cm *certmaster) Minions(ctx context.Context) ([]overlord.Minion, error) {
	cm.mu.Lock()
	listed, list, err := cm.listed, cm.list, cm.listErr
	cm.mu.Unlock()
	if listed {
		return list, err
	}
	list, err = cm.minions(ctx)
	if ctx.Err() == nil {
		cm.mu.Lock()
		cm.listed, cm.list, cm.listErr = true, list, err
		cm.mu.Unlock()
	}
	return list, err
}

func (cm *certmaster) minions(ctx context.Context) ([]overlord.Minion, error) {
	path := filepath.Join(cm.e.dir(), overlord.CacheFile)
	cached, cacheErr := readCache(path)
	if cm.addr != "" && (cm.explicit || cm.e.cli.ListMinions.Refresh || cacheErr != nil) {
		infos, err := identity.FetchMinions(ctx, cm.id, cm.addr)
		if err == nil {
			fresh := make([]cachedMinion, 0, len(infos))
			for _, in := range infos {
				if in.Claimed != "" {
					cm.e.warn("%s asked to be reached at %s, which neither its certificate nor the certmaster vouches for; dialing %s", in.Name, in.Claimed, in.Addr)
				}
				fresh = append(fresh, cachedMinion{Name: in.Name, Addr: in.Addr, Serial: strings.ToLower(in.Serial), NotAfter: in.NotAfter})
			}
			cm.noteLeavers(cached, fresh)
			cm.remember()
			if err := writeCache(path, fresh); err != nil {
				cm.e.warn("could not cache the minion list: %v", err)
			}
			cached, cacheErr = fresh, nil
		} else {
			if ctx.Err() != nil {
				return nil, err
			}
			if !cm.fetched && !isFault(err) {
				// Our certificate may have been refused (with TLS 1.3
				// that can read as a closed connection): the CRL says
				// whether the CA revoked it, and can be fetched without
				// a certificate. The list's failure is said below.
				cm.fetchCRL(false)
				if err := cm.selfRevoked(); err != nil {
					return nil, err
				}
			}
			if cm.e.cli.ListMinions.Refresh {
				return nil, fmt.Errorf("could not refresh the minion list from the certmaster at %s: %s", cm.addr, networkCause(err))
			}
			what := "did not answer"
			if refused(err) {
				what = "refused this overlord's certificate"
			}
			if cacheErr != nil {
				return nil, fmt.Errorf("the certmaster at %s %s (%s) and no minion list is cached in %s", cm.addr, what, networkCause(err), path)
			}
			cm.e.warn("the certmaster at %s %s (%s); using the minion list cached in %s", cm.addr, what, networkCause(err), path)
		}
	}
	if cacheErr != nil {
		return nil, cacheErr
	}
	out := make([]overlord.Minion, 0, len(cached))
	for _, m := range cached {
		if r, ok := cm.revoked[m.Serial]; ok && m.Serial != "" {
			cm.drop(m, r)
			continue
		}
		out = append(out, overlord.Minion{Name: m.Name, Addr: m.Addr})
	}
	return out, nil
}

// isFault reports an answer from the certmaster (a fault), as opposed to
// a failure to get one.
func isFault(err error) bool {
	var f *gofunc.Fault
	return errors.As(err, &f)
}

// refused reports a TLS alert from the peer: it refused our certificate.
func refused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// noteLeavers records the minions of the old list that the certmaster
// no longer lists because the CA revoked them. A minion that left is
// news the CRL held may predate, so the CRL is fetched first if this run
// has not fetched it yet.
func (cm *certmaster) noteLeavers(old, fresh []cachedMinion) {
	var left []cachedMinion
	for _, m := range old {
		if !slices.ContainsFunc(fresh, func(f cachedMinion) bool { return strings.EqualFold(f.Name, m.Name) }) {
			left = append(left, m)
		}
	}
	if len(left) > 0 && !cm.fetched {
		cm.fetchCRL(true)
	}
	for _, m := range left {
		if r, ok := cm.revoked[m.Serial]; ok && m.Serial != "" {
			cm.drop(m, r)
		}
	}
}

func (cm *certmaster) drop(m cachedMinion, r revocation) {
	cm.mu.Lock()
	defer cm.mu.Unlock()
	if !slices.ContainsFunc(cm.dropped, func(d droppedMinion) bool { return d.Name == m.Name }) {
		cm.dropped = append(cm.dropped, droppedMinion{overlord.Minion{Name: m.Name, Addr: m.Addr}, r})
	}
}

// reportDropped says which revoked minions the spec would have
// targeted, one line each on stderr.
func (cm *certmaster) reportDropped(spec string) {
	if cm == nil {
		return
	}
	cm.mu.Lock()
	dropped := slices.Clone(cm.dropped)
	cm.mu.Unlock()
	if len(dropped) == 0 {
		return
	}
	list := make(overlord.Static, len(dropped))
	for i, d := range dropped {
		list[i] = d.Minion
	}
	probe := overlord.New(overlord.WithIdentity(cm.id), overlord.WithMinions(list),
		overlord.WithGroupsPath(filepath.Join(cm.e.dir(), overlord.GroupsFile)))
	defer probe.Close()
	sel := probe.Targets(spec)
	for _, ex := range cm.e.cli.Exclude {
		sel = sel.Exclude(ex)
	}
	hosts, err := sel.Hosts(cm.e.ctx)
	if err != nil {
		return // none of them matched
	}
	for _, d := range dropped {
		if slices.Contains(hosts, d.Name) {
			cm.e.warn("left out %s: its certificate was revoked%s", d.Name, d.describe())
		}
	}
}

// readCache reads DIR/minions.json.
func readCache(path string) ([]cachedMinion, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s missing)", overlord.ErrNoMinionList, path)
	}
	if err != nil {
		return nil, err
	}
	var list []cachedMinion
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("minion list %s: %w", path, err)
	}
	return list, nil
}

func writeCache(path string, list []cachedMinion) error {
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, append(b, '\n'), 0o600)
}

// touch sets path's modification time to now, creating it empty.
func touch(path string) error {
	now := time.Now()
	if err := os.Chtimes(path, now, now); errors.Is(err, fs.ErrNotExist) {
		return os.WriteFile(path, nil, 0o644)
	} else if err != nil {
		return err
	}
	return nil
}

func serialOf(c *x509.Certificate) string { return c.SerialNumber.Text(16) }

func day(t time.Time) string { return t.Local().Format("2006-01-02 15:04") }

// warn prints one line on stderr, "func: ...".
func (e *env) warn(format string, args ...any) {
	fmt.Fprintf(e.stderr, "func: "+format+"\n", args...)
}

// note prints news an operator may want (a renewed certificate) on
// stderr, unless --quiet.
func (e *env) note(format string, args ...any) {
	if !e.cli.Quiet {
		e.warn(format, args...)
	}
}
