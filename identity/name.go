package identity

import (
	"errors"
	"fmt"
	"net"

	"github.com/gofunc/gofunc/internal/clip"
)

// ErrBadName is matched (errors.Is) by every error ValidateName returns.
var ErrBadName = errors.New("identity: bad name")

// NameError says why a name was refused. It matches ErrBadName.
type NameError struct {
	Name   string // the name as given (quoted with %q when printed, clipped)
	Reason string
}

// maxNameInError bounds the part of a refused name an error quotes: the
// name comes from anyone who can reach the certmaster, and it ends up in
// faults, logs and audit records.
const maxNameInError = 64

func (e *NameError) Error() string {
	return fmt.Sprintf("identity: bad name %q: %s", clip.String(e.Name, maxNameInError), e.Reason)
}

// Is makes errors.Is(err, ErrBadName) true.
func (e *NameError) Is(target error) bool { return target == ErrBadName }

// Name limits from RFC 1123 / RFC 1035.
const (
	maxNameLen  = 253
	maxLabelLen = 63
)

// ValidateName checks that name is an RFC 1123 host name and returns its
// canonical form: ASCII letters, digits, hyphens and dots only; labels of
// 1 to 63 characters that neither start nor end with a hyphen; at most
// 253 characters; not an IP address. Upper-case ASCII letters are
// lower-cased, once, here; every later comparison is exact.
//
// The check is done on bytes before any case mapping, so non-ASCII
// look-alikes (the Kelvin sign, which Unicode lower-cases to "k", or
// Cyrillic letters) are refused rather than folded into a name that
// collides with a real one. Minion names and overlord user names both
// follow this rule; "/", "..", spaces and a leading "-" are all refused.
func ValidateName(name string) (string, error) {
	bad := func(reason string) (string, error) {
		return "", &NameError{Name: name, Reason: reason}
	}
	if name == "" {
		return bad("empty")
	}
	if len(name) > maxNameLen {
		return bad(fmt.Sprintf("longer than %d characters", maxNameLen))
	}
	out := make([]byte, len(name))
	labelLen := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '-':
			if labelLen == 0 {
				return bad("a label starts with a hyphen")
			}
		case c == '.':
			if labelLen == 0 {
				return bad("empty label")
			}
			if out[i-1] == '-' {
				return bad("a label ends with a hyphen")
			}
			out[i] = c
			labelLen = 0
			continue
		case c >= 0x80:
			return bad("non-ASCII character")
		default:
			return bad(fmt.Sprintf("character %q not allowed", c))
		}
		out[i] = c
		labelLen++
		if labelLen > maxLabelLen {
			return bad(fmt.Sprintf("a label is longer than %d characters", maxLabelLen))
		}
	}
	if labelLen == 0 {
		return bad("empty label")
	}
	if out[len(out)-1] == '-' {
		return bad("a label ends with a hyphen")
	}
	canon := string(out)
	if net.ParseIP(canon) != nil {
		// A DNS SAN that reads like an address confuses host-name
		// verification; addresses go into IP SANs.
		return bad("an IP address is not a name")
	}
	return canon, nil
}
