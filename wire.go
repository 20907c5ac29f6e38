package gofunc

// Wire constants shared by the overlord and the minion.
const (
	// DefaultMinionPort and DefaultCertmasterPort are Func's ports.
	DefaultMinionPort     = 51234
	DefaultCertmasterPort = 51235

	// TimeoutHeader carries the caller's remaining time budget, as a Go
	// duration string ("29.5s"), so the minion can cancel the work when
	// the caller would stop waiting. XML-RPC itself has no deadline.
	TimeoutHeader = "Gofunc-Timeout"

	// CallIDHeader is set by the minion on every response: the call's
	// id in the minion's audit log, to quote when asking what happened.
	CallIDHeader = "Gofunc-Call-Id"

	// AuditHeadHeader is set by the minion on the answer to every call
	// that passed the ACL: the position of its audit log just after the
	// call's records, "seq:hash" (audit.Checkpoint's String). The
	// overlord keeps it in its own log, so that a minion's log rewritten
	// afterwards can be caught (audit.VerifyWitnessed).
	AuditHeadHeader = "Gofunc-Audit-Head"

	// OnBehalfOfHeader names the person a program calls for, as
	// "name@role" (the dashboard: "alice@operator"). Only a certificate
	// of role delegate may send it; the minion refuses it from any
	// other, records it with the call, and applies its ACL's deny rules
	// to the person as well as to the caller.
	OnBehalfOfHeader = "Gofunc-On-Behalf-Of"
)
