package overlord

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Transport carries one call to one minion and returns its answer: the
// seam between what the Client does (targets, fan-out, audit, decoding,
// classifying failures) and how bytes reach a minion. The Client's own
// transport (Config.Transport nil) is direct HTTPS to each minion's
// address over mutual TLS, one kept-alive connection per minion; a
// transport through a message broker is another. RoundTrip is called
// concurrently, up to Config.Forks at a time.
type Transport interface {
	// RoundTrip sends call to the minion to and returns its answer.
	// ctx carries the host's deadline, which the transport passes on to
	// the minion (leaving it a little less, so that its timeout fault
	// arrives first) and honours itself. The answer must be proven to
	// come from to.Name (its certificate, or its signature), never
	// merely from whoever is at to.Addr. An error is a transport
	// failure, which the Client classifies (unreachable, timeout,
	// untrusted, ...); a fault the minion answered is in the answer's
	// body. The Client reads the answer's Body (within
	// Config.MaxResultBytes) and closes it; CallID and AuditHead may be
	// set along with an error.
	RoundTrip(ctx context.Context, to Minion, call Outbound) (Answer, error)
}

// BatchTransport is a Transport that can also carry one call to several
// minions at once, for example through a broker that signs the call
// once for all of them. When the Client's transport implements it, the
// fan-out hands it each batch's hosts in groups of up to MaxBatch (and
// a quarter of Forks, so that several groups are in flight and one slow
// host holds up only its group), never more than Forks hosts at a time;
// calls to one host (Each, argument docs, events) still use RoundTrip.
// Results, states, audit records and Config.Observe are the same as
// through RoundTrip.
type BatchTransport interface {
	Transport
	// MaxBatch is the most minions one RoundTripBatch takes (at least 1).
	MaxBatch() int
	// RoundTripBatch sends call to every minion of to and calls answer
	// once for each of them (i is its index in to), from any goroutine,
	// with what RoundTrip would have returned for it, as each answer or
	// failure comes. It returns when every minion has had its answer.
	// ctx carries the group's deadline (HostTimeout from the group's
	// start), which the transport passes on and honours as RoundTrip
	// does.
	RoundTripBatch(ctx context.Context, to []Minion, call Outbound, answer func(i int, ans Answer, err error))
}

// Outbound is one call as a Transport carries it.
type Outbound struct {
	// Method is "module.method", for the transport's routing and logs;
	// Body says it too.
	Method string
	// Body is the XML-RPC methodCall.
	Body []byte
	// OnBehalfOf names the person the call is made for ("name@role",
	// Selection.OnBehalfOf); empty when the caller calls for itself. A
	// transport carries it to the minion (the direct one as the
	// gofunc.OnBehalfOfHeader header).
	OnBehalfOf string
}

// Answer is a minion's answer as a Transport returns it.
type Answer struct {
	// Body is the XML-RPC methodResponse: a result or a fault.
	Body io.ReadCloser
	// CallID is the call's id in the minion's audit log; "" when the
	// minion did not say.
	CallID string
	// AuditHead is where the minion's audit log stood after the call
	// ("seq:hash"); "" when it did not say.
	AuditHead string
	// CertNotAfter is when the certificate the minion presented
	// expires; zero when the transport does not know (Observation).
	CertNotAfter time.Time
	// NewConnection is set when the call opened a connection (connect
	// and TLS handshake) rather than reusing an idle one; false when
	// the transport does not say (Observation).
	NewConnection bool
}

// newDirectTransport makes the Client's own transport (direct.go). It
// dials minions by name: TLS checks that the certificate names the
// minion called (ServerName), and the address is the one the name was
// listed with, or the Resolver's. TLS sessions are cached so that a
// connection reopened after going idle resumes instead of doing a full
// handshake: sessionCacheSize of them, a few KiB each, only as many as
// minions were called. The cache is an LRU, so it must hold the whole
// fleet: with 4096 sessions a fleet of 5000 reconnecting in turn
// evicted each session before its minion came round again, and no
// reconnection resumed.
func (c *Client) newDirectTransport() *directTransport {
	const sessionCacheSize = 20_000
	var tlsCfg *tls.Config
	if c.id != nil {
		tlsCfg = c.id.ClientTLSConfig("")
		tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(sessionCacheSize)
		tlsCfg.VerifyConnection = minionOnly(tlsCfg.VerifyConnection)
	}
	return newDirectTransport(tlsCfg, c.cfg.DialTimeout, c.cfg.IdleTimeout, c.cfg.MaxHandshakes, c.resolve)
}

// minionOnly adds to a TLS connection check (chain, name, CRL) that
// the peer's certificate has the minion role: a certmaster's or an
// overlord's certificate for the same name is an impersonation.
func minionOnly(next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if next != nil {
			if err := next(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return nil // crypto/tls has already refused a server without one
		}
		leaf := cs.PeerCertificates[0]
		if role := identity.RoleOf(leaf); role != gofunc.RoleMinion {
			return &wrongRoleError{name: leaf.Subject.CommonName, role: string(role)}
		}
		return nil
	}
}

// resolve gives the address to dial for m: the Resolver's answer, or
// the address m was listed with (its name and the minion port when it
// was listed without one).
func (c *Client) resolve(ctx context.Context, m Minion) (string, error) {
	if c.cfg.Resolver != nil {
		to, err := c.cfg.Resolver(ctx, m)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", m.Name, err)
		}
		return to, nil
	}
	return m.dialAddr(), nil
}
