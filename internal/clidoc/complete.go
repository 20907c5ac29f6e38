// Package clidoc makes shell completion (bash, zsh, fish) and man pages
// from a kong command line: the same definitions that parse the
// arguments and print --help, so the three never drift apart.
//
// Completion works the way cobra's does: the script a shell loads is
// small and fixed, and asks the program itself for candidates by
// running `PROG __complete WORD...`; the program answers from its kong
// model (commands, flags, enum values, files) and from predictors it
// registers (func's target specs come from its cached minion list).
//
// A program wires it in three places:
//
//	type cli struct {
//		Completion clidoc.CompletionFlag `help:"Print the shell completion script (bash, zsh, fish) and exit." placeholder:"SHELL"`
//		Man        clidoc.ManFlag        `help:"Print the man page (roff) and exit."`
//		...
//	}
//	if clidoc.Handle(parser, args, cfg) { return 0 } // before parsing: answers __complete
package clidoc

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// CompleteCommand is the hidden first argument with which the shell
// scripts ask the program for candidates.
const CompleteCommand = "__complete"

// Answers that ask the shell to complete names from the file system
// instead of a list.
const (
	Files = ":files"
	Dirs  = ":dirs"
)

// Predictor lists candidates for a flag's value or a positional
// argument that carries the tag `complete:"NAME"`; words are all the
// words typed so far (without the program's name), prefix the word
// being completed. It is called for every completion request: keep it
// fast and free of network calls.
type Predictor func(words []string, prefix string) []string

// Config adds what the model cannot know.
type Config struct {
	// Predictors by the name in a `complete:"NAME"` tag.
	Predictors map[string]Predictor
}

// Handle answers `PROG __complete WORD...` on w: one candidate a line,
// or Files / Dirs. It reports whether args were such a request; the
// program then exits 0.
func Handle(app *kong.Application, args []string, w io.Writer, cfg Config) bool {
	if len(args) == 0 || args[0] != CompleteCommand {
		return false
	}
	words := args[1:]
	if len(words) == 0 {
		words = []string{""}
	}
	for _, c := range Complete(app, words, cfg) {
		fmt.Fprintln(w, c)
	}
	return true
}

// Complete returns the candidates for the last of words (the word being
// typed, "" for a new one), given the words before it.
func Complete(app *kong.Application, words []string, cfg Config) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	path := []*kong.Node{app.Node}
	node := app.Node
	positional := 0
	var pending *kong.Flag // a flag whose value is the next word
	flagsOver := false     // after "--" or inside a passthrough argument
	for _, w := range words[:len(words)-1] {
		switch {
		case pending != nil:
			pending = nil
		case flagsOver:
			positional++
		case w == "--":
			flagsOver = true
		case len(w) > 1 && strings.HasPrefix(w, "-"):
			name, _, inline := strings.Cut(w, "=")
			if f := findFlag(path, name); f != nil && !f.IsBool() && !f.IsCounter() && !inline {
				pending = f
			}
		default:
			if child := findChild(node, w); child != nil {
				node, positional = child, 0
				path = append(path, child)
				continue
			}
			if arg := argumentChild(node); arg != nil {
				node, positional = arg, 0
				path = append(path, arg)
				continue
			}
			if p := positionalAt(node, positional); p != nil && p.PassthroughMode != kong.PassThroughModeNone {
				flagsOver = true
			}
			positional++
		}
	}
	var out []string
	switch {
	case pending != nil:
		return values(pending.Value, words, cur, cfg)
	case strings.HasPrefix(cur, "-") && !flagsOver:
		if name, val, ok := strings.Cut(cur, "="); ok {
			f := findFlag(path, name)
			if f == nil {
				return nil
			}
			for _, v := range values(f.Value, words, val, cfg) {
				if v == Files || v == Dirs {
					return []string{v}
				}
				out = append(out, name+"="+v)
			}
			return out
		}
		for _, f := range allFlags(path) {
			out = append(out, "--"+f.Name)
			if f.Short != 0 {
				out = append(out, "-"+string(f.Short))
			}
		}
	default:
		if positional == 0 {
			for _, c := range node.Children {
				if c.Type == kong.CommandNode && !c.Hidden {
					out = append(out, c.Name)
					out = append(out, c.Aliases...)
				}
			}
		}
		if arg := argumentChild(node); arg != nil && positional == 0 {
			out = append(out, values(arg.Argument, words, cur, cfg)...)
		} else if p := positionalAt(node, positional); p != nil {
			vs := values(p, words, cur, cfg)
			if len(out) == 0 && len(vs) == 1 && (vs[0] == Files || vs[0] == Dirs) {
				return vs
			}
			out = append(out, vs...)
		}
	}
	return filterPrefix(out, cur)
}

// values lists candidates for a flag's value or a positional argument.
func values(v *kong.Value, words []string, prefix string, cfg Config) []string {
	if v == nil || v.IsBool() {
		return nil
	}
	if v.Tag != nil && v.Tag.Has("complete") {
		if p := cfg.Predictors[v.Tag.Get("complete")]; p != nil {
			return filterPrefix(p(words, prefix), prefix)
		}
		return nil
	}
	if v.Enum != "" {
		return filterPrefix(v.EnumSlice(), prefix)
	}
	if v.Tag != nil {
		switch v.Tag.Type {
		case "path", "existingfile", "filecontent":
			return []string{Files}
		case "existingdir":
			return []string{Dirs}
		}
	}
	return nil
}

// positionalAt is the node's i-th positional argument; the last one
// when it takes several words.
func positionalAt(n *kong.Node, i int) *kong.Value {
	switch {
	case i < len(n.Positional):
		return n.Positional[i]
	case len(n.Positional) > 0 && n.Positional[len(n.Positional)-1].IsCumulative():
		return n.Positional[len(n.Positional)-1]
	}
	return nil
}

func findChild(n *kong.Node, name string) *kong.Node {
	for _, c := range n.Children {
		if c.Type == kong.CommandNode && (c.Name == name || slices.Contains(c.Aliases, name)) {
			return c
		}
	}
	return nil
}

// argumentChild is the node's branching argument (func's <spec>).
func argumentChild(n *kong.Node) *kong.Node {
	for _, c := range n.Children {
		if c.Type == kong.ArgumentNode {
			return c
		}
	}
	return nil
}

// allFlags are the visible flags of every node on the path.
func allFlags(path []*kong.Node) []*kong.Flag {
	var out []*kong.Flag
	for _, n := range path {
		for _, f := range n.Flags {
			if !f.Hidden {
				out = append(out, f)
			}
		}
	}
	return out
}

func findFlag(path []*kong.Node, word string) *kong.Flag {
	for i := len(path) - 1; i >= 0; i-- {
		for _, f := range path[i].Flags {
			if word == "--"+f.Name || (f.Short != 0 && word == "-"+string(f.Short)) || slices.Contains(f.Aliases, strings.TrimLeft(word, "-")) {
				return f
			}
		}
	}
	return nil
}

func filterPrefix(list []string, prefix string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s == Files || s == Dirs || strings.HasPrefix(s, prefix) {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}
