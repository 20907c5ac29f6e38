package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// hostOutcome is one host's result as func shows it: in the human
// views, in --json and --jsonl, and in the closing summary.
type hostOutcome struct {
	host string
	ok   bool
	json hostJSON
	// body is what the human views print for the host: its value, the
	// command's stdout, or its problem.
	body string
	// stderr is the command's stderr (run only).
	stderr string
	// status is said after the host's name when it is not plain
	// success or a problem already in body: "exit 2" (run only).
	status string
	// problem is true when body is the host's error line.
	problem bool
	// class is "ok" or what the summary counts the host as:
	// "unreachable", "exited non-zero", "denied", ...
	class string
	// note follows the host's name in the summary: "exit 2".
	note string
	// exit is the command's exit status, for --passthrough (run only).
	exit int
}

// presenter turns a host's result into what func shows of it.
type presenter func(r overlord.Result) hostOutcome

// callPresenter shows a call's value, or its problem in one line.
func callPresenter(x explainer, text func(any) string) presenter {
	return func(r overlord.Result) hostOutcome {
		if r.Err != nil {
			return problemOutcome(r, x)
		}
		return hostOutcome{host: r.Host, ok: true, class: "ok", body: text(r.Value),
			json: hostJSON{OK: true, Value: r.Value}}
	}
}

// problemOutcome is a failed host, whatever the command.
func problemOutcome(r overlord.Result, x explainer) hostOutcome {
	p := x.explain(r.Err, r.Duration)
	ej := &errorJSON{Kind: overlord.ErrorKind(r.Err), Message: p.detail}
	var f *gofunc.Fault
	if ej.Kind == "fault" && errors.As(r.Err, &f) {
		ej.Code = int(f.Code)
	}
	return hostOutcome{host: r.Host, class: p.class, body: p.text, problem: true, exit: 1,
		json: hostJSON{Error: ej}}
}

// outputMode is how results reach stdout.
type outputMode int

const (
	modeGroup  outputMode = iota // gather, then print identical results once under their hosts
	modeStream                   // each host's lines as it answers, "host: line"
	modeJSON                     // gather, then one JSON object keyed by host
	modeYAML                     // gather, then the same as YAML
	modeJSONL                    // one JSON line per host as it answers
)

// mode chooses the output: a format flag wins, then --stream or
// --group; otherwise commands that group by default (run) group, and
// the others stream on a terminal (people watch hosts answer) and
// group in a pipe (stable, diffable output).
func (e *env) mode(groupByDefault bool) outputMode {
	c := e.cli
	switch {
	case c.JSON:
		return modeJSON
	case c.YAML:
		return modeYAML
	case c.JSONL:
		return modeJSONL
	case c.Stream:
		return modeStream
	case c.Grouped || groupByDefault:
		return modeGroup
	case isTerminal(e.stdout):
		return modeStream
	}
	return modeGroup
}

// view prints a fan-out's results as they arrive and as they end: the
// chosen output on stdout, a status line and the closing summary on
// stderr.
type view struct {
	e       *env
	present presenter
	mode    outputMode
	status  *status
	// problemsToStderr sends streamed problem lines to stderr (run:
	// stdout is the commands' output only).
	problemsToStderr bool

	mu       sync.Mutex // add is called as hosts answer
	outcomes []hostOutcome
}

// newView starts the view of a fan-out to hosts (nil when the results
// come all at once: no status line then). commandOutput says
// the hosts' values are a command's output (run): they are grouped by
// default, and streamed problem lines go to stderr so that stdout holds
// the commands' output only.
func (e *env) newView(hosts []string, present presenter, commandOutput bool) *view {
	return &view{e: e, present: present, mode: e.mode(commandOutput), status: e.newStatus(hosts), problemsToStderr: commandOutput}
}

// add takes one host's result.
func (v *view) add(r overlord.Result) {
	o := v.present(r)
	v.mu.Lock()
	defer v.mu.Unlock()
	v.outcomes = append(v.outcomes, o)
	v.status.answer(o.host, o.ok)
	v.status.around(func() {
		switch v.mode {
		case modeStream:
			v.e.writeStreamed(o, v.problemsToStderr)
		case modeJSONL:
			writeJSONLine(v.e.stdout, jsonlLine{Host: o.host, hostJSON: o.json})
		}
	})
}

// jsonlLine is one --jsonl line: the host and its --json object.
type jsonlLine struct {
	Host string `json:"host"`
	hostJSON
}

// finish prints what was gathered and the summary line, and returns the
// outcomes sorted by host.
func (v *view) finish() []hostOutcome {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.status.close()
	slices.SortFunc(v.outcomes, func(a, b hostOutcome) int { return strings.Compare(a.host, b.host) })
	switch v.mode {
	case modeGroup:
		writeGrouped(v.e.stdout, v.outcomes)
	case modeJSON, modeYAML:
		obj := make(map[string]hostJSON, len(v.outcomes))
		for _, o := range v.outcomes {
			obj[o.host] = o.json
		}
		v.e.print(obj, nil)
	}
	if !v.e.cli.Quiet {
		fmt.Fprintln(v.e.stderr, summaryLine(v.outcomes))
	}
	return v.outcomes
}

