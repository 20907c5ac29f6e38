package identity

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Token is an enrollment token: a secret that lets a request be signed
// without waiting for the admin (`certmaster token create` makes one).
// It redacts itself wherever it is printed (fmt verbs, hclog, slog,
// JSON); Reveal gives the secret, for the one place that sends it.
type Token string

const redacted = "[redacted]"

// String returns "[redacted]".
func (Token) String() string { return redacted }

// GoString returns "[redacted]".
func (Token) GoString() string { return redacted }

// Format prints "[redacted]" for every verb, so %s, %q, %x and %#v cannot
// leak it either.
func (Token) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// MarshalJSON encodes "[redacted]".
func (Token) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }

// LogValue redacts the token in log/slog.
func (Token) LogValue() slog.Value { return slog.StringValue(redacted) }

// Reveal returns the secret itself.
func (t Token) Reveal() string { return string(t) }
