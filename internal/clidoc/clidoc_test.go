package clidoc

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// A small command line with the shapes func has: global flags, a
// branching argument before commands, enum and path values, a
// passthrough argument, nested commands.
type testCLI struct {
	Dir        string         `type:"path" help:"Directory."`
	Level      string         `enum:"debug,info,warn" default:"info" help:"Level."`
	JSON       bool           `help:"JSON."`
	Secret     bool           `hidden:"" help:"Hidden."`
	Completion CompletionFlag `help:"Completion." placeholder:"SHELL"`
	Man        ManFlag        `help:"Man page."`
	Group      struct {
		Add struct {
			Name string `arg:""`
		} `cmd:"" help:"Add a group."`
		List struct{} `cmd:"" help:"List groups."`
	} `cmd:"" help:"Groups."`
	Spec struct {
		Spec string   `arg:"" complete:"hosts"`
		Ping struct{} `cmd:"" help:"Ping."`
		Run  struct {
			Passthrough bool     `help:"Exit with the remote status."`
			Argv        []string `arg:"" passthrough:""`
		} `cmd:"" help:"Run."`
		Copy struct {
			Local string `arg:"" type:"existingfile"`
		} `cmd:"" help:"Copy a file."`
	} `arg:""`
}

func (testCLI) Help() string {
	return "About the tool.\n\nExamples:\n\n    tool web* ping\n    ./tool db1 run -- ls -l"
}

func newTestApp(t *testing.T) *kong.Kong {
	t.Helper()
	p, err := kong.New(&testCLI{}, kong.Name("tool"), kong.Description("A test tool."), kong.Exit(func(int) {}),
		kong.Vars{VarSeeAlso: "other(1)"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testConfig = Config{Predictors: map[string]Predictor{
	"hosts": func(words []string, prefix string) []string { return []string{"web1", "web2", "db1"} },
}}

func TestComplete(t *testing.T) {
	app := newTestApp(t).Model
	for _, tc := range []struct {
		words []string
		want  []string // exactly these, in any order
		has   []string // at least these
		not   []string
	}{
		{words: []string{""}, has: []string{"group", "web1", "db1"}, not: []string{"ping"}},
		{words: []string{"w"}, want: []string{"web1", "web2"}},
		{words: []string{"gr"}, want: []string{"group"}},
		{words: []string{"group", ""}, want: []string{"add", "list"}},
		{words: []string{"web1", ""}, want: []string{"ping", "run", "copy"}},
		{words: []string{"--dir", "/tmp", "web1", "r"}, want: []string{"run"}},
		{words: []string{"--"}, has: []string{"--dir", "--level", "--json", "--help", "--completion"}, not: []string{"--secret", "--passthrough"}},
		{words: []string{"web1", "run", "--p"}, want: []string{"--passthrough"}},
		{words: []string{"web1", "run", "ls", "-"}, want: []string{}},
		{words: []string{"web1", "run", "--", "-"}, want: []string{}},
		{words: []string{"--level", ""}, want: []string{"debug", "info", "warn"}},
		{words: []string{"--level", "w"}, want: []string{"warn"}},
		{words: []string{"--level=d"}, want: []string{"--level=debug"}},
		{words: []string{"--dir", ""}, want: []string{Files}},
		{words: []string{"--dir=x"}, want: []string{Files}},
		{words: []string{"web1", "copy", ""}, want: []string{Files}},
		{words: []string{"--json", "db", ""}, has: []string{"ping"}},
		{words: []string{"--nosuch=x"}, want: []string{}},
		{words: nil, has: []string{"group"}},
	} {
		got := Complete(app, tc.words, testConfig)
		if tc.want != nil {
			if !sameSet(got, tc.want) {
				t.Errorf("Complete(%q) = %q, want %q", tc.words, got, tc.want)
			}
		}
		for _, h := range tc.has {
			if !slices.Contains(got, h) {
				t.Errorf("Complete(%q) = %q, lacks %q", tc.words, got, h)
			}
		}
		for _, n := range tc.not {
			if slices.Contains(got, n) {
				t.Errorf("Complete(%q) = %q, offers %q", tc.words, got, n)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func TestHandle(t *testing.T) {
	app := newTestApp(t).Model
	var out bytes.Buffer
	if Handle(app, []string{"web1", "ping"}, &out, testConfig) || out.Len() != 0 {
		t.Fatal("Handle answered ordinary arguments")
	}
	if !Handle(app, []string{CompleteCommand, "group", ""}, &out, testConfig) || out.String() != "add\nlist\n" {
		t.Fatalf("Handle: %q", out.String())
	}
}

func TestScript(t *testing.T) {
	for _, sh := range Shells {
		s, err := Script(sh, "tool")
		if err != nil || !strings.Contains(s, "tool __complete") || strings.Contains(s, "PROG") || strings.Contains(s, "FUNC") {
			t.Errorf("%s: %v\n%s", sh, err, s)
		}
	}
	if _, err := Script("csh", "tool"); err == nil {
		t.Error("csh accepted")
	}
	if _, err := Script("bash", "x;rm -rf /"); err == nil {
		t.Error("a program name that is shell code accepted")
	}
}

// The flags print and exit 0 before required flags are checked.
func TestFlags(t *testing.T) {
	var cli struct {
		Completion CompletionFlag `placeholder:"SHELL"`
		Man        ManFlag
		Dir        string `required:""`
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--completion", "fish"}, "complete -c tool"},
		{[]string{"--completion=zsh"}, "#compdef tool"},
		{[]string{"--man"}, ".TH TOOL 1"},
	} {
		var out bytes.Buffer
		code := -1
		p, err := kong.New(&cli, kong.Name("tool"), kong.Writers(&out, &out), kong.Exit(func(c int) { code = c; panic("exit") }))
		if err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() { _ = recover() }()
			_, _ = p.Parse(tc.args)
		}()
		if code != 0 || !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: exit %d, output %q", tc.args, code, out.String())
		}
	}
}

// The man page holds every visible command and flag, examples kept as
// they are, and groff reads it without a warning.
func TestMan(t *testing.T) {
	app := newTestApp(t).Model
	var b bytes.Buffer
	if err := Man(&b, app); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{".TH TOOL 1", "tool \\- A test tool", ".SS \"tool <spec> run <argv> ...", "\\fB\\-\\-passthrough\\fR",
		"\\fB\\-\\-level\\fR=\\fI\"info\"\\fR", ".nf\ntool web* ping\n\\&./tool db1 run \\-\\- ls \\-l\n.fi", ".SH SEE ALSO\nother(1)", "GOFUNC_LOG_LEVEL"} {
		if !strings.Contains(page, want) {
			t.Errorf("man page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "secret") {
		t.Errorf("man page shows a hidden flag")
	}
	switch err := Lint(page); {
	case errors.Is(err, ErrNoGroff) && os.Getenv("CI") == "":
		t.Log("SKIPPED the groff check: groff is not installed")
	case err != nil:
		t.Error(err)
	}
}
