package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

// hostJSON is one host in --json output.
type hostJSON struct {
	OK    bool       `json:"ok"`
	Value any        `json:"value"`
	Error *errorJSON `json:"error,omitempty"`
}

type errorJSON struct {
	Kind    string `json:"kind"` // fault, unreachable, timeout, impersonation, untrusted, protocol, error
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

func writeJSON(w io.Writer, res overlord.Results) {
	out := make(map[string]hostJSON, len(res))
	for h, r := range res {
		if r.Err != nil {
			out[h] = hostJSON{Error: describe(r.Err)}
			continue
		}
		out[h] = hostJSON{OK: true, Value: jsonValue(r.Value)}
	}
	writeJSONValue(w, out)
}

func writeJSONValue(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// jsonValue makes decoded XML-RPC values JSON-friendly: []byte would
// become base64 anyway; keep it explicit.
func jsonValue(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	}
	return v
}

func describe(err error) *errorJSON {
	var f *gofunc.Fault
	e := &errorJSON{Kind: "error", Message: err.Error()}
	switch {
	case errors.As(err, &f):
		e.Kind, e.Code, e.Message = "fault", int(f.Code), f.Message
	case errors.Is(err, overlord.ErrTimeout):
		e.Kind = "timeout"
	case errors.Is(err, overlord.ErrImpersonation):
		e.Kind = "impersonation"
	case errors.Is(err, overlord.ErrUntrusted):
		e.Kind = "untrusted"
	case errors.Is(err, overlord.ErrProtocol):
		e.Kind = "protocol"
	case errors.Is(err, overlord.ErrUnreachable):
		e.Kind = "unreachable"
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
		b, _ := json.MarshalIndent(jsonValue(v), "", "  ")
		return string(b)
	}
	return fmt.Sprint(r.Value)
}
