package events

import (
	"fmt"
	"time"
)

// Phase is a moment in a minion's life that it always reports.
type Phase string

// Phases of Lifecycle events; the event type is "lifecycle.<phase>".
const (
	PhaseStarted     Phase = "started"
	PhaseStopping    Phase = "stopping"
	PhaseCertRenewed Phase = "cert_renewed"
	PhaseACLReloaded Phase = "acl_reloaded"
)

var lifecyclePhases = []Phase{PhaseStarted, PhaseStopping, PhaseCertRenewed, PhaseACLReloaded}

// Lifecycle is a minion lifecycle event: the minion calls
// Journal.Lifecycle when it starts, stops, renews its certificate and
// reloads its ACL.
type Lifecycle struct {
	Phase   Phase  `json:"-"`
	Version string `json:"version,omitempty"` // the minion's version (started)
	// Serial and NotAfter describe the certificate in use (started,
	// cert_renewed): lower-case hex serial, expiry.
	Serial   string    `json:"serial,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	// Detail is free text: why it stops, which ACL files were read.
	Detail string `json:"detail,omitempty"`
}

// EventType is "lifecycle." + the phase.
func (l *Lifecycle) EventType() string { return TypeLifecyclePrefix + string(l.Phase) }

// EventSeverity is info.
func (*Lifecycle) EventSeverity() Severity { return SeverityInfo }

func (l *Lifecycle) validate() error {
	for _, p := range lifecyclePhases {
		if l.Phase == p {
			return nil
		}
	}
	return fmt.Errorf("events: unknown lifecycle phase %q", l.Phase)
}

// Lifecycle records a lifecycle event with Source "minion".
func (j *Journal) Lifecycle(l Lifecycle) (Event, error) {
	if err := l.validate(); err != nil {
		return Event{}, err
	}
	return j.Emit(SourceMinion, &l)
}
