package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/hashchain"
)

// Record kinds written by the minion, the overlord and the log itself.
// Kind is free-form (the ca package names its own, "ca.sign" and so on);
// these constants keep the common spellings the same everywhere.
const (
	KindCallStart       = "call.start"        // minion: written and synced before the method runs
	KindCallEnd         = "call.end"          // minion: outcome, duration, result digest
	KindCallDenied      = "call.denied"       // minion: the ACL refused the call
	KindCallRejected    = "call.rejected"     // minion: the call never reached a method (bad request, no such method)
	KindCallsSuppressed = "call.suppressed"   // minion: how many refusals of one caller the rate limit kept out of the log
	KindTLSRefused      = "tls.refused"       // minion: a TLS handshake refused for its certificate (revoked, unknown CA, no role...)
	KindOverlordCall    = "overlord.call"     // overlord: a call sent to Targets, before any host is called
	KindOverlordCallEnd = "overlord.call.end" // overlord: each host's outcome
	KindOverlordHeads   = "overlord.heads"    // overlord: each host's audit-log head after the call (seq:hash), a witness for VerifyWitnessed
	KindLogRecovered    = "log.recovered"     // Open cut off a torn final line; Details describe it
)

// Outcomes of a call, for Record.Outcome.
const (
	OutcomeOK     = "ok"
	OutcomeFault  = "fault"
	OutcomeDenied = "denied"
	OutcomeError  = "error"
	// OutcomeLost: an async job was running when its minion stopped.
	OutcomeLost = "lost"
)

// Outcomes lists every value gofunc's own writers put in
// Record.Outcome, for tools that filter on it (func audit query
// --outcome): the outcomes above; the name of the fault a rejected
// call got (gofunc.Code's String, such as "bad arguments" or "no such
// method"); and the certmaster's request states (pending, signed,
// rejected, conflict).
var Outcomes = outcomes()

func outcomes() []string {
	out := []string{OutcomeOK, OutcomeFault, OutcomeDenied, OutcomeError, OutcomeLost, "pending", "signed", "rejected"}
	for _, c := range []gofunc.Code{gofunc.CodeModule, gofunc.CodeParse, gofunc.CodeInvalid, gofunc.CodeNoSuchMethod,
		gofunc.CodeBadArgs, gofunc.CodeInternal, gofunc.CodeTimeout, gofunc.CodeTooLarge, gofunc.CodeBusy,
		gofunc.CodeAuditFailed, gofunc.CodeCanceled, gofunc.CodeNotFound, gofunc.CodeUnavailable, gofunc.CodeConflict} {
		out = append(out, c.String())
	}
	return out
}

// Record is one line of the audit log.
//
// Append fills Seq, Prev and Hash, and Time when it is zero; the caller
// fills the rest. See the package documentation for the exact encoding
// and how Hash is computed.
type Record struct {
	Seq    uint64    `json:"seq"`               // 1 for the first record of a chain, then +1 per record
	Time   time.Time `json:"time"`              // UTC; Append sets it from Config.Clock when zero
	Kind   string    `json:"kind"`              // "call.start", "call.end", "ca.sign", ... (the Kind constants)
	CallID string    `json:"call_id,omitempty"` // links a call's start and end records
	Caller string    `json:"caller,omitempty"`  // certificate CN
	Role   string    `json:"role,omitempty"`
	Serial string    `json:"serial,omitempty"` // certificate serial, lower-case hex
	Remote string    `json:"remote,omitempty"`
	Method string    `json:"method,omitempty"`
	// Args are the summarized, redacted arguments (see SummarizeArgs);
	// never put raw arguments here.
	Args       []any    `json:"args,omitempty"`
	ArgsDigest string   `json:"args_digest,omitempty"` // "sha256:<hex>", see SummarizeArgs
	Targets    []string `json:"targets,omitempty"`     // overlord: which hosts
	Outcome    string   `json:"outcome,omitempty"`     // "ok", "fault", "denied", "error", ...
	Code       int      `json:"code,omitempty"`        // fault code, when the outcome is a fault
	Error      string   `json:"error,omitempty"`
	// Duration of the call; encoded as integer nanoseconds.
	Duration     time.Duration     `json:"duration_ns,omitempty"`
	ResultDigest string            `json:"result_digest,omitempty"` // "sha256:<hex>"
	Details      map[string]string `json:"details,omitempty"`       // free-form, for ca and log events
	// Prev is the Hash of the previous record: "" (the genesis value) for
	// the record with Seq 1.
	Prev string `json:"prev"`
	// Hash is the lower-case hex SHA-256 of the record's line with Hash
	// empty. It must stay the last field: the encoding relies on it.
	Hash string `json:"hash"`
}

