package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
)

// Limits on argument summaries.
const (
	// MaxStringBytes: a longer string is summarized as its first
	// MaxStringBytes bytes (cut at a character boundary), its size and
	// its SHA-256.
	MaxStringBytes = 4 << 10
	// MaxArgBytes: an argument whose summary still encodes longer (a
	// huge array, say) is summarized as the size and SHA-256 of its
	// canonical encoding.
	MaxArgBytes = 16 << 10
	// MaxArgsBytes: when the summaries of a call's arguments together
	// encode longer (hundreds of large arguments), the arguments from
	// the first that does not fit on are folded into one last entry
	// {"more_args": n, "size": bytes, "sha256": hex} over their
	// canonical encoding, so that a record always fits MaxRecordBytes.
	MaxArgsBytes = 256 << 10
)

// Redacted replaces a Secret argument in summaries and digests.
const Redacted = "[redacted]"

// SummarizeArgs turns a call's arguments into what the audit log may
// hold, and digests them. docs are the method's ArgDocs, in order; an
// argument without one is treated as plain.
//
// In the summary:
//   - a Secret argument becomes "[redacted]";
//   - a Content argument (string or []byte) becomes {"size": n, "sha256": hex};
//   - any []byte, at any depth, becomes {"size": n, "sha256": hex};
//   - a string longer than MaxStringBytes, at any depth, becomes
//     {"head": its first 4 KiB, "size": n, "sha256": hex};
//   - a float that is NaN or infinite becomes "NaN", "+Inf" or "-Inf";
//   - an argument whose summary is over MaxArgBytes becomes {"size", "sha256"}
//     of its canonical encoding (see Digest);
//   - everything else is kept; values of other Go types (an overlord
//     passing structs) are first converted through encoding/json;
//   - arguments past MaxArgsBytes of summaries are folded into one
//     {"more_args", "size", "sha256"} entry, so the summary may be
//     shorter than args.
//
// sha256 values there are bare lower-case hex, as sha256sum prints them.
//
// digest is Digest of the arguments with every Secret argument replaced
// by "[redacted]": it proves what was sent, Content included, without
// being a way to test guesses of a low-entropy secret (a password's
// digest could be brute-forced). It is computed over the original
// values, not the summary.
func SummarizeArgs(args []any, docs []gofunc.ArgDoc) (summary []any, digest string) {
	if len(args) == 0 {
		// Most calls that many callers repeat (test.ping, facts) have
		// none: the digest of no arguments is a constant.
		return []any{}, noArgsDigest
	}
	summary = make([]any, len(args))
	digestable := make([]any, len(args))
	for i, a := range args {
		var doc gofunc.ArgDoc
		if i < len(docs) {
			doc = docs[i]
		}
		switch {
		case doc.Secret:
			summary[i], digestable[i] = Redacted, Redacted
		case len(doc.SecretFields) > 0:
			r := redactFields(a, doc.SecretFields)
			summary[i], digestable[i] = boundSize(summarize(r), r), r
		case doc.Content:
			summary[i], digestable[i] = contentSummary(a), a
		default:
			summary[i], digestable[i] = boundSize(summarize(a), a), a
		}
	}
	return boundTotal(summary, digestable), Digest(digestable)
}

// boundTotal keeps the summaries that fit in MaxArgsBytes together and
// folds the rest into one entry.
func boundTotal(summary, digestable []any) []any {
	total := 0
	for i, s := range summary {
		b, _ := json.Marshal(s)
		if total += len(b) + 1; total > MaxArgsBytes {
			rest := canonical(digestable[i:])
			more := map[string]any{"more_args": int64(len(summary) - i), "size": int64(len(rest)), "sha256": sha256Hex(rest)}
			return append(summary[:i:i], more)
		}
	}
	return summary
}

// redactFields replaces the named members of a struct argument; a value
// that is not a struct is redacted whole, since its secrets cannot be
// told apart.
func redactFields(v any, fields []string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return Redacted
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		out[k] = e
	}
	for _, f := range fields {
		if _, present := out[f]; present {
			out[f] = Redacted
		}
	}
	return out
}

// sizeAndHash is the summary of bytes that do not belong in the log.
func sizeAndHash(b []byte) map[string]any {
	return map[string]any{"size": int64(len(b)), "sha256": sha256Hex(b)}
}

func contentSummary(v any) any {
	switch c := v.(type) {
	case string:
		return sizeAndHash([]byte(c))
	case []byte:
		return sizeAndHash(c)
	default:
		return sizeAndHash(canonical(v))
	}
}

// boundSize replaces a summary that is still too large.
func boundSize(summary, original any) any {
	if b, err := json.Marshal(summary); err == nil && len(b) <= MaxArgBytes {
		return summary
	}
	return sizeAndHash(canonical(original))
}

// summarize is SummarizeArgs for one plain value.
func summarize(v any) any {
	switch x := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, json.Number:
		return x
	case float64:
		return finite(x)
	case float32:
		return finite(float64(x))
	case string:
		if len(x) > MaxStringBytes {
			return map[string]any{"head": headUTF8(x, MaxStringBytes), "size": int64(len(x)), "sha256": sha256Hex([]byte(x))}
		}
		return x
	case []byte:
		return sizeAndHash(x)
	case time.Time:
		return x.UTC()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = summarize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = summarize(e)
		}
		return out
	default:
		generic, err := viaJSON(v)
		if err != nil {
			return map[string]any{"type": fmt.Sprintf("%T", v), "error": "not encodable"}
		}
		return summarize(generic)
	}
}

// finite keeps f, or names it if JSON cannot hold it.
func finite(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return f
}

// headUTF8 returns at most n bytes of s, not splitting a character.
func headUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// viaJSON converts any Go value to the generic types encoding/json
// decodes into (numbers as json.Number, so they stay exact).
func viaJSON(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	err = dec.Decode(&out)
	return out, err
}

// noArgsDigest is SummarizeArgs's digest of an empty argument list.
var noArgsDigest = Digest([]any{})

// Digest returns "sha256:<hex>" of v's canonical encoding: the
// encoding/json.Marshal output (object keys sorted, no spaces) of v
// after these replacements, at any depth of []any and map[string]any:
// []byte becomes {"$base64": standard base64}, time.Time its RFC 3339
// UTC text with nanoseconds, a NaN or infinite float "NaN", "+Inf" or
// "-Inf". An XML-RPC int 1 and double 1.0 therefore digest alike. A
// value encoding/json cannot encode is digested from its %#v text.
func Digest(v any) string {
	return "sha256:" + sha256Hex(canonical(v))
}

func canonical(v any) []byte {
	b, err := json.Marshal(canonicalValue(v))
	if err != nil {
		return fmt.Appendf(nil, "%#v", v)
	}
	return b
}

func canonicalValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return map[string]any{"$base64": base64.StdEncoding.EncodeToString(x)}
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case float64:
		return finite(x)
	case float32:
		return finite(float64(x))
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonicalValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = canonicalValue(e)
		}
		return out
	default:
		return v
	}
}
