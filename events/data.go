package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Data is an event's typed payload. The set of types is closed: the
// ones in this package, each naming its event type, so that a minion
// can only say what its watchers know how to say and every consumer can
// decode it (Event.Decode).
type Data interface {
	// EventType is the event's Type: "nagios.state", ...
	EventType() string
	// EventSeverity is the event's Severity, derived from the data.
	EventSeverity() Severity
}

// Event types: one per Data type, lifecycle events one per phase.
const (
	TypeNagiosState     = "nagios.state"
	TypeThresholdState  = "threshold.state"
	TypeFileChanged     = "file.changed"
	TypeServiceState    = "service.state"
	TypeWatchFailed     = "watch.failed"
	TypeWatchRecovered  = "watch.recovered"
	TypeWatchSkipped    = "watch.skipped"
	TypeDropped         = "events.dropped"
	TypeRecovered       = "events.recovered"
	TypeJournalReset    = "events.reset"
	TypeLifecyclePrefix = "lifecycle."
)

// Sources of the events that no watcher emits.
const (
	SourceMinion  = "minion"  // lifecycle events
	SourceJournal = "journal" // the journal's own: dropped, recovered, reset
)

// ErrUnknownType is wrapped by Event.Decode's error for a type this
// package does not know.
var ErrUnknownType = errors.New("events: unknown event type")

// newData returns a new value of the Go type for an event type.
func newData(typ string) (Data, error) {
	switch typ {
	case TypeNagiosState:
		return new(NagiosState), nil
	case TypeThresholdState:
		return new(ThresholdState), nil
	case TypeFileChanged:
		return new(FileChanged), nil
	case TypeServiceState:
		return new(ServiceState), nil
	case TypeWatchFailed, TypeWatchRecovered, TypeWatchSkipped:
		return &WatchProblem{Kind: typ}, nil
	case TypeDropped:
		return new(Dropped), nil
	case TypeRecovered:
		return new(Recovered), nil
	case TypeJournalReset:
		return new(JournalReset), nil
	}
	for _, p := range lifecyclePhases {
		if typ == TypeLifecyclePrefix+string(p) {
			return &Lifecycle{Phase: p}, nil
		}
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownType, typ)
}

// Perf is one performance data item of a Nagios plugin's output
// ('label'=value[UOM];[warn];[crit];[min];[max]), as modules/nagios
// parses it.
type Perf struct {
	Label   string  `json:"label"`
	Value   float64 `json:"value"`   // 0 when Unknown
	Unknown bool    `json:"unknown"` // the plugin printed "U"
	UOM     string  `json:"uom,omitempty"`
	Warn    string  `json:"warn,omitempty"` // ranges and numbers as printed
	Crit    string  `json:"crit,omitempty"`
	Min     string  `json:"min,omitempty"`
	Max     string  `json:"max,omitempty"`
}

// String formats the item as a plugin prints it, quoting the label when
// needed: modules/nagios.ParsePerfdata reads it back unchanged.
func (p Perf) String() string {
	var b strings.Builder
	if strings.ContainsAny(p.Label, " \t\r\n'=") {
		b.WriteString("'" + strings.ReplaceAll(p.Label, "'", "''") + "'")
	} else {
		b.WriteString(p.Label)
	}
	b.WriteByte('=')
	if p.Unknown {
		b.WriteString("U")
	} else {
		b.WriteString(strconv.FormatFloat(p.Value, 'g', -1, 64))
	}
	b.WriteString(p.UOM)
	fields := []string{p.Warn, p.Crit, p.Min, p.Max}
	last := len(fields)
	for last > 0 && fields[last-1] == "" {
		last--
	}
	for _, f := range fields[:last] {
		b.WriteString(";" + f)
	}
	return b.String()
}

// NagiosState is a Nagios plugin's state change ("nagios.state").
type NagiosState struct {
	Plugin string   `json:"plugin"`
	Args   []string `json:"args,omitempty"`
	// State is OK, WARNING, CRITICAL or UNKNOWN; Previous the state
	// before, "" for the first check a watcher made.
	State    string `json:"state"`
	Previous string `json:"previous,omitempty"`
	// Code is the plugin's exit code (0-3; -1 when a signal ended it).
	Code       int    `json:"code"`
	Output     string `json:"output"`
	LongOutput string `json:"long_output,omitempty"`
	Perfdata   []Perf `json:"perfdata,omitempty"`
}

// EventType implements Data.
func (*NagiosState) EventType() string { return TypeNagiosState }

// EventSeverity is critical for CRITICAL, warning for WARNING and
// UNKNOWN, info for OK.
func (n *NagiosState) EventSeverity() Severity {
	switch n.State {
	case "OK":
		return SeverityInfo
	case "CRITICAL":
		return SeverityCritical
	}
	return SeverityWarning
}

// Levels of a threshold watcher.
const (
	LevelOK       = "ok"
	LevelWarning  = "warning"
	LevelCritical = "critical"
)

