package brokerd

import (
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/gofunc/gofunc/identity"
)

// clientAuth is nats-server's CustomClientAuthentication: it admits a
// client (or an accepted leaf node) by the certificate its TLS handshake
// verified, and registers the permissions of its role and name.
type clientAuth struct{ b *Broker }

// Check admits c or refuses it; a refused client gets nats-server's
// "Authorization Violation" and is disconnected.
func (a *clientAuth) Check(c server.ClientAuthentication) bool {
	b := a.b
	if b.admitStreamMaker(c) {
		return true
	}
	cert, err := verifiedLeaf(c)
	if err == nil {
		err = b.admit(cert)
	}
	var p *server.Permissions
	if err == nil {
		switch c.Kind() {
		case server.CLIENT:
			p, err = Permissions(cert)
		case server.LEAF:
			if err = b.checkBroker(cert); err == nil {
				p = LeafPermissions()
			}
		default:
			err = fmt.Errorf("%w: connection kind %d", ErrRoleRefused, c.Kind())
		}
	}
	if err != nil {
		b.counts.refused.Add(1)
		b.log.Warn("connection refused", "remote", addrOf(c), "error", err)
		return false
	}
	role := identity.RoleOf(cert)
	c.RegisterUser(&server.User{
		Username:    string(role) + ":" + cert.Subject.CommonName,
		Permissions: p,
		// nats-server drops the connection when the certificate expires.
		ConnectionDeadline: cert.NotAfter,
	})
	b.conns.add(c.GetID(), cert)
	b.log.Debug("connection admitted", "remote", addrOf(c), "role", role, "name", cert.Subject.CommonName)
	return true
}

// routeAuth is nats-server's CustomRouterAuthentication: routes are
// between brokers only.
type routeAuth struct{ b *Broker }

func (a *routeAuth) Check(c server.ClientAuthentication) bool {
	cert, err := verifiedLeaf(c)
	if err == nil {
		err = a.b.admit(cert)
	}
	if err == nil {
		err = a.b.checkBroker(cert)
	}
	if err != nil {
		a.b.counts.refused.Add(1)
		a.b.log.Warn("route refused", "remote", addrOf(c), "error", err)
		return false
	}
	return true
}

// verifiedLeaf is the certificate c's TLS handshake verified against
// the CA.
func verifiedLeaf(c server.ClientAuthentication) (*x509.Certificate, error) {
	cs := c.GetTLSConnectionState()
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil, identity.ErrUnverified
	}
	return cs.VerifiedChains[0][0], nil
}

// admit checks what may have changed since the handshake: the CRL and
// the clock.
func (b *Broker) admit(cert *x509.Certificate) error {
	if b.id.Revoked(cert) {
		return fmt.Errorf("%w: %s serial %s", identity.ErrRevoked, cert.Subject.CommonName, cert.SerialNumber.Text(16))
	}
	if now := time.Now(); now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
		return fmt.Errorf("%w: %s: certificate not valid now", identity.ErrUnverified, cert.Subject.CommonName)
	}
	if identity.RoleOf(cert) == "" {
		return fmt.Errorf("%w: %s", identity.ErrNoRole, cert.Subject.CommonName)
	}
	return nil
}

func addrOf(c server.ClientAuthentication) string {
	if a := c.RemoteAddress(); a != nil {
		return a.String()
	}
	return ""
}

// Recheck drops every client and leaf node connection whose certificate
// the CRL now revokes. The CRL refresher calls it after each new CRL; a
// program that installs a CRL itself (Identity.Reload, Identity.SetCRL)
// calls it after. Routes between brokers are not rechecked: a revoked
// broker is refused when its routes reconnect. It returns how many
// connections it dropped.
func (b *Broker) Recheck() int {
	dropped := 0
	for id, cert := range b.conns.snapshot() {
		if !b.connected(id) {
			b.conns.remove(id)
			continue
		}
		if !b.id.Revoked(cert) {
			continue
		}
		if err := b.srv.DisconnectClientByID(id); err == nil {
			dropped++
			b.counts.dropped.Add(1)
			b.log.Warn("revoked certificate disconnected", "role", identity.RoleOf(cert),
				"name", cert.Subject.CommonName, "serial", cert.SerialNumber.Text(16))
		}
		b.conns.remove(id)
	}
	return dropped
}

func (b *Broker) connected(id uint64) bool {
	return b.srv.GetClient(id) != nil || b.srv.GetLeafNode(id) != nil
}

// connTable remembers each admitted connection's certificate, for
// Recheck. Entries of closed connections are pruned by Recheck and,
// so that churn cannot grow it without bound, whenever the table has
// doubled since the last prune.
type connTable struct {
	mu        sync.Mutex
	m         map[uint64]connEntry
	pruneAt   int
	connected func(uint64) bool
}

type connEntry struct {
	cert  *x509.Certificate
	added time.Time
}

// pruneGrace keeps entries this young: a leaf node is admitted before
// nats-server lists it among its leaf nodes.
const pruneGrace = time.Minute

func (t *connTable) add(id uint64, cert *x509.Certificate) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[uint64]connEntry)
		t.pruneAt = 1024
	}
	t.m[id] = connEntry{cert: cert, added: time.Now()}
	if len(t.m) >= t.pruneAt && t.connected != nil {
		for k, e := range t.m {
			if time.Since(e.added) > pruneGrace && !t.connected(k) {
				delete(t.m, k)
			}
		}
		t.pruneAt = max(1024, 2*len(t.m))
	}
}

func (t *connTable) remove(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// removeIfOld forgets id unless it was admitted within pruneGrace (a
// leaf node is admitted before nats-server lists it).
func (t *connTable) removeIfOld(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[id]; ok && time.Since(e.added) > pruneGrace {
		delete(t.m, id)
	}
}

func (t *connTable) snapshot() map[uint64]*x509.Certificate {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[uint64]*x509.Certificate, len(t.m))
	for k, e := range t.m {
		out[k] = e.cert
	}
	return out
}

// natsLogger writes nats-server's logs to an hclog logger. Fatal
// messages (nats-server's word for "cannot start": an address in use)
// are logged as errors and kept for Start's error; they never exit.
type natsLogger struct {
	log   hclog.Logger
	mu    sync.Mutex
	fatal string
}

func (l *natsLogger) Noticef(format string, v ...any) {
	l.log.Info(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (l *natsLogger) Warnf(format string, v ...any)  { l.log.Warn(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Errorf(format string, v ...any) { l.log.Error(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Debugf(format string, v ...any) { l.log.Debug(fmt.Sprintf(format, v...)) }
func (l *natsLogger) Tracef(format string, v ...any) { l.log.Trace(fmt.Sprintf(format, v...)) }

func (l *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error(msg)
	l.mu.Lock()
	l.fatal = msg
	l.mu.Unlock()
}

func (l *natsLogger) lastFatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatal
}
