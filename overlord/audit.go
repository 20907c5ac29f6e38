package overlord

import (
	"fmt"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
)

// Audit record kinds the overlord writes: KindCallEnd follows
// audit.KindOverlordCall ("overlord.call", written before any host is
// called) with the same CallID and each host's outcome in Details.
const KindCallEnd = audit.KindOverlordCallEnd

// Bounds on the end record, which must stay under
// audit.MaxRecordBytes even for thousands of hosts.
const (
	maxOutcomeText   = 200
	maxOutcomeDetail = 512 << 10
)

// auditStart writes the overlord.call record: who, what, which targets.
// If it cannot be written the call is not made: what the overlord does
// is recorded before it is done, as on the minion.
func (c *Client) auditStart(r *run) error {
	if c.cfg.Audit == nil {
		return nil
	}
	r.caller = c.id.Name()
	rec := audit.Record{Kind: audit.KindOverlordCall, CallID: r.id, Caller: r.caller, Role: string(c.id.Role()),
		Serial: fmt.Sprintf("%x", c.id.Leaf().SerialNumber), Method: r.req.wire, Targets: r.hosts,
		Details: map[string]string{"spec": r.spec}}
	for k, v := range r.details {
		rec.Details[k] = v
	}
	rec.Args, rec.ArgsDigest = r.req.summary, r.req.digest
	if _, err := c.cfg.Audit.Append(rec); err != nil {
		return fmt.Errorf("%w: overlord audit log: %v", gofunc.ErrAuditFailed, err)
	}
	return nil
}

// auditEnd writes the overlord.call.end record with each host's outcome: "ok"
// (or its note, when notes has one), or the error's text, clipped.
func (c *Client) auditEnd(r *run, outcomes map[string]error, notes map[string]string) {
	if c.cfg.Audit == nil {
		return
	}
	rec := audit.Record{Kind: KindCallEnd, CallID: r.id, Caller: r.caller, Role: string(c.id.Role()),
		Method: r.req.wire, Outcome: audit.OutcomeOK, Duration: time.Since(r.start),
		Details: make(map[string]string, len(outcomes))}
	size, failed := 0, 0
	for _, h := range sortedKeys(outcomes) {
		text := "ok"
		if n, ok := notes[h]; ok {
			text = clipOutcome(n)
		}
		if err := outcomes[h]; err != nil {
			failed++
			text = clipOutcome(err.Error())
		}
		if size += len(h) + len(text) + 8; size > maxOutcomeDetail {
			rec.Details["..."] = "outcomes of further hosts left out: record size limit"
			break
		}
		rec.Details[h] = text
	}
	if failed > 0 {
		rec.Outcome = audit.OutcomeError
		rec.Error = fmt.Sprintf("failed on %d of %d hosts", failed, len(outcomes))
	}
	if _, err := c.cfg.Audit.Append(rec); err != nil {
		c.cfg.Logger.Error("overlord audit write failed", "call_id", r.id, "method", r.req.wire, "error", err)
	}
}

// maxHeadsDetail bounds the Details of one overlord.heads record; more
// hosts' heads go into further records.
const maxHeadsDetail = 512 << 10

// auditHeads writes the audit-log heads the minions sent with their
// answers into overlord.heads records (host -> "seq:hash"), as many as
// the hosts need: witnesses of each minion's log, for
// audit.VerifyWitnessed. A failure is logged: the call is over.
func (c *Client) auditHeads(r *run, heads map[string]audit.Checkpoint) {
	if c.cfg.Audit == nil || len(heads) == 0 {
		return
	}
	rec := audit.Record{}
	size := 0
	flush := func() {
		if len(rec.Details) == 0 {
			return
		}
		if _, err := c.cfg.Audit.Append(rec); err != nil {
			c.cfg.Logger.Error("overlord audit write failed", "call_id", r.id, "kind", audit.KindOverlordHeads, "error", err)
		}
	}
	for _, h := range sortedKeys(heads) {
		if len(rec.Details) == 0 {
			rec = audit.Record{Kind: audit.KindOverlordHeads, CallID: r.id, Caller: r.caller, Role: string(c.id.Role()),
				Method: r.req.wire, Details: map[string]string{}}
			size = 0
		}
		text := heads[h].String()
		rec.Details[h] = text
		if size += len(h) + len(text) + 8; size > maxHeadsDetail {
			flush()
			rec.Details = nil
		}
	}
	flush()
}

func clipOutcome(s string) string {
	if len(s) <= maxOutcomeText {
		return s
	}
	return s[:maxOutcomeText] + "..."
}
