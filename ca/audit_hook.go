package ca

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/gofunc/gofunc/audit"
)

// AuditLog is where the CA writes its records; *audit.Log implements it.
// Append must be durable when it returns (audit.Log's is).
type AuditLog interface {
	Append(rec audit.Record) (audit.Record, error)
}

// Audit record kinds the CA writes.
const (
	KindRequest     = "ca.request"
	KindSign        = "ca.sign"
	KindReject      = "ca.reject"
	KindRevoke      = "ca.revoke"
	KindClean       = "ca.clean"
	KindTokenCreate = "ca.token.create"
	KindTokenUse    = "ca.token.use"
	KindTokenRevoke = "ca.token.revoke"
	KindConflict    = "ca.conflict"
	KindRenew       = "ca.renew"
)

// event is the CA's view of an audit record.
type event struct {
	Kind    string
	Caller  string // the certificate or request's name
	Role    string
	Serial  string
	Remote  string
	Method  string
	Outcome string
	Error   string
	Details map[string]string
}

// audit appends ev to the audit log, if there is one. An error means the
// record is not durable and the caller must not go on with the action.
func (a *Authority) audit(ev event) error {
	if a.cfg.Audit == nil {
		return nil
	}
	if ev.Outcome == "" {
		ev.Outcome = audit.OutcomeOK
	}
	_, err := a.cfg.Audit.Append(audit.Record{
		Kind: ev.Kind, Caller: ev.Caller, Role: ev.Role, Serial: ev.Serial, Remote: ev.Remote,
		Method: ev.Method, Outcome: ev.Outcome, Error: ev.Error, Details: ev.Details,
	})
	if err != nil {
		a.logger().Error("audit write failed", "kind", ev.Kind, "error", err)
		return fmt.Errorf("ca: audit: %w", err)
	}
	return nil
}

// SharedAudit is an AuditLog over the audit log file at Path that
// several processes can write: the certmaster daemon and the admin's
// certmaster commands both record into DIR/audit.log, one hash chain.
// An open audit.Log locks its file, so SharedAudit opens the log for
// each record and closes it after, waiting (up to Wait, default 10 s)
// while another process holds it. Safe for concurrent use.
type SharedAudit struct {
	Path   string
	Config audit.Config
	// Wait bounds how long Append waits for another process's lock;
	// zero means 10 s.
	Wait time.Duration

	mu sync.Mutex
}

// Append opens the log, appends rec durably, and closes the log.
func (s *SharedAudit) Append(rec audit.Record) (audit.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := s.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		l, err := audit.Open(s.Path, s.Config)
		if errors.Is(err, audit.ErrLocked) && time.Now().Before(deadline) {
			time.Sleep(pause + mrand.N(pause))
			pause = min(2*pause, 50*time.Millisecond)
			continue
		}
		if err != nil {
			return audit.Record{}, err
		}
		out, err := l.Append(rec)
		if cerr := l.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return out, err
	}
}
