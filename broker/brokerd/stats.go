package brokerd

import (
	"sync/atomic"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Stats is a broker's state for monitoring (package
// broker/brokerd/brokermetrics exports it to Prometheus).
type Stats struct {
	// Clients counts the client connections admitted and still open, by
	// the role of their certificate.
	Clients map[gofunc.Role]int
	// LeafNodes is how many leaf node connections are open; Peers how
	// many other brokers of the cluster this one has routes to.
	LeafNodes, Peers int
	// InMsgs, OutMsgs, InBytes and OutBytes count the messages and bytes
	// received and sent since start, routes and leaf nodes included.
	InMsgs, OutMsgs, InBytes, OutBytes int64
	// SlowConsumers counts connections closed for not reading fast
	// enough.
	SlowConsumers int64
	// Refused counts connections the broker's authentication refused
	// (wrong role, revoked, unverified); Dropped those closed later
	// because their certificate was revoked (Recheck).
	Refused, Dropped uint64
	// CRLNumber is the number of the CRL in force (-1: none);
	// CRLNextUpdate when it is due to be replaced.
	CRLNumber     int64
	CRLNextUpdate time.Time
	// CertNotAfter is when the broker's own certificate expires.
	CertNotAfter time.Time
}

// counters are the broker's own event counts.
type counters struct {
	refused, dropped atomic.Uint64
}

// Stats returns the broker's state now. Counting clients by role walks
// the broker's table of admitted connections (forgetting closed ones).
func (b *Broker) Stats() Stats {
	st := Stats{Clients: map[gofunc.Role]int{}, LeafNodes: b.srv.NumLeafNodes(), Peers: len(b.Peers()),
		Refused: b.counts.refused.Load(), Dropped: b.counts.dropped.Load(),
		CRLNumber: b.id.CRLNumber(), CertNotAfter: b.id.Leaf().NotAfter}
	if crl := b.id.CRLStatus(); crl.Installed {
		st.CRLNextUpdate = crl.NextUpdate
	}
	for id, cert := range b.conns.snapshot() {
		switch {
		case b.srv.GetClient(id) != nil:
			st.Clients[identity.RoleOf(cert)]++
		case b.srv.GetLeafNode(id) == nil:
			b.conns.removeIfOld(id)
		}
	}
	if v, err := b.srv.Varz(nil); err == nil {
		st.InMsgs, st.OutMsgs, st.InBytes, st.OutBytes = v.InMsgs, v.OutMsgs, v.InBytes, v.OutBytes
		st.SlowConsumers = v.SlowConsumers
	}
	return st
}
