package minion

import (
	"fmt"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// maxBehalfBytes bounds the on_behalf_of claim a caller may send.
const maxBehalfBytes = 256

// onBehalfOf is the person a delegate calls for: a program such as the
// dashboard, whose own certificate (role delegate) is the caller, names
// the person it acts for with each call (gofunc.OnBehalfOfHeader, or
// Inbound.OnBehalfOf), as "name@role".
//
// The claim is the delegate's word, so it can only narrow what the call
// may do, never widen it: only a delegate certificate may make it (any
// other caller that sends one is denied: an overlord cannot pass its
// calls off as someone else's), the ACL's grants are the delegate's
// (the minion's ACL bounds the dashboard), and the ACL's deny rules
// also apply to the person ("!intern-*@* = command.*" holds through the
// dashboard too). The person is recorded with every record of the call
// (Details["on_behalf_of"]).
func (s *Server) checkBehalf(req *request, method string) *gofunc.Fault {
	if req.behalf == "" {
		return nil
	}
	if req.peer.Role != gofunc.RoleDelegate {
		return gofunc.Errorf(gofunc.CodeDenied, "%s (%s) may not call on behalf of someone: only a delegate certificate may",
			req.peer.Name, req.peer.Role)
	}
	person, err := parseBehalf(req.behalf)
	if err != nil {
		return gofunc.Errorf(gofunc.CodeDenied, "bad %s claim from %s: %v", gofunc.OnBehalfOfHeader, req.peer.Name, err)
	}
	if rule := s.CurrentACL().denyRule(person, method); rule != nil {
		return gofunc.Errorf(gofunc.CodeDenied, "%s may not call %s through %s: denied by rule %s",
			req.behalf, method, req.peer.Name, rule.where())
	}
	return nil
}

// parseBehalf reads "name@role": a valid certificate name and one of
// the roles people hold (viewer, operator, admin).
func parseBehalf(v string) (gofunc.Peer, error) {
	if len(v) > maxBehalfBytes {
		return gofunc.Peer{}, fmt.Errorf("longer than %d bytes", maxBehalfBytes)
	}
	name, role, ok := strings.Cut(v, "@")
	if !ok {
		return gofunc.Peer{}, fmt.Errorf("%q: want name@role", v)
	}
	canon, err := identity.ValidateName(name)
	if err != nil {
		return gofunc.Peer{}, err
	}
	switch r := gofunc.Role(role); r {
	case gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin:
		return gofunc.Peer{Name: canon, Role: r}, nil
	}
	return gofunc.Peer{}, fmt.Errorf("%q: a person's role is viewer, operator or admin", role)
}

// denyRule returns the first deny rule that matches p calling method,
// nil when none does.
func (a *ACL) denyRule(p gofunc.Peer, method string) *Rule {
	for i := range a.Rules {
		r := &a.Rules[i]
		if !r.Deny || !r.matchesPeer(p) {
			continue
		}
		if _, any := r.matchesMethod(method); any {
			return r
		}
	}
	return nil
}
