package e2e

import (
	"regexp"
	"testing"
)

// Every binary answers --version with its name and gofunc's version,
// and exits 0 without needing any other flag (certmaster and funcd
// otherwise require --dir).
func TestVersionFlag(t *testing.T) {
	t.Parallel()
	line := regexp.MustCompile(`^(func|funcd|certmaster) (v\S+|\(devel\))( \(github\.com/gofunc/gofunc[^)]*\))? go\S+ \S+/\S+\n$`)
	for _, bin := range []string{"func", "funcd", "certmaster"} {
		out, errOut, code := runCmd(t, bin, "--version")
		if code != 0 || !line.MatchString(out) || out[:len(bin)+1] != bin+" " || errOut != "" {
			t.Errorf("%s --version: exit %d, stdout %q, stderr %q", bin, code, out, errOut)
		}
	}
}
