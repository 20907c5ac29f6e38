package nagioscmd

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/modules/nagios"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// command is an external command as Nagios reads it.
type command struct {
	time          int64
	host, service string
	code          int
	text          string // output with \n and \\ turned back
	perfdata      []nagios.Perf
}

var commandLine = regexp.MustCompile(`^\[([0-9]{1,19})\] PROCESS_SERVICE_CHECK_RESULT;([^;\n]+);([^;\n]+);([0-9]+);([^\n]*)\n$`)

// parseCommand reads a line the way Nagios core's command file reader
// and process_passive_service_check do (fields split on ';', the output
// the rest of the line, split at the first '|'), and more strictly: a
// bounded length, no control characters, a known return code, only \n
// and \\ escapes, and perfdata the plugin guidelines accept.
func parseCommand(line string) (command, error) {
	var c command
	if len(line) > MaxLine {
		return c, fmt.Errorf("line of %d bytes", len(line))
	}
	m := commandLine.FindStringSubmatch(line)
	if m == nil {
		return c, fmt.Errorf("not a PROCESS_SERVICE_CHECK_RESULT line: %q", line)
	}
	c.time, _ = strconv.ParseInt(m[1], 10, 64)
	c.host, c.service = m[2], m[3]
	code, err := strconv.Atoi(m[4])
	if err != nil || code > 3 {
		return c, fmt.Errorf("return code %q", m[4])
	}
	c.code = code
	if strings.TrimSpace(c.host) != c.host || strings.TrimSpace(c.service) != c.service {
		return c, fmt.Errorf("blanks around host or service")
	}
	text, perf, _ := strings.Cut(m[5], "|")
	for _, r := range m[5] {
		if r < ' ' || r == 0x7f {
			return c, fmt.Errorf("control character %q in the output", r)
		}
	}
	var b strings.Builder
	for i := 0; i < len(text); i++ {
		if text[i] != '\\' {
			b.WriteByte(text[i])
			continue
		}
		if i+1 == len(text) {
			return c, fmt.Errorf("output ends in a lone backslash")
		}
		switch text[i+1] {
		case 'n':
			b.WriteByte('\n')
		case '\\':
			b.WriteByte('\\')
		default:
			return c, fmt.Errorf("unknown escape \\%c", text[i+1])
		}
		i++
	}
	c.text = b.String()
	if c.perfdata, err = nagios.ParsePerfdata(perf); err != nil {
		return c, err
	}
	return c, nil
}

