// Package clip bounds untrusted text before it goes into an error, a log
// line or an audit record: a 60 KB name must not become a 700 KB record.
package clip

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"
)

// String returns s when it is at most max bytes, else its first max
// bytes (not splitting a UTF-8 character) followed by the size and a
// SHA-256 prefix of the whole, so that two long inputs can still be told
// apart and matched against a copy:
//
//	">>>>…[60000 bytes, sha256:4f2a…]"
func String(s string, max int) string {
	if len(s) <= max {
		return s
	}
	head := s[:max]
	for len(head) > 0 && !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%s…[%d bytes, sha256:%s]", head, len(s), hex.EncodeToString(sum[:8]))
}
