package gofunc

import "context"

// Role is what a certificate was issued for. The CA writes it into every
// certificate it signs; a peer cannot choose its own.
type Role string

// Roles. The CA issues each; what a role may do is decided by the peer
// that checks it (a minion's ACL, the certmaster, the broker, the
// dashboard), and a role nobody grants anything may do nothing.
const (
	RoleMinion     Role = "minion"     // a host that runs calls (funcd)
	RoleOverlord   Role = "overlord"   // a person or program that makes calls (func)
	RoleCertmaster Role = "certmaster" // the CA's own service
	RoleMonitor    Role = "monitor"    // a scraper that reads metrics
	RoleBroker     Role = "broker"     // funcbroker, the NATS server calls may travel through
	RoleViewer     Role = "viewer"     // a dashboard user who may look
	RoleOperator   Role = "operator"   // a dashboard user who may act as the ACLs allow
	RoleAdmin      Role = "admin"      // a dashboard administrator
	RoleDelegate   Role = "delegate"   // the dashboard calling minions on behalf of its users
)

var roles = []Role{
	RoleMinion, RoleOverlord, RoleCertmaster, RoleMonitor, RoleBroker,
	RoleViewer, RoleOperator, RoleAdmin, RoleDelegate,
}

// Roles returns every role, in the order above.
func Roles() []Role { return append([]Role(nil), roles...) }

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, x := range roles {
		if r == x {
			return true
		}
	}
	return false
}

// Serves reports whether certificates of role r act as TLS servers
// (minion, certmaster, broker, delegate): only those carry DNS and IP
// names. The others are client certificates for a person or a program.
func (r Role) Serves() bool {
	return r == RoleMinion || r == RoleCertmaster || r == RoleBroker || r == RoleDelegate
}

// ReadsMetrics reports whether certificates of role r may read a
// daemon's metrics (GET /metrics) and the certmaster's service
// discovery (GET /sd/prometheus): overlord and monitor.
func (r Role) ReadsMetrics() bool { return r == RoleOverlord || r == RoleMonitor }

// Peer is the verified identity of the other end of a connection, taken
// from the certificate it presented on that connection.
type Peer struct {
	Name   string // the certificate's common name
	Role   Role
	Serial string // the certificate's serial number, lower-case hex
	Addr   string // remote network address, host:port
}

type peerKey struct{}

// NewContext returns a context carrying p. The minion puts the caller
// into every call's context; modules read it with PeerFromContext.
func NewContext(ctx context.Context, p Peer) context.Context {
	return context.WithValue(ctx, peerKey{}, p)
}

// PeerFromContext returns the caller the context carries, if any.
func PeerFromContext(ctx context.Context) (Peer, bool) {
	p, ok := ctx.Value(peerKey{}).(Peer)
	return p, ok
}
