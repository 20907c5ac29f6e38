package ca

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Minions lists the minions that hold a valid certificate (the newest
// one per name), sorted by name.
func (a *Authority) Minions() ([]identity.MinionInfo, error) { return a.minions(context.Background()) }

// minions is Minions; ctx bounds the wait for the lock.
func (a *Authority) minions(ctx context.Context) ([]identity.MinionInfo, error) {
	var out []identity.MinionInfo
	err := a.view(ctx, func(ix *index) error {
		now := a.cfg.Now()
		seen := map[string]bool{}
		for _, r := range ix.Certs {
			if r.Role != gofunc.RoleMinion || seen[r.Name] {
				continue
			}
			if cur := ix.current(r.Name, gofunc.RoleMinion, now); cur != nil {
				seen[r.Name] = true
				out = append(out, identity.MinionInfo{Name: cur.Name, Addr: cur.Addr, Serial: cur.Serial, NotAfter: cur.NotAfter,
					IPs: cur.IPs, Seen: cur.Seen})
			}
		}
		return nil
	})
	slices.SortFunc(out, func(x, y identity.MinionInfo) int { return strings.Compare(x.Name, y.Name) })
	return out, err
}

// ServerIdentity returns the certmaster's own server identity from
// DIR/cert.pem and DIR/key.pem, issuing (and saving) a new one when
// there is none, when it is revoked, past two thirds of its lifetime,
// or does not cover names and ips. names defaults to the host name and
// "localhost", ips to 127.0.0.1 and ::1.
func (a *Authority) ServerIdentity(names []string, ips []net.IP) (*identity.Identity, error) {
	if len(names) == 0 {
		names = []string{"localhost"}
		if h, err := os.Hostname(); err == nil {
			if c, err := identity.ValidateName(h); err == nil && c != "localhost" {
				names = []string{c, "localhost"}
			}
		}
	}
	if len(ips) == 0 {
		ips = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	canon := make([]string, len(names))
	for i, n := range names {
		c, err := identity.ValidateName(n)
		if err != nil {
			return nil, err
		}
		canon[i] = c
	}
	id, err := identity.Load(a.dir)
	if err == nil && a.serverIdentityUsable(id, canon, ips) {
		return id, nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		a.logger().Warn("certmaster identity unusable; issuing a new one", "error", err)
	}
	id, err = a.Issue(gofunc.RoleCertmaster, canon[0], IssueOptions{DNSNames: canon[1:], IPs: ips})
	if err != nil {
		return nil, err
	}
	if err := id.Save(a.dir); err != nil {
		return nil, fmt.Errorf("ca: save certmaster identity: %w", err)
	}
	return id, nil
}

func (a *Authority) serverIdentityUsable(id *identity.Identity, names []string, ips []net.IP) bool {
	leaf := id.Leaf()
	if identity.RoleOf(leaf) != gofunc.RoleCertmaster || leaf.CheckSignatureFrom(a.cert) != nil {
		return false
	}
	if !a.cfg.Now().Before(identity.RenewAt(leaf)) {
		return false
	}
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			return false
		}
	}
	revoked := true
	a.view(context.Background(), func(ix *index) error {
		r := ix.find(serialHex(leaf.SerialNumber))
		revoked = r == nil || r.revoked()
		return nil
	})
	return !revoked
}
