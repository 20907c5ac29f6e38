package xmlrpc

import (
	"fmt"
	"strings"

	"github.com/gofunc/gofunc"
)

// EncodeError reports a Go value that has no XML-RPC form: a NaN, a
// channel, a map with int keys, a cycle... Nothing is written when
// encoding fails.
type EncodeError struct {
	// Path locates the bad part from the document's root, for example
	// "result.procs[3].cpu" or "param[1]".
	Path string
	// Reason says what is wrong with it.
	Reason string
}

func (e *EncodeError) Error() string {
	return fmt.Sprintf("xmlrpc: cannot encode %s: %s", e.Path, e.Reason)
}

// prefixPath records that err happened inside the part named seg.
// Paths are built only on the way out of a failure, so encoding a good
// value never pays for them.
func prefixPath(err error, seg string) error {
	if e, ok := err.(*EncodeError); ok {
		e.Path = seg + e.Path
	}
	return err
}

// ResponseError reports a methodResponse that DecodeResponse could not
// decode: the body is malformed, over a limit, or not XML-RPC. A fault
// the server sent is not a ResponseError: DecodeResponse returns it as a
// bare *gofunc.Fault. ResponseError unwraps to its Fault, so
// gofunc.AsFault and errors.Is(err, gofunc.ErrParse) see the code; use
// errors.As with *ResponseError first to tell "the server said so" from
// "the server's answer was broken".
type ResponseError struct {
	Fault *gofunc.Fault
}

func (e *ResponseError) Error() string {
	return "xmlrpc: bad response: " + e.Fault.Message
}

// Unwrap returns the fault describing the problem.
func (e *ResponseError) Unwrap() error { return e.Fault }

func parseFault(format string, args ...any) *gofunc.Fault {
	return gofunc.Errorf(gofunc.CodeParse, format, args...)
}

func invalidFault(format string, args ...any) *gofunc.Fault {
	return gofunc.Errorf(gofunc.CodeInvalid, format, args...)
}

func tooLargeFault(format string, args ...any) *gofunc.Fault {
	return gofunc.Errorf(gofunc.CodeTooLarge, format, args...)
}

// clip shortens hostile input before it is quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// isSpace reports whether s is only XML white space.
func isSpace(s []byte) bool {
	for _, c := range s {
		if !isSpaceByte(c) {
			return false
		}
	}
	return true
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimSpace(s string) string { return strings.Trim(s, " \t\r\n") }

func trimSpaceBytes(s []byte) []byte {
	for len(s) > 0 && isSpaceByte(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpaceByte(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}