// ThresholdState is a metric crossing a threshold ("threshold.state").
type ThresholdState struct {
	// Metric is "disk", "memory" or "load"; Path the disk's mountpoint.
	Metric string  `json:"metric"`
	Path   string  `json:"path,omitempty"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit,omitempty"` // "%" for disk and memory
	// Level is ok, warning or critical; Previous the level before, ""
	// for a watcher's first check.
	Level    string  `json:"level"`
	Previous string  `json:"previous,omitempty"`
	Warn     float64 `json:"warn"`
	Crit     float64 `json:"crit"`
	// Hysteresis is how far below a threshold the value had to fall
	// to leave its level.
	Hysteresis float64 `json:"hysteresis"`
}

// EventType implements Data.
func (*ThresholdState) EventType() string { return TypeThresholdState }

// EventSeverity follows the level.
func (t *ThresholdState) EventSeverity() Severity { return levelSeverity(t.Level) }

func levelSeverity(level string) Severity {
	switch level {
	case LevelCritical:
		return SeverityCritical
	case LevelWarning:
		return SeverityWarning
	}
	return SeverityInfo
}

// FileState is what a file watcher records of a path.
type FileState struct {
	Exists bool   `json:"exists"`
	Type   string `json:"type,omitempty"`   // "file", "dir", "symlink", "other"
	SHA256 string `json:"sha256,omitempty"` // regular files only
	Size   int64  `json:"size"`
	Mode   string `json:"mode,omitempty"` // permission bits in octal, "0644"
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	Target string `json:"target,omitempty"` // a symbolic link's target
}

// FileChanged is a watched path that changed ("file.changed").
type FileChanged struct {
	Path string    `json:"path"`
	Now  FileState `json:"now"`
	// Was is the state before; nil on a watcher's first check.
	Was *FileState `json:"was,omitempty"`
	// Changed names what differs: "created", "deleted", "type",
	// "content", "size", "mode", "owner", "target".
	Changed []string `json:"changed,omitempty"`
}

// EventType implements Data.
func (*FileChanged) EventType() string { return TypeFileChanged }

// EventSeverity is warning: a watched file changed.
func (*FileChanged) EventSeverity() Severity { return SeverityWarning }

// ServiceState is a systemd unit's state change ("service.state").
type ServiceState struct {
	Unit   string `json:"unit"`
	Load   string `json:"load"`   // loaded, not-found, masked, ...
	Active string `json:"active"` // active, inactive, failed, activating, ...
	Sub    string `json:"sub"`    // running, exited, dead, ...
	// PrevActive and PrevSub are the state before; "" on a watcher's
	// first check.
	PrevActive string `json:"prev_active,omitempty"`
	PrevSub    string `json:"prev_sub,omitempty"`
}

// EventType implements Data.
func (*ServiceState) EventType() string { return TypeServiceState }

// EventSeverity is critical for a failed unit, warning for one not
// active, info otherwise.
func (s *ServiceState) EventSeverity() Severity {
	switch s.Active {
	case "failed":
		return SeverityCritical
	case "active", "reloading", "activating":
		return SeverityInfo
	}
	return SeverityWarning
}

// WatchProblem is a watcher that cannot check ("watch.failed"), checks
// again ("watch.recovered") or was not started ("watch.skipped", for
// instance a service watcher on a host without systemd).
type WatchProblem struct {
	Kind  string `json:"-"` // the event type
	Watch string `json:"watch"`
	Error string `json:"error,omitempty"`
}

// EventType implements Data.
func (w *WatchProblem) EventType() string {
	if w.Kind == "" {
		return TypeWatchFailed
	}
	return w.Kind
}

// EventSeverity is info for a recovery, warning otherwise.
func (w *WatchProblem) EventSeverity() Severity {
	if w.Kind == TypeWatchRecovered {
		return SeverityInfo
	}
	return SeverityWarning
}

// Dropped reports events the journal dropped to stay within its bounds
// ("events.dropped"): seqs From to To, Count of them.
type Dropped struct {
	Count uint64 `json:"count"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
}

// EventType implements Data.
func (*Dropped) EventType() string { return TypeDropped }

// EventSeverity is warning: events were lost.
func (*Dropped) EventSeverity() Severity { return SeverityWarning }

// Recovered reports a torn final line (a write cut short by a crash)
// that opening the journal cut off ("events.recovered").
type Recovered struct {
	Segment string `json:"segment"`
	Offset  int64  `json:"offset"`
	Bytes   int    `json:"bytes"`
	SHA256  string `json:"sha256"`
}

// EventType implements Data.
func (*Recovered) EventType() string { return TypeRecovered }

// EventSeverity is warning.
func (*Recovered) EventSeverity() Severity { return SeverityWarning }

// JournalReset starts a new chain after the journal found its files
// damaged and moved them aside ("events.reset").
type JournalReset struct {
	Reason string `json:"reason"`
	// MovedTo is the directory, inside the journal's, holding the
	// damaged files.
	MovedTo string `json:"moved_to"`
	// LastSeq is the last seq the damaged journal held, as far as it
	// could be read.
	LastSeq uint64 `json:"last_seq"`
}

// EventType implements Data.
func (*JournalReset) EventType() string { return TypeJournalReset }

// EventSeverity is critical: the chain was broken.
func (*JournalReset) EventSeverity() Severity { return SeverityCritical }
