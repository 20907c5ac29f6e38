package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
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

// positionalCallArgs makes every word after `SPEC call MODULE METHOD`
// that is not one of func's flags an argument, even one that starts
// with "-" (`call test add -1 2`): it moves the flags among them before
// a "--" that it puts ahead of the arguments. After an explicit "--"
// every word is an argument (`call test echo -- --strings`). Other
// commands' words are returned unchanged.
func positionalCallArgs(parser *kong.Kong, args []string) []string {
	takesValue, commands := cliShape(parser.Model.Node)
	positional := 0 // words seen that are not flags: SPEC, call, MODULE, METHOD
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return args
		case len(a) > 1 && strings.HasPrefix(a, "-"):
			name, _, inline := strings.Cut(a, "=")
			if hasValue, known := takesValue[name]; known && hasValue && !inline {
				i++ // the flag's value
			}
			continue
		case positional == 0 && commands[a], positional == 1 && a != "call":
			return args
		}
		if positional++; positional == 4 {
			return splitCallArgs(args[:i+1], args[i+1:], takesValue)
		}
	}
	return args
}

// splitCallArgs puts func's flags from rest after head, then "--" and
// the call's arguments, when an argument starts with "-".
func splitCallArgs(head, rest []string, takesValue map[string]bool) []string {
	var flags, words []string
	dashed := false
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			words = append(words, rest[i+1:]...)
			dashed = true
			break
		}
		name, _, inline := strings.Cut(a, "=")
		if hasValue, known := takesValue[name]; known && len(a) > 1 && strings.HasPrefix(a, "-") {
			flags = append(flags, a)
			if hasValue && !inline && i+1 < len(rest) {
				i++
				flags = append(flags, rest[i])
			}
			continue
		}
		words = append(words, a)
		dashed = dashed || strings.HasPrefix(a, "-")
	}
	if !dashed {
		return slices.Concat(head, rest)
	}
	return slices.Concat(head, flags, []string{"--"}, words)
}

// cliShape returns every flag of the command line ("--name" and "-s")
// with whether it takes a value, and the top-level command names.
func cliShape(root *kong.Node) (takesValue map[string]bool, commands map[string]bool) {
	takesValue = map[string]bool{"--help": false, "-h": false}
	commands = map[string]bool{}
	for _, child := range root.Children {
		if child.Type == kong.CommandNode {
			commands[child.Name] = true
		}
	}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			takesValue["--"+f.Name] = !f.IsBool()
			if f.Short != 0 {
				takesValue["-"+string(f.Short)] = !f.IsBool()
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	walk(root)
	return takesValue, commands
}
