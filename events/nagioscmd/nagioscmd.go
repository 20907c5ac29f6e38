// Package nagioscmd is the Nagios/Icinga bridge: it turns minion events
// into PROCESS_SERVICE_CHECK_RESULT external commands and writes them to
// the command file (a FIFO) that Nagios, Icinga or Naemon reads, so
// their passive services follow the fleet's watchers.
//
//	[1765112400] PROCESS_SERVICE_CHECK_RESULT;web1.example.org;disk root;2;DISK CRITICAL - / 97% used|/=97%;80;95
//
// The host is the event's Minion, which the receiver stamped from the
// minion's verified certificate (events.Receive): never anything the
// event's data says. This is what NSCA could not promise, where anyone
// holding the shared password reports for any host. The service is the
// event's Source (the watcher's name), the return code the plugin's for
// "nagios.state" events and the severity's otherwise (info 0, warning 1,
// critical 2; a watcher that cannot check is 3, UNKNOWN).
package nagioscmd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/gofunc/gofunc/events"
)

// MaxLine bounds one command, newline included: a write of at most
// PIPE_BUF bytes to a FIFO is atomic, so commands from several writers
// never interleave. Longer output is cut.
const MaxLine = 4096

// Errors of Format and Writer.
var (
	// ErrNoHost: the event has no stamped minion (it was not received
	// through events.Receive), or a name no host can have.
	ErrNoHost = errors.New("nagioscmd: event has no verified minion")
	// ErrNotReading: the command file is a FIFO that nobody reads
	// (Nagios is down); nothing was written.
	ErrNotReading = errors.New("nagioscmd: nobody reads the command file")
)

