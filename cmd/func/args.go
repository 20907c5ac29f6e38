package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// parseArgs turns command-line words into call arguments: a word that is
// a JSON number, boolean, list or map is sent as that value; anything
// else (and every word when asString) is sent as a string.
func parseArgs(words []string, asString bool) ([]any, error) {
	out := make([]any, len(words))
	for i, w := range words {
		if asString {
			out[i] = w
			continue
		}
		v, ok, err := parseJSONWord(w)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		if !ok {
			v = w
		}
		out[i] = v
	}
	return out, nil
}

func parseJSONWord(w string) (any, bool, error) {
	trimmed := bytes.TrimSpace([]byte(w))
	if len(trimmed) == 0 || w == "null" {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		if trimmed[0] == '[' || trimmed[0] == '{' {
			return nil, false, fmt.Errorf("%q looks like JSON but is not valid: %v (use --strings to send it as text)", w, err)
		}
		return nil, false, nil
	}
	if _, isStr := v.(string); isStr {
		return nil, false, nil // "\"x\"" stays the literal word
	}
	conv, err := fromJSON(v)
	if err != nil {
		return nil, false, err
	}
	return conv, true, nil
}

// fromJSON converts json.Number to int64 when integral, else float64,
// and rejects null inside structures (XML-RPC over kolo has no nil).
func fromJSON(v any) (any, error) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return f, nil
	case []any:
		for i, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			c, err := fromJSON(e)
			if err != nil {
				return nil, err
			}
			x[k] = c
		}
		return x, nil
	case nil:
		return nil, fmt.Errorf("null cannot be sent")
	}
	return v, nil
}
