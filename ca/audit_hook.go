package ca

import (
	"github.com/gofunc/gofunc/audit"
)

// Audit record kinds the CA writes.
const (
	KindRequest     = "ca.request"
	KindSign        = "ca.sign"
	KindReject      = "ca.reject"
	KindRevoke      = "ca.revoke"
	KindClean       = "ca.clean"
	KindTokenCreate = "ca.token.create"
	KindTokenUse    = "ca.token.use"
	KindTokenRevoke = "ca.token.revoke"
	KindConflict    = "ca.conflict"
	KindRenew       = "ca.renew"
	KindRekey       = "ca.rekey" // the admin allowed a name to re-key
)

// event is the CA's view of an audit record.
type event struct {
	Kind    string
	Caller  string // the certificate or request's name
	Role    string
	Serial  string
	Remote  string
	Method  string
	Outcome string
	Error   string
	Details map[string]string
}

// record is ev as an audit record.
func (ev event) record() audit.Record {
	if ev.Outcome == "" {
		ev.Outcome = audit.OutcomeOK
	}
	return audit.Record{
		Kind: ev.Kind, Caller: ev.Caller, Role: ev.Role, Serial: ev.Serial, Remote: ev.Remote,
		Method: ev.Method, Outcome: ev.Outcome, Error: ev.Error, Details: ev.Details,
	}
}

// audit appends ev to the audit log at once, outside any txn, if there
// is a log. An error means the record is not durable and the caller
// must not go on with the action.
func (a *Authority) audit(ev event) error {
	return a.auditBatch([]event{ev})
}
