package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// transmitSchema documents what `func transmit` reads; --help and the
// README show it.
const transmitSchema = `    {
      "spec":    "web*;@db",           target spec (required)
      "module":  "service",            module (required)
      "method":  "restart",            method (required)
      "args":    ["nginx"],            arguments: JSON values, no null (default: none)
      "timeout": "10s",                per-host timeout, a Go duration (default: --timeout)
      "exclude": "web13*",             a spec or a list of specs to leave out (default: none)
      "where":   "os=debian",          facts filter, like --where (default: none)
      "typed":   true                  binary, dates and doubles tagged (default: false)
    }

The answer is --json's: one object keyed by host. A request that cannot
run prints {"error": {"kind": "request", "field": "timeout", "message":
"...", "exit": 2}} (field only when one field is at fault), with the
exit code func would use.

` + typedSchema

// transmitRequest is what `func transmit` reads on stdin.
type transmitRequest struct {
	Spec    string
	Module  string
	Method  string
	Args    []any
	Timeout time.Duration // 0: --timeout
	Exclude []string
	Where   string
	// Typed: args and results are typed JSON (typed.go).
	Typed bool
}

// fieldError is a transmit request's fault in one field.
type fieldError struct {
	field string
	err   error
}

func (e *fieldError) Error() string { return fmt.Sprintf("transmit: %q: %v", e.field, e.err) }
func (e *fieldError) Unwrap() error { return e.err }

// maxTransmitBytes bounds the request read from stdin.
const maxTransmitBytes = 64 << 20

// readTransmit decodes and checks one request: unknown fields, missing
// required ones and values of the wrong type are errors naming the
// field.
func readTransmit(r io.Reader) (*transmitRequest, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxTransmitBytes+1))
	if err != nil {
		return nil, fmt.Errorf("transmit: reading stdin: %w", err)
	}
	if len(b) > maxTransmitBytes {
		return nil, fmt.Errorf("transmit: the request is larger than %d bytes", maxTransmitBytes)
	}
	var fields map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&fields); err != nil {
		return nil, fmt.Errorf("transmit: the request on stdin is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("transmit: one JSON object on stdin, not several")
	}
	known := []string{"spec", "module", "method", "args", "timeout", "exclude", "where", "typed"}
	for name := range fields {
		if !slices.Contains(known, name) {
			return nil, &fieldError{name, fmt.Errorf("no such field (fields: %s)", strings.Join(known, ", "))}
		}
	}
	req := &transmitRequest{}
	for _, f := range []struct {
		name     string
		required bool
		dst      *string
	}{{"spec", true, &req.Spec}, {"module", true, &req.Module}, {"method", true, &req.Method}, {"where", false, &req.Where}} {
		raw, ok := fields[f.name]
		if !ok || string(raw) == "null" {
			if f.required {
				return nil, &fieldError{f.name, errors.New("missing: the request needs spec, module and method")}
			}
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			return nil, &fieldError{f.name, fmt.Errorf("want a string, got %s", jsonKind(raw))}
		}
		if f.required && strings.TrimSpace(*f.dst) == "" {
			return nil, &fieldError{f.name, errors.New("is empty")}
		}
	}
	if raw, ok := fields["typed"]; ok && string(raw) != "null" {
		if json.Unmarshal(raw, &req.Typed) != nil {
			return nil, &fieldError{"typed", fmt.Errorf("want true or false, got %s", jsonKind(raw))}
		}
	}
	if raw, ok := fields["args"]; ok && string(raw) != "null" {
		if req.Args, err = decodeArgs(raw, req.Typed); err != nil {
			return nil, &fieldError{"args", err}
		}
	}
	if raw, ok := fields["timeout"]; ok && string(raw) != "null" {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, &fieldError{"timeout", fmt.Errorf(`want a duration string such as "30s", got %s`, jsonKind(raw))}
		}
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, &fieldError{"timeout", fmt.Errorf(`%q is not a positive duration such as "30s"`, s)}
		}
		req.Timeout = d
	}
	if raw, ok := fields["exclude"]; ok && string(raw) != "null" {
		if req.Exclude, err = decodeExclude(raw); err != nil {
			return nil, &fieldError{"exclude", err}
		}
	}
	return req, nil
}

// decodeArgs reads the args list: JSON values as func call sends them,
// or typed JSON.
func decodeArgs(raw json.RawMessage, typed bool) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var list []any
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("want a list of arguments, got %s", jsonKind(raw))
	}
	for i, a := range list {
		v, err := fromJSON(a)
		if err == nil && typed {
			v, err = untypedValue(v)
		}
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i, err)
		}
		list[i] = v
	}
	return list, nil
}

// decodeExclude takes "spec" or ["spec", ...].
func decodeExclude(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, fmt.Errorf("want a spec or a list of specs, got %s", jsonKind(raw))
	}
	return many, nil
}

// jsonKind names the JSON type of raw, for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '[':
		return "a list"
	case '{':
		return "an object"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// transmit runs one JSON request from stdin and prints the results as
// --json does; errors before any host answered are printed as
// {"error": {...}} with the usual exit codes.
func (e *env) transmit() int {
	req, err := readTransmit(e.stdin)
	if err != nil {
		return e.transmitError(err, exitUsage)
	}
	if req.Timeout > 0 {
		e.cli.Timeout = req.Timeout
	}
	e.cli.Exclude = append(e.cli.Exclude, req.Exclude...)
	if req.Where != "" {
		e.cli.Where = req.Where
	}
	c := e.client()
	defer e.close(c)
	sel, err := e.selection(c, req.Spec)
	if err != nil {
		return e.transmitError(err, exitUsage)
	}
	res, err := sel.Call(e.ctx, req.Module, req.Method, req.Args...)
	if res == nil {
		return e.transmitError(e.hint(err), exitCode(err))
	}
	out := resultsJSON(res, e.explainer(c))
	if req.Typed {
		for h, r := range out {
			r.Value = typedValue(r.Value)
			out[h] = r
		}
	}
	writeJSONValue(e.stdout, out)
	if err != nil {
		return exitFailed
	}
	return exitOK
}

func (e *env) transmitError(err error, code int) int {
	report := map[string]any{"kind": "request", "message": err.Error(), "exit": code}
	var fe *fieldError
	if errors.As(err, &fe) {
		report["field"] = fe.field
	}
	writeJSONValue(e.stdout, map[string]any{"error": report})
	fmt.Fprintln(e.stderr, "func:", err)
	return code
}
