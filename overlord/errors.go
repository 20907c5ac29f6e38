package overlord

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gofunc/gofunc"
)

// Per-host failure kinds, for errors.Is. A remote fault is a
// *gofunc.Fault instead: errors.Is(err, gofunc.ErrDenied).
var (
	// ErrUnreachable: the minion could not be reached (refused, no
	// route, connection dropped mid-call).
	ErrUnreachable = errors.New("unreachable")
	// ErrTimeout: the host did not answer within HostTimeout or the
	// caller's deadline. It is gofunc.ErrTimeout, so a local timeout
	// and a minion's timeout fault match the same test.
	ErrTimeout = gofunc.ErrTimeout
	// ErrImpersonation: the minion's certificate does not name the host
	// that was dialled.
	ErrImpersonation = errors.New("impersonation: certificate does not name the host dialled")
	// ErrWrongRole: the certificate names the host dialled but is not a
	// minion's (a certmaster's or an overlord's, say). It matches
	// ErrImpersonation too.
	ErrWrongRole = fmt.Errorf("%w (wrong role)", ErrImpersonation)
	// ErrUntrusted: the minion's certificate is not signed by our CA,
	// or the CA revoked it (then errors.Is(err, identity.ErrRevoked) too).
	ErrUntrusted = errors.New("untrusted certificate")
	// ErrRejected: the minion ended the TLS session with an alert: it
	// refused our certificate (revoked, expired, from another CA) or
	// our TLS parameters.
	ErrRejected = errors.New("rejected by the minion")
	// ErrProtocol: the minion answered something that is not XML-RPC.
	ErrProtocol = errors.New("protocol error")
)

// HostError is one host's failure.
type HostError struct {
	Host string
	Op   string // the method called
	Err  error
}

func (e *HostError) Error() string { return fmt.Sprintf("%s: %s: %v", e.Host, e.Op, e.Err) }

// Unwrap returns the cause.
func (e *HostError) Unwrap() error { return e.Err }

// CallError is returned by Call when at least one host failed. Its
// Unwrap returns every host's error, so errors.Is(err, gofunc.ErrDenied)
// is true when any host denied the call.
type CallError struct {
	Method string
	Failed int
	Total  int
	Errs   []error // *HostError, sorted by host
}

func (e *CallError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed on %d of %d hosts", e.Method, e.Failed, e.Total)
	for i, err := range e.Errs {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Errs)-3)
			break
		}
		b.WriteString("; ")
		b.WriteString(err.Error())
	}
	return b.String()
}

// Unwrap returns the hosts' errors.
func (e *CallError) Unwrap() []error { return e.Errs }

func newCallError(method string, res Results) error {
	failed := res.Failed()
	if len(failed) == 0 {
		return nil
	}
	e := &CallError{Method: method, Failed: len(failed), Total: len(res)}
	for _, h := range failed {
		e.Errs = append(e.Errs, res[h].Err)
	}
	return e
}

// ErrInterrupted: an async job stopped (its overlord was closed, crashed
// or restarted) before this host's answer was recorded.
var ErrInterrupted = errors.New("interrupted: the overlord stopped before this host answered")

// ErrNoResult: a job finished without recording this host's result (its
// results could not be stored); the host counts as failed.
var ErrNoResult = errors.New("no result recorded for this host")

// wrongRoleError is the TLS check's refusal of a peer whose
// certificate is not a minion's.
type wrongRoleError struct {
	name string
	role string
}

func (e *wrongRoleError) Error() string {
	role := e.role
	if role == "" {
		role = "no"
	}
	return fmt.Sprintf("%v: %s presented a certificate with %s role, not a minion's", ErrWrongRole, e.name, role)
}

func (e *wrongRoleError) Unwrap() error { return ErrWrongRole }

// ErrorKind names the kind of a host's error, for programs and
// output formats: "fault" (the minion answered with a *gofunc.Fault),
// "timeout" (the host timeout passed, here or on the minion),
// "impersonation", "untrusted", "protocol", "unreachable",
// "skipped", "interrupted", "no_result", "canceled", or "error" for
// anything else.
// A nil error gives "".
func ErrorKind(err error) string {
	var f *gofunc.Fault
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrImpersonation):
		return "impersonation"
	case errors.Is(err, ErrUntrusted):
		return "untrusted"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrProtocol):
		return "protocol"
	case errors.Is(err, ErrUnreachable):
		return "unreachable"
	case errors.Is(err, ErrSkipped):
		return "skipped"
	case errors.Is(err, ErrInterrupted):
		return "interrupted"
	case errors.Is(err, ErrNoResult):
		return "no_result"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, ErrTimeout):
		return "timeout" // ours or the minion's: the same to the caller
	case errors.As(err, &f):
		return "fault"
	}
	return "error"
}

// clipText shortens user text quoted in an error.
func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
