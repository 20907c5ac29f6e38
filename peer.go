package gofunc

import "context"

// Role is what a certificate was issued for. The CA writes it into every
// certificate it signs; a peer cannot choose its own.
type Role string

// Roles.
const (
	RoleMinion     Role = "minion"
	RoleOverlord   Role = "overlord"
	RoleCertmaster Role = "certmaster"
)

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