// Genesis is the Prev of a chain's first record.
const Genesis = ""

// MaxRecordBytes bounds one encoded record (one line). Append refuses a
// larger record and the verifier reports a longer line as corrupt.
// SummarizeArgs keeps argument summaries far below it.
const MaxRecordBytes = 1 << 20

// encode returns rec's line (including the final newline) and its hash.
// rec.Hash is ignored.
func encode(rec Record) (line []byte, hash string, err error) {
	return appendEncoded(make([]byte, 0, 512), rec)
}

// appendEncoded appends rec's line to b (see encode). On error b comes
// back unchanged.
func appendEncoded(b []byte, rec Record) (out []byte, hash string, err error) {
	rec.Hash = ""
	start := len(b)
	out, ok := appendRecord(b, &rec)
	if !ok {
		body, err := json.Marshal(rec)
		if err != nil {
			return b, "", fmt.Errorf("encode record: %w", err)
		}
		out = append(b, body...)
	}
	// An unsealed body is only possible if Record's field order changed:
	// a programming error.
	out, hash, err = hashchain.SealAppend(out, start)
	if err != nil {
		return b[:start], "", fmt.Errorf("encode record: %w", err)
	}
	if n := len(out) - start; n > MaxRecordBytes {
		return out[:start], "", fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, n, MaxRecordBytes)
	}
	return out, hash, nil
}

// ParseLine decodes one line of the log (with or without its newline)
// and checks that its Hash matches its content. It does not check the
// chain (Seq and Prev against the previous record): Verify does.
// A line that is not a well-formed record, or whose hash does not match,
// gives a *VerifyError wrapping ErrTampered.
func ParseLine(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	rec, reason := parseLine(line)
	if reason != "" {
		return rec, &VerifyError{Seq: rec.Seq, Reason: reason, Err: ErrTampered}
	}
	return rec, nil
}

// parseLine is ParseLine returning a reason instead of an error, so that
// the verifier can add the file and line.
func parseLine(line []byte) (Record, string) {
	var rec Record
	if len(line) > MaxRecordBytes {
		return rec, fmt.Sprintf("line is %d bytes, longer than any record (%d)", len(line), MaxRecordBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber() // keep integers in Args exact
	if err := dec.Decode(&rec); err != nil {
		return Record{}, "not a record: " + err.Error()
	}
	if dec.More() || dec.InputOffset() != int64(len(line)) {
		return rec, "not a record: extra data after the JSON object"
	}
	hash, err := hashchain.Check(line)
	switch {
	case err != nil:
		return rec, err.Error()
	case hash != rec.Hash:
		return rec, "malformed hash field"
	}
	return rec, ""
}

// String formats the record on one line for people: seq, time, kind,
// then the fields that are set. Args are left out.
func (r Record) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d %s %s", r.Seq, r.Time.UTC().Format(time.RFC3339Nano), r.Kind)
	field := func(name, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%q", name, v)
		}
	}
	field("call", r.CallID)
	field("caller", r.Caller)
	field("role", r.Role)
	field("method", r.Method)
	if len(r.Targets) > 0 {
		field("targets", strings.Join(r.Targets, ","))
	}
	field("outcome", r.Outcome)
	if r.Code != 0 {
		fmt.Fprintf(&b, " code=%d", r.Code)
	}
	field("error", r.Error)
	if r.Duration != 0 {
		fmt.Fprintf(&b, " duration=%s", r.Duration)
	}
	return b.String()
}
