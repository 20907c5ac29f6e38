package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// hostJSON is one host in --json output: every key is always there,
// "value" null on failure and "error" null on success (DESIGN's shape).
type hostJSON struct {
	OK    bool       `json:"ok"`
	Value any        `json:"value"`
	Error *errorJSON `json:"error"`
}

type errorJSON struct {
	Kind    string `json:"kind"` // overlord.ErrorKind: fault, unreachable, timeout, impersonation, ...
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

// resultsJSON is the --json shape of results: one object keyed by host.
func resultsJSON(res overlord.Results) map[string]hostJSON {
	out := make(map[string]hostJSON, len(res))
	for h, r := range res {
		if r.Err != nil {
			out[h] = hostJSON{Error: describe(r.Err)}
			continue
		}
		out[h] = hostJSON{OK: true, Value: r.Value}
	}
	return out
}

// print writes v as JSON or YAML when the user asked for either, and
// otherwise runs human, which prints the same thing for people.
func (e *env) print(v any, human func()) {
	switch {
	case e.cli.JSON:
		writeJSONValue(e.stdout, v)
	case e.cli.YAML:
		writeYAMLValue(e.stdout, v)
	default:
		human()
	}
}

func writeJSONValue(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeJSONLine(w io.Writer, v any) {
	_ = json.NewEncoder(w).Encode(v)
}

// writeYAMLValue prints v as YAML shaped exactly like its JSON: it goes
// through encoding/json first, so bytes, times and field names agree
// between --json and --yaml.
func writeYAMLValue(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintf(w, "error: %q\n", err.Error())
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var generic any
	if err := dec.Decode(&generic); err != nil {
		fmt.Fprintf(w, "error: %q\n", err.Error())
		return
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	_ = enc.Encode(generic)
	_ = enc.Close()
}

// describe turns a host's error into its JSON form: the kind
// (overlord.ErrorKind), the fault code when there is one, and the text
// without the "host: method:" prefix the host key already says.
func describe(err error) *errorJSON {
	e := &errorJSON{Kind: overlord.ErrorKind(err), Message: err.Error()}
	var he *overlord.HostError
	if errors.As(err, &he) {
		e.Message = he.Err.Error()
	}
	var f *gofunc.Fault
	if errors.As(err, &f) {
		e.Code = int(f.Code)
		if e.Kind == "fault" {
			e.Message = f.Message
		}
	}
	return e
}

// writeHuman groups hosts with identical output, like clush -b.
func writeHuman(w io.Writer, res overlord.Results) {
	groups := make(map[string][]string)
	for h, r := range res {
		text := humanText(r)
		groups[text] = append(groups[text], h)
	}
	texts := make([]string, 0, len(groups))
	for t, hosts := range groups {
		sort.Strings(hosts)
		texts = append(texts, t)
	}
	sort.Slice(texts, func(i, j int) bool { return groups[texts[i]][0] < groups[texts[j]][0] })
	for _, t := range texts {
		hosts := groups[t]
		fmt.Fprintf(w, "---------------- %s (%d)\n", strings.Join(hosts, ","), len(hosts))
		fmt.Fprintln(w, t)
	}
}

func humanText(r overlord.Result) string {
	if r.Err != nil {
		d := describe(r.Err)
		if d.Kind == "fault" {
			return fmt.Sprintf("ERROR fault %d: %s", d.Code, d.Message)
		}
		return fmt.Sprintf("ERROR %s: %s", d.Kind, d.Message)
	}
	switch v := r.Value.(type) {
	case string:
		return v
	case map[string]any, []any:
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	case []byte:
		return string(v)
	}
	return fmt.Sprint(r.Value)
}

// bar is a progress bar on stderr for long fan-outs; a no-op unless
// stderr is a terminal.
type bar struct{ pb *progressbar.ProgressBar }

// progressMin is the fan-out size from which a bar is worth showing.
const progressMin = 20

func (e *env) progress(n int) *bar {
	if n < progressMin || !isTerminal(e.stderr) {
		return &bar{}
	}
	return &bar{pb: progressbar.NewOptions(n, progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("hosts"), progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))}
}

func (b *bar) add() {
	if b.pb != nil {
		_ = b.pb.Add(1)
	}
}

func (b *bar) done() {
	if b.pb != nil {
		_ = b.pb.Finish()
		b.pb = nil
	}
}

func termIsTerminal(fd int) bool { return term.IsTerminal(fd) }

// humanLine is one host's result on one line.
func humanLine(host string, r overlord.Result) string {
	return host + ": " + strings.ReplaceAll(humanText(r), "\n", " ")
}
