package gofunc

import (
	"errors"
	"fmt"
)

// Code is an XML-RPC fault code. Codes are part of the wire protocol:
// they are never renumbered, only added.
type Code int

// Fault codes. The negative codes follow the XML-RPC "specification for
// fault code interoperability"; the -320xx range is gofunc's own server
// errors; positive codes belong to modules.
const (
	// CodeModule is a module's own error: the method ran and failed.
	CodeModule Code = 1

	CodeParse        Code = -32700 // the request is not well-formed XML
	CodeInvalid      Code = -32600 // well-formed XML that is not an XML-RPC call
	CodeNoSuchMethod Code = -32601 // no module or method by that name
	CodeBadArgs      Code = -32602 // wrong argument count, type or value
	CodeInternal     Code = -32603 // the minion failed; the audit log has the detail

	CodeDenied      Code = -32001 // the caller is not allowed to call the method
	CodeTimeout     Code = -32002 // the call's deadline passed
	CodeTooLarge    Code = -32003 // a request or result exceeded a size limit
	CodeBusy        Code = -32004 // too many calls in flight; try again later
	CodeAuditFailed Code = -32005 // the audit record could not be written, so nothing ran
	CodeCanceled    Code = -32006 // the caller went away or the server is shutting down
	CodeNotFound    Code = -32007 // a named object (job, file, service) does not exist
	CodeUnavailable Code = -32008 // the facility a method needs is missing on this host
	CodeConflict    Code = -32009 // the request conflicts with existing state
)

var codeNames = map[Code]string{
	CodeModule:       "module error",
	CodeParse:        "parse error",
	CodeInvalid:      "invalid request",
	CodeNoSuchMethod: "no such method",
	CodeBadArgs:      "bad arguments",
	CodeInternal:     "internal error",
	CodeDenied:       "denied",
	CodeTimeout:      "timeout",
	CodeTooLarge:     "too large",
	CodeBusy:         "busy",
	CodeAuditFailed:  "audit failed",
	CodeCanceled:     "canceled",
	CodeNotFound:     "not found",
	CodeUnavailable:  "unavailable",
	CodeConflict:     "conflict",
}

// String returns the code's short name, or its number for unknown codes.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", int(c))
}

// Fault is an XML-RPC fault: an error that crossed, or will cross, the
// wire. Remote faults decoded by the overlord are *Fault values too, so
// errors.Is(err, gofunc.ErrDenied) works on either side.
type Fault struct {
	Code    Code
	Message string
}

func (f *Fault) Error() string {
	return fmt.Sprintf("fault %d (%s): %s", int(f.Code), f.Code, f.Message)
}

// Is matches any fault with the same code, local or remote.
func (f *Fault) Is(target error) bool {
	t, ok := target.(*Fault)
	return ok && t.Code == f.Code
}

// Sentinel faults, one per server code, for errors.Is.
var (
	ErrParse        = &Fault{Code: CodeParse, Message: "parse error"}
	ErrInvalid      = &Fault{Code: CodeInvalid, Message: "invalid request"}
	ErrNoSuchMethod = &Fault{Code: CodeNoSuchMethod, Message: "no such method"}
	ErrBadArgs      = &Fault{Code: CodeBadArgs, Message: "bad arguments"}
	ErrInternal     = &Fault{Code: CodeInternal, Message: "internal error"}
	ErrDenied       = &Fault{Code: CodeDenied, Message: "denied"}
	ErrTimeout      = &Fault{Code: CodeTimeout, Message: "timeout"}
	ErrTooLarge     = &Fault{Code: CodeTooLarge, Message: "too large"}
	ErrBusy         = &Fault{Code: CodeBusy, Message: "busy"}
	ErrAuditFailed  = &Fault{Code: CodeAuditFailed, Message: "audit failed"}
	ErrCanceled     = &Fault{Code: CodeCanceled, Message: "canceled"}
	ErrNotFound     = &Fault{Code: CodeNotFound, Message: "not found"}
	ErrUnavailable  = &Fault{Code: CodeUnavailable, Message: "unavailable"}
	ErrConflict     = &Fault{Code: CodeConflict, Message: "conflict"}
)

// Errorf returns a *Fault with the given code and a formatted message.
// Modules use it to choose the code their caller sees, for example
// gofunc.Errorf(gofunc.CodeBadArgs, "argv is empty").
func Errorf(code Code, format string, args ...any) *Fault {
	return &Fault{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsFault returns err as a *Fault: err itself (or the fault it wraps), or
// a CodeModule fault carrying err's text. A nil err gives nil.
func AsFault(err error) *Fault {
	if err == nil {
		return nil
	}
	var f *Fault
	if errors.As(err, &f) {
		return f
	}
	return &Fault{Code: CodeModule, Message: err.Error()}
}
