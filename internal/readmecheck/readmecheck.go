// Package readmecheck keeps the README's command-line reference honest:
// tests of each command check that its section names every visible
// command and flag of the kong definitions, and names no flag the
// program lacks.
package readmecheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"

	"github.com/alecthomas/kong"
)

// Section returns the README section that starts with the heading
// line, up to the next heading of the same level.
func Section(heading string) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "README.md"))
	if err != nil {
		return "", err
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		return "", fmt.Errorf("README.md has no %q", heading)
	}
	rest := text[start+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1] // "## "
	if end := strings.Index(rest, "\n"+level); end >= 0 {
		rest = rest[:end]
	}
	return rest, nil
}

var flagToken = regexp.MustCompile(`(?:^|[\s\[(|` + "`" + `])(--[a-z][a-z0-9-]*)`)

// Check compares a program's kong model with the README text that
// documents it, and returns what disagrees: commands and flags the text
// does not name, and flags it names that the program lacks.
func Check(app *kong.Application, text string) []string {
	var problems []string
	flags := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if f.Hidden {
				continue
			}
			flags["--"+f.Name] = true
			if f.Name != "help" && !strings.Contains(text, "--"+f.Name) {
				problems = append(problems, fmt.Sprintf("flag --%s (%s) is not in the README", f.Name, nodePath(n)))
			}
		}
		for _, c := range n.Children {
			if c.Hidden {
				continue
			}
			if c.Type == kong.CommandNode && !regexp.MustCompile(`\b`+regexp.QuoteMeta(c.Name)+`\b`).MatchString(text) {
				problems = append(problems, fmt.Sprintf("command %q is not in the README", c.Path()))
			}
			walk(c)
		}
	}
	walk(app.Node)
	var named []string
	for _, m := range flagToken.FindAllStringSubmatch(text, -1) {
		if !flags[m[1]] && !slices.Contains(named, m[1]) {
			named = append(named, m[1])
		}
	}
	for _, f := range named {
		problems = append(problems, fmt.Sprintf("the README names %s, which %s does not have", f, app.Name))
	}
	return problems
}

func nodePath(n *kong.Node) string {
	if n.Parent == nil {
		return "global"
	}
	return n.Path()
}

// Lines keeps the lines of text that document program: those that start
// with its name (after spaces), and the indented lines that continue
// them.
func Lines(text, program string) string {
	var out []string
	in := false
	for _, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		switch {
		case strings.HasPrefix(trimmed, program+" "):
			in = true
		case strings.HasPrefix(l, " ") && in:
		default:
			in = false
		}
		if in {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