// received emits each data into a journal and returns the events as a
// consumer receives them from minion.
func received(t testing.TB, minion string, ds ...events.Data) []events.Event {
	t.Helper()
	j, err := events.Open(t.TempDir(), events.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, d := range ds {
		source := "disk root"
		if _, ok := d.(*events.Lifecycle); ok {
			source = events.SourceMinion
		}
		if _, err := j.Emit(source, d); err != nil {
			t.Fatal(err)
		}
	}
	b, err := j.Since(events.Request{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := events.Receive(minion, b.Lines)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestFormat(t *testing.T) {
	evs := received(t, "web1.example.org",
		&events.NagiosState{Plugin: "check_disk", State: "CRITICAL", Code: 2, Output: "DISK CRITICAL - / 97% used | not perf",
			LongOutput: "line two; with \\ backslash\r\nline three", Perfdata: []events.Perf{{Label: "/", Value: 97, UOM: "%", Warn: "80", Crit: "95", Min: "0", Max: "100"}, {Label: "it's free", Value: 3, UOM: "GB"}}},
		&events.ThresholdState{Metric: "disk", Path: "/var", Value: 91.5, Unit: "%", Level: "critical", Warn: 80, Crit: 90},
		&events.ServiceState{Unit: "nginx.service", Active: "failed", Sub: "failed", PrevActive: "active", PrevSub: "running"},
		&events.FileChanged{Path: "/etc/passwd", Now: events.FileState{Exists: true, SHA256: strings.Repeat("ab", 32)}, Changed: []string{"content"}},
		&events.WatchProblem{Kind: events.TypeWatchFailed, Watch: "disk root", Error: "no plugin check_disk"},
		&events.NagiosState{Plugin: "check_x", State: "UNKNOWN", Code: -1, Output: "killed"},
	)
	want := []struct {
		code     int
		text     string
		perfdata int
	}{
		{2, "DISK CRITICAL - / 97% used ¦ not perf\nline two; with \\ backslash\nline three", 2},
		{2, "DISK CRITICAL - disk /var is 91.5% (warn 80, crit 90)", 1},
		{2, "SERVICE CRITICAL - nginx.service is failed/failed (was active/running)", 0},
		{1, "FILE CHANGED - /etc/passwd: content (sha256 abababababab)", 0},
		{3, "WATCH FAILED - no plugin check_disk", 0},
		{3, "killed", 0},
	}
	for i, e := range evs {
		line, err := Format(e)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCommand(line)
		if err != nil {
			t.Fatalf("event %d: %v\n%s", i, err, line)
		}
		if c.host != "web1.example.org" || c.service != "disk root" || c.code != want[i].code || c.text != want[i].text ||
			len(c.perfdata) != want[i].perfdata || c.time != e.Time.Unix() {
			t.Errorf("event %d: %+v\nfrom %q", i, c, line)
		}
	}
	c, _ := parseCommand(mustFormat(t, evs[0]))
	if p := c.perfdata[1]; p.Label != "it's free" || p.Value != 3 || p.UOM != "GB" {
		t.Errorf("quoted perfdata label: %+v", p)
	}
}

func mustFormat(t *testing.T, e events.Event) string {
	t.Helper()
	line, err := Format(e)
	if err != nil {
		t.Fatal(err)
	}
	return line
}

// TestHostIsTheCertificateName: data naming another host, or trying to
// inject a second command, changes neither the host nor the line count.
func TestHostIsTheCertificateName(t *testing.T) {
	evs := received(t, "web1.example.org", &events.NagiosState{State: "OK", Code: 0,
		Output: "OK\n[1] PROCESS_SERVICE_CHECK_RESULT;db1.example.org;disk root;0;all fine", LongOutput: "host=db1.example.org"})
	line := mustFormat(t, evs[0])
	if strings.Count(line, "\n") != 1 || !strings.HasPrefix(line[strings.Index(line, "]"):], "] PROCESS_SERVICE_CHECK_RESULT;web1.example.org;disk root;0;") {
		t.Fatalf("line %q", line)
	}
	if _, err := parseCommand(line); err != nil {
		t.Fatal(err)
	}
	unstamped := evs[0]
	unstamped.Minion = ""
	if _, err := Format(unstamped); !errors.Is(err, ErrNoHost) {
		t.Errorf("event without a minion: %v", err)
	}
	unstamped.Minion = "db1;evil"
	if _, err := Format(unstamped); !errors.Is(err, ErrNoHost) {
		t.Errorf("minion with ';': %v", err)
	}
}

func TestLongOutputCut(t *testing.T) {
	evs := received(t, "web1", &events.NagiosState{State: "OK", Output: strings.Repeat("\\", 1000), LongOutput: strings.Repeat("é", 4000)})
	line := mustFormat(t, evs[0])
	if len(line) > MaxLine {
		t.Fatalf("line of %d bytes", len(line))
	}
	if _, err := parseCommand(line); err != nil {
		t.Fatal(err)
	}
}

// TestWriteToFIFO writes through a real FIFO to a reader that parses
// every line.
func TestWriteToFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nagios.cmd")
	if err := syscall.Mkfifo(path, 0o660); err != nil {
		t.Fatal(err)
	}
	w := &Writer{Path: path}
	evs := received(t, "web1.example.org",
		&events.Lifecycle{Phase: events.PhaseStarted},
		&events.NagiosState{State: "WARNING", Code: 1, Output: "LOAD WARNING", Perfdata: []events.Perf{{Label: "load1", Value: 5, Warn: "4", Crit: "8"}}},
		&events.NagiosState{State: "OK", Output: "LOAD OK"})
	if n, err := w.Write(t.Context(), evs); !errors.Is(err, ErrNotReading) || n != 0 {
		t.Fatalf("Write without a reader = %d, %v; want ErrNotReading", n, err)
	}
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := w.Write(t.Context(), evs)
	if err != nil || n != 3 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	r.SetReadDeadline(time.Now().Add(time.Minute))
	sc := bufio.NewScanner(r)
	var got []command
	for len(got) < 2 && sc.Scan() {
		c, err := parseCommand(sc.Text() + "\n")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	if len(got) != 2 || got[0].code != 1 || got[0].perfdata[0].Label != "load1" || got[1].code != 0 || got[1].text != "LOAD OK" {
		t.Errorf("read %+v (lifecycle events are not sent by default)", got)
	}
}

func TestWriteToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "commands")
	os.WriteFile(path, nil, 0o600)
	evs := received(t, "m1", &events.NagiosState{State: "CRITICAL", Code: 2, Output: "x"}, &events.Lifecycle{Phase: events.PhaseStopping})
	w := &Writer{Path: path, Filter: func(events.Event) bool { return true }}
	if n, err := w.Write(t.Context(), evs); err != nil || n != 2 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("wrote %q", data)
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		if _, err := parseCommand(l); err != nil {
			t.Error(err)
		}
	}
	if _, err := (&Writer{Path: t.TempDir()}).Write(t.Context(), evs); err == nil {
		t.Error("writing to a directory worked")
	}
	unstamped := evs[0]
	unstamped.Minion = ""
	if n, err := w.Write(t.Context(), []events.Event{evs[0], unstamped}); !errors.Is(err, ErrNoHost) || n != 1 {
		t.Errorf("Write of an unstamped event = %d, %v", n, err)
	}
}

// FuzzFormat: whatever a plugin prints, the command is one valid line
// for this host and service, and the text reads back (cut if long).
func FuzzFormat(f *testing.F) {
	f.Add("DISK OK", "", "/", 1.5)
	f.Add("a\\nb|c;d\x00e\r\n", "long\\", "it's", -2.0)
	f.Fuzz(func(t *testing.T, output, long, label string, value float64) {
		d := &events.NagiosState{State: "OK", Output: output, LongOutput: long}
		if label != "" && len(label) < 100 {
			d.Perfdata = []events.Perf{{Label: label, Value: value}}
		}
		e := events.Event{Minion: "web1", Source: "svc", Type: events.TypeNagiosState, Severity: events.SeverityInfo, Time: time.Unix(1, 0)}
		var err error
		if e.Data, err = jsonData(d); err != nil {
			return
		}
		line, err := Format(e)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCommand(line)
		if err != nil {
			if errors.Is(err, nagios.ErrPerfdata) {
				return // a label or value the guidelines cannot express
			}
			t.Fatalf("%v: %q", err, line)
		}
		if c.host != "web1" || c.service != "svc" || c.code != 0 {
			t.Fatalf("parsed %+v", c)
		}
	})
}
