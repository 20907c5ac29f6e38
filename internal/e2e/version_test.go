package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// Every binary answers --version with its name and gofunc's version,
// and exits 0 without needing any other flag (certmaster, funcd and
// funcweb otherwise require --dir).
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	line := regexp.MustCompile(`^(func|funcd|certmaster|funcweb|funcbroker) (v\S+|\(devel\))( \(github\.com/gofunc/gofunc[^)]*\))? go\S+ \S+/\S+\n$`)
	for _, bin := range []string{"func", "funcd", "certmaster", "funcweb", "funcbroker"} {
		out, errOut, code := runCmd(t, bin, "--version")
		if code != 0 || !line.MatchString(out) || out[:len(bin)+1] != bin+" " || errOut != "" {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q", bin, code, out, errOut)
		}
	}
}

// Every binary prints its completion scripts and man page from its own
// definitions, answers completion requests, and run bare prints its
// usage as a usage error.
func TestEveryBinaryDocumentsItself(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{"func", "funcd", "certmaster", "funcweb", "funcbroker"} {
		for _, shell := range []string{"bash", "zsh", "fish"} {
			out, errOut, code := runCmd(t, bin, "--completion", shell)
			if code != 0 || !strings.Contains(out, bin+" __complete") || errOut != "" {
				t.Errorf("%s --completion %s: exit %d\n%s\n%s", bin, shell, code, out, errOut)
			}
		}
		if _, _, code := runCmd(t, bin, "--completion", "tcsh"); code != 2 {
			t.Errorf("%s --completion tcsh: exit %d, want 2", bin, code)
		}
		out, _, code := runCmd(t, bin, "--man")
		if code != 0 || !strings.HasPrefix(out, ".TH "+strings.ToUpper(bin)+" ") || !strings.Contains(out, ".SH OPTIONS") {
			t.Errorf("%s --man: exit %d\n%.300s", bin, code, out)
		}
		out, _, code = runCmd(t, bin, "__complete", "--ver")
		if code != 0 || out != "--version\n" {
			t.Errorf("%s __complete --ver: exit %d, %q", bin, code, out)
		}
		out, errOut, code := runCmd(t, bin)
		if code != 2 || out != "" || !strings.Contains(errOut, "Usage: "+bin) || !strings.Contains(errOut, "Examples:") {
			t.Errorf("bare %s: exit %d\nstdout:\n%s\nstderr:\n%s", bin, code, out, errOut)
		}
	}
}