var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$`)

// Return codes.
const (
	OK       = 0
	Warning  = 1
	Critical = 2
	Unknown  = 3
)

// DefaultTypes are the event types Writer sends when its Filter is nil:
// the watchers' states and their failures.
var DefaultTypes = []string{events.TypeNagiosState, events.TypeThresholdState, events.TypeServiceState,
	events.TypeFileChanged, events.TypeWatchFailed, events.TypeWatchSkipped}

// Format returns e as one external command line, ending in "\n".
func Format(e events.Event) (string, error) {
	if !hostPattern.MatchString(e.Minion) {
		return "", fmt.Errorf("%w: %q", ErrNoHost, e.Minion)
	}
	if !events.ValidSource(e.Source) {
		return "", fmt.Errorf("nagioscmd: source %q cannot be a service description", e.Source)
	}
	code, text, perf, err := describe(e)
	if err != nil {
		return "", err
	}
	head := fmt.Sprintf("[%d] PROCESS_SERVICE_CHECK_RESULT;%s;%s;%d;", e.Time.Unix(), e.Minion, e.Source, code)
	output := escape(text)
	if perf != "" {
		output += "|" + oneLine(perf)
	}
	if room := MaxLine - len(head) - 1; len(output) > room {
		output = cut(output, room)
	}
	return head + output + "\n", nil
}

// describe maps an event to a return code, text and perfdata.
func describe(e events.Event) (code int, text, perf string, err error) {
	d, err := e.Decode()
	if err != nil {
		return 0, "", "", err
	}
	code = severityCode(e.Severity)
	switch d := d.(type) {
	case *events.NagiosState:
		code = d.Code
		if code < OK || code > Unknown {
			code = Unknown
		}
		text = d.Output
		if d.LongOutput != "" {
			text += "\n" + d.LongOutput
		}
		var items []string
		for _, p := range d.Perfdata {
			items = append(items, p.String())
		}
		perf = strings.Join(items, " ")
	case *events.ThresholdState:
		what := d.Metric
		if d.Path != "" {
			what += " " + d.Path
		}
		text = fmt.Sprintf("%s %s - %s is %s%s (warn %s, crit %s)", strings.ToUpper(d.Metric), strings.ToUpper(d.Level),
			what, num(d.Value), d.Unit, num(d.Warn), num(d.Crit))
		perf = (events.Perf{Label: what, Value: d.Value, UOM: d.Unit, Warn: warnRange(d.Warn), Crit: num(d.Crit)}).String()
	case *events.ServiceState:
		text = fmt.Sprintf("SERVICE %s - %s is %s/%s", strings.ToUpper(string(e.Severity)), d.Unit, d.Active, d.Sub)
		if d.PrevActive != "" {
			text += fmt.Sprintf(" (was %s/%s)", d.PrevActive, d.PrevSub)
		}
	case *events.FileChanged:
		text = fmt.Sprintf("FILE CHANGED - %s", d.Path)
		if len(d.Changed) > 0 {
			text += ": " + strings.Join(d.Changed, ", ")
		}
		if d.Now.SHA256 != "" {
			text += " (sha256 " + d.Now.SHA256[:12] + ")"
		}
	case *events.WatchProblem:
		code = Unknown
		text = fmt.Sprintf("WATCH %s - %s", strings.ToUpper(strings.TrimPrefix(d.EventType(), "watch.")), d.Error)
		if d.EventType() == events.TypeWatchRecovered {
			code, text = OK, "WATCH RECOVERED"
		}
	default:
		text = fmt.Sprintf("%s %s", e.Type, e.Data)
	}
	return code, text, perf, nil
}

func severityCode(s events.Severity) int {
	switch s {
	case events.SeverityInfo:
		return OK
	case events.SeverityWarning:
		return Warning
	case events.SeverityCritical:
		return Critical
	}
	return Unknown
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func warnRange(w float64) string {
	if w == 0 {
		return ""
	}
	return num(w)
}

// escape makes text one line of plugin output: a backslash doubled,
// line breaks written as \n (Nagios and Icinga turn them back into the
// long output), other control characters dropped, and '|' (which would
// start the perfdata) replaced by '¦'.
func escape(text string) string {
	var b strings.Builder
	text = strings.ReplaceAll(text, "\r\n", "\n")
	for _, r := range text {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '|':
			b.WriteRune('¦')
		case r < ' ' || r == 0x7f:
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// oneLine drops the control characters of perfdata (it has no line
// breaks to keep).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '|' {
			return -1
		}
		return r
	}, s)
}

// cut shortens s to n bytes without splitting a rune or an escape.
func cut(s string, n int) string {
	if n <= 0 {
		return ""
	}
	s = strings.ToValidUTF8(s[:n], "")
	if trailing := len(s) - len(strings.TrimRight(s, `\`)); trailing%2 == 1 {
		s = s[:len(s)-1]
	}
	return s
}

// Writer writes events to a Nagios command file. Each Write opens the
// file anew (Nagios recreates its FIFO when it restarts) and never
// blocks: a FIFO nobody reads gives ErrNotReading, a full one an error
// after the commands that fit.
type Writer struct {
	// Path is the command file: Nagios's nagios.cmd, Icinga 2's
	// icinga2.cmd. It must be a FIFO or a regular file.
	Path string
	// Filter selects the events to send; nil means those whose type is
	// in DefaultTypes.
	Filter func(events.Event) bool
}

// Write sends the events Filter selects, in order, and returns how many
// of evs were dealt with (written or filtered out): a consumer moves its
// cursor past that many. Each command is one write of at most MaxLine
// bytes. An event that cannot be formatted (no stamped minion) stops
// Write with its error.
func (w *Writer) Write(ctx context.Context, evs []events.Event) (int, error) {
	f, err := os.OpenFile(w.Path, os.O_WRONLY|os.O_APPEND|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ENXIO) {
		return 0, fmt.Errorf("%w: %s", ErrNotReading, w.Path)
	}
	if err != nil {
		return 0, fmt.Errorf("nagioscmd: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("nagioscmd: %w", err)
	}
	if t := fi.Mode().Type(); t != fs.ModeNamedPipe && t != 0 {
		return 0, fmt.Errorf("nagioscmd: %s is neither a FIFO nor a regular file", w.Path)
	}
	for i, e := range evs {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if !w.selects(e) {
			continue
		}
		line, err := Format(e)
		if err != nil {
			return i, err
		}
		if _, err := f.Write([]byte(line)); err != nil {
			return i, fmt.Errorf("nagioscmd: write %s: %w", w.Path, err)
		}
	}
	return len(evs), nil
}

func (w *Writer) selects(e events.Event) bool {
	if w.Filter != nil {
		return w.Filter(e)
	}
	for _, t := range DefaultTypes {
		if e.Type == t {
			return true
		}
	}
	return false
}
