package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

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
func resultsJSON(res overlord.Results, x explainer) map[string]hostJSON {
	present := callPresenter(x, humanValue)
	out := make(map[string]hostJSON, len(res))
	for h, r := range res {
		out[h] = present(r).json
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
	_ = enc.Encode(yamlNumbers(generic))
	_ = enc.Close()
}

// yamlNumbers replaces the json.Numbers in v (a decoded JSON value) by
// YAML number scalars holding the same digits. json.Number is a string
// type, so the YAML encoder would quote it ("42"); converting to int64
// or float64 instead would round integers beyond 2^53 or 2^63, which
// XML-RPC's i8 and gofunc's values may carry.
func yamlNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(string(x), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: string(x)}
	case []any:
		for i, e := range x {
			x[i] = yamlNumbers(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = yamlNumbers(e)
		}
	}
	return v
}

// humanValue is a value as people read it: strings as they are,
// structures as indented JSON.
func humanValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any, []any:
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	case []byte:
		return string(v)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}