// writeStreamed prints one host as it answered: every line prefixed
// with the host's name, so the output greps and sorts (clush without
// -b). A command's stderr and exit status go to stderr, like the
// command's own would.
func (e *env) writeStreamed(o hostOutcome, problemsToStderr bool) {
	out := e.stdout
	if o.problem && problemsToStderr {
		out = e.stderr
	}
	writePrefixed(out, o.host, o.body)
	writePrefixed(e.stderr, o.host, o.stderr)
	if o.status != "" {
		fmt.Fprintf(e.stderr, "%s: %s\n", o.host, o.status)
	}
}

// writePrefixed writes each line of text as "host: line".
func writePrefixed(w io.Writer, host, text string) {
	if text == "" {
		return
	}
	for line := range strings.Lines(text) {
		fmt.Fprintf(w, "%s: %s", host, line)
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(w)
		}
	}
}

// writeGrouped prints hosts with identical output once, under a header
// naming them (clush -b): successes first, in host order, then
// problems, so that errors end up next to the summary.
func writeGrouped(w io.Writer, outcomes []hostOutcome) {
	type group struct {
		hosts []string
		o     hostOutcome
	}
	var groups []*group
	byKey := map[string]*group{}
	for _, o := range outcomes {
		key := o.body + "\x00" + o.stderr + "\x00" + o.status
		if o.problem {
			key = "\x01" + key
		}
		g := byKey[key]
		if g == nil {
			g = &group{o: o}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.hosts = append(g.hosts, o.host)
	}
	slices.SortStableFunc(groups, func(a, b *group) int {
		if a.o.problem != b.o.problem {
			if a.o.problem {
				return 1
			}
			return -1
		}
		return 0
	})
	for _, g := range groups {
		header := fmt.Sprintf("---------------- %s (%d)", hostList(g.hosts, 0), len(g.hosts))
		if g.o.status != "" {
			header += ": " + g.o.status
		}
		fmt.Fprintln(w, header)
		writeText(w, g.o.body)
		if g.o.stderr != "" {
			fmt.Fprintln(w, "---- stderr")
			writeText(w, g.o.stderr)
		}
	}
}

// writeText writes text ending with exactly one newline (none when it
// is empty).
func writeText(w io.Writer, text string) {
	if text == "" {
		return
	}
	io.WriteString(w, text)
	if !strings.HasSuffix(text, "\n") {
		fmt.Fprintln(w)
	}
}

// summaryLine is the closing line of a fan-out, on stderr:
//
//	5 ok, 1 exited non-zero: web3 (exit 2), 1 unreachable: web4
//
// Classes come in a fixed order (ok first, then by how many hosts they
// hold); the hosts of each are folded (web[1-3]) and cut after a few
// entries so the line stays a line at 5,000 hosts.
func summaryLine(outcomes []hostOutcome) string {
	if len(outcomes) == 0 {
		return "no hosts answered"
	}
	type class struct {
		name  string
		hosts []string
		notes map[string][]string // note -> hosts
	}
	byName := map[string]*class{}
	var classes []*class
	for _, o := range outcomes {
		c := byName[o.class]
		if c == nil {
			c = &class{name: o.class, notes: map[string][]string{}}
			byName[o.class] = c
			classes = append(classes, c)
		}
		c.hosts = append(c.hosts, o.host)
		c.notes[o.note] = append(c.notes[o.note], o.host)
	}
	slices.SortStableFunc(classes, func(a, b *class) int {
		switch {
		case a.name == "ok":
			return -1
		case b.name == "ok":
			return 1
		}
		if d := len(b.hosts) - len(a.hosts); d != 0 {
			return d
		}
		return strings.Compare(a.name, b.name)
	})
	const maxEntries = 8
	parts := make([]string, 0, len(classes))
	for _, c := range classes {
		if c.name == "ok" {
			parts = append(parts, fmt.Sprintf("%d ok", len(c.hosts)))
			continue
		}
		var entries []string
		for _, note := range slices.Sorted(maps.Keys(c.notes)) {
			list := hostList(c.notes[note], maxEntries)
			if note != "" {
				list += " (" + note + ")"
			}
			entries = append(entries, list)
		}
		if len(entries) > maxEntries {
			entries = append(entries[:maxEntries], fmt.Sprintf("and %d more", len(entries)-maxEntries))
		}
		parts = append(parts, fmt.Sprintf("%d %s: %s", len(c.hosts), c.name, strings.Join(entries, ", ")))
	}
	return strings.Join(parts, ", ")
}
