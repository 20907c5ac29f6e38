package clidoc

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/version"
)

// Vars a program may set with kong.Vars to shape its man page.
const (
	// VarManSection is the manual section: "1" (default) for commands,
	// "8" for daemons.
	VarManSection = "man_section"
	// VarSeeAlso is the SEE ALSO list: "funcd(8), certmaster(8)".
	VarSeeAlso = "see_also"
)

// Man writes app's man page in roff (man macros): NAME, SYNOPSIS,
// DESCRIPTION (the program's help and details), COMMANDS (each
// command's help, examples and flags), OPTIONS (the global flags, in
// their help groups), ENVIRONMENT and SEE ALSO. Everything comes from
// the kong model, so the page says what --help says.
func Man(w io.Writer, app *kong.Application) error {
	m := &manWriter{}
	vars := app.Vars()
	section := vars[VarManSection]
	if section == "" {
		section = "1"
	}
	v := version.Read()
	m.line(".TH %s %s \"\" \"gofunc %s\" \"gofunc\"", strings.ToUpper(app.Name), section, esc(v.Version))
	m.line(".SH NAME")
	m.line("%s \\- %s", esc(app.Name), esc(strings.TrimSuffix(app.Help, ".")))

	m.line(".SH SYNOPSIS")
	leaves := app.Leaves(true)
	if len(leaves) == 0 {
		m.line(".B %s", esc(app.Name))
		m.line("%s", esc(app.Summary()[len(app.Name):]))
	}
	for i, leaf := range leaves {
		if i > 0 {
			m.line(".br")
		}
		m.line(".B %s", esc(app.Name))
		m.line("%s", esc("[flags] "+leaf.Summary()))
	}

	m.line(".SH DESCRIPTION")
	m.text(app.Help)
	m.text(app.Detail)

	if len(leaves) > 0 {
		m.line(".SH COMMANDS")
		for _, leaf := range leaves {
			m.line(".SS \"%s\"", esc(app.Name+" "+leaf.Summary()))
			m.text(leaf.Help)
			m.text(leaf.Detail)
			var own []*kong.Flag
			for n := leaf; n != nil && n != app.Node; n = n.Parent {
				for _, f := range n.Flags {
					if !f.Hidden {
						own = append(own, f)
					}
				}
			}
			if len(own) > 0 {
				m.line(".PP")
				m.line("Flags:")
				m.line(".RS")
				for _, f := range own {
					m.flag(f)
				}
				m.line(".RE")
			}
		}
	}

	m.line(".SH OPTIONS")
	var titles []string
	byTitle := map[string][]*kong.Flag{}
	for _, f := range app.Flags {
		if f.Hidden {
			continue
		}
		title := ""
		if f.Group != nil {
			title = strings.TrimSuffix(f.Group.Title, ":")
		}
		if _, seen := byTitle[title]; !seen {
			titles = append(titles, title)
		}
		byTitle[title] = append(byTitle[title], f)
	}
	for _, title := range titles {
		if title != "" {
			m.line(".SS \"%s\"", esc(title))
		}
		for _, f := range byTitle[title] {
			m.flag(f)
		}
	}

	m.line(".SH ENVIRONMENT")
	m.text("Every flag can also be set as " + cliconf.EnvName("<flag>") + " in the environment (--log-level is " +
		cliconf.EnvName("log-level") + ") or in " + cliconf.FileName + " in the identity directory; the command line wins.")
	if see := vars[VarSeeAlso]; see != "" {
		m.line(".SH SEE ALSO")
		m.line("%s", esc(see))
	}
	_, err := io.WriteString(w, m.b.String())
	return err
}

type manWriter struct{ b strings.Builder }

func (m *manWriter) line(format string, args ...any) {
	fmt.Fprintf(&m.b, format+"\n", args...)
}

// flag writes one flag as a tagged paragraph.
func (m *manWriter) flag(f *kong.Flag) {
	m.line(".TP")
	name := "\\fB\\-\\-" + esc(f.Name) + "\\fR"
	if f.Short != 0 {
		name = "\\fB\\-" + esc(string(f.Short)) + "\\fR, " + name
	}
	if !f.IsBool() && !f.IsCounter() {
		name += "=\\fI" + esc(f.FormatPlaceHolder()) + "\\fR"
	}
	m.line("%s", name)
	help := f.Help
	if f.HasDefault && f.Default != "" && !strings.Contains(help, "default") {
		help += " (default: " + f.Default + ")"
	}
	m.line("%s", esc(help))
}

// text writes kong help text: paragraphs separated by blank lines, and
// indented lines (examples) kept as they are.
func (m *manWriter) text(s string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return
	}
	var para []string
	inExample := false
	flush := func() {
		if len(para) > 0 {
			m.line(".PP")
			m.line("%s", esc(strings.Join(para, " ")))
			para = nil
		}
	}
	for _, l := range strings.Split(s, "\n") {
		indented := strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")
		switch {
		case indented && strings.TrimSpace(l) != "":
			flush()
			if !inExample {
				m.line(".PP")
				m.line(".RS")
				m.line(".nf")
				inExample = true
			}
			m.line("%s", esc(strings.TrimSpace(l)))
		case inExample && strings.TrimSpace(l) == "":
		default:
			if inExample {
				m.line(".fi")
				m.line(".RE")
				inExample = false
			}
			if strings.TrimSpace(l) == "" {
				flush()
				continue
			}
			para = append(para, strings.TrimSpace(l))
		}
	}
	flush()
	if inExample {
		m.line(".fi")
		m.line(".RE")
	}
}

// esc makes text safe in a roff line: backslashes, hyphens (so options
// copy and paste as ASCII), and a leading dot or quote.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

// Lint reads page with groff's man macros and all warnings on, and
// returns what groff complained about. It needs groff (Debian's
// groff-base); ErrNoGroff when it is missing.
func Lint(page string) error {
	groff, err := exec.LookPath("groff")
	if err != nil {
		return ErrNoGroff
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		return fmt.Errorf("groff: %v: %s", err, out)
	}
	return nil
}

// ErrNoGroff: Lint found no groff to read the page with.
var ErrNoGroff = errors.New("clidoc: groff is not installed")
