package brokerd

import (
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/identity"
)

// ErrRoleRefused: a certificate of a role the broker admits nobody of
// (certmaster, viewer, operator, admin, or broker on a client port).
var ErrRoleRefused = errors.New("brokerd: role may not connect")

// Subjects every role may use, beside the per-name ones.
const (
	allCalls      = broker.CallPrefix + "*"         // any one minion's call subject
	allBroadcasts = broker.SubjectRoot + ".bcast.>" // gf.v1.bcast.all and gf.v1.bcast.site.<site>
	allReplies    = broker.ReplyPrefix + ">"        // any caller's answers
	allEvents     = broker.EventPrefix + ">"        // every minion's hello, bye and events
)

// Permissions returns the subjects a client holding cert may publish
// and subscribe to, by the role and name the CA wrote into it (least
// privilege; everything not listed, $SYS and $JS included, is denied):
//
//   - minion NAME: subscribe to its own calls (broker.CallSubject(NAME))
//     and gf.v1.bcast.all; publish answers (gf.v1.rpl.>) and its own
//     events (broker.EventSubject(NAME) + ".>"). A minion never makes
//     requests, so it gets no _INBOX.
//   - overlord and delegate: publish calls (gf.v1.call.*) and
//     broadcasts (gf.v1.bcast.>); subscribe to the answers to its own key
//     (broker.ReplyInbox(cert) + ".>") and to minion events (gf.v1.evt.>).
//   - monitor: subscribe to gf.v1.evt.> only.
//
// and for jobs over JetStream (see jetstream.go): a minion may read
// GF_JOBS by direct get, hear its own doorbell, publish its own results
// and take the answers (PubAcks, direct gets) on its own inbox
// (broker.MinionInbox);
// an overlord may publish jobs, job records and doorbells and read
// both streams by direct get. Nobody may create, change or delete a
// stream or a consumer: the broker makes the streams itself.
//
// Any other role gets ErrRoleRefused. cert must come from a verified
// chain (the broker's TLS handshake checks it).
func Permissions(cert *x509.Certificate) (*server.Permissions, error) {
	p, err := identity.PeerOf(cert)
	if err != nil {
		return nil, err
	}
	switch p.Role {
	case gofunc.RoleMinion:
		call, err := broker.CallSubject(p.Name)
		if err != nil {
			return nil, err
		}
		events, err := broker.EventSubject(p.Name)
		if err != nil {
			return nil, err
		}
		jobPub, jobSub, err := minionJobSubjects(p.Name)
		if err != nil {
			return nil, err
		}
		return perms(append([]string{allReplies, events + ".>"}, jobPub...), append([]string{call, broker.BroadcastAll}, jobSub...)), nil
	case gofunc.RoleOverlord, gofunc.RoleDelegate:
		return perms(append([]string{allCalls, allBroadcasts}, overlordJobSubjects...), []string{broker.ReplyInbox(cert) + ".>", allEvents}), nil
	case gofunc.RoleMonitor:
		return perms(nil, []string{allEvents}), nil
	}
	return nil, fmt.Errorf("%w: %s is a %s", ErrRoleRefused, p.Name, p.Role)
}

// LeafPermissions are what a site broker connecting as a leaf node may
// do, seen from that leaf (nats-server turns them around on the hub's
// side): publish into the hub the answers and events of the minions
// behind it, and receive the calls and broadcasts the hub routes to
// them. A leaf never gets an overlord's answers or another site's
// events, so a compromised site broker learns nothing of the rest of the
// fleet beyond the calls addressed to its own minions... and to any
// other minion, since call subjects cannot name a site: keep overlords
// off site brokers and let the signed audience decide.
func LeafPermissions() *server.Permissions {
	return perms([]string{allReplies, allEvents}, []string{allCalls, allBroadcasts})
}

// perms builds allow-only permissions. An empty list denies everything
// for its direction: nats-server reads a nil publish allow list, and an
// empty subscribe allow list, as "allow all", so an empty one becomes a
// deny of ">".
func perms(pub, sub []string) *server.Permissions {
	return &server.Permissions{Publish: allowOnly(pub), Subscribe: allowOnly(sub)}
}

func allowOnly(subjects []string) *server.SubjectPermission {
	if len(subjects) == 0 {
		return &server.SubjectPermission{Allow: []string{}, Deny: []string{">"}}
	}
	return &server.SubjectPermission{Allow: subjects}
}
