package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/internal/clidoc"
)

// needShell finds a shell, failing under CI (which installs bash, zsh
// and fish) and skipping loudly elsewhere.
func needShell(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; .ci/run installs it", name)
		}
		t.Skipf("SKIPPED: %s is not installed; its completion script is not checked", name)
	}
	return path
}

// The completion scripts, loaded by real shells, complete from the real
// binary: commands, flags, enum values and the minions in the identity
// directory the command line names.
func TestShellCompletion(t *testing.T) {
	bin := funcBinary(t)
	_, dir := fleetDir(t, 2)
	env := append(os.Environ(), "PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	script := func(shell string) string {
		out, err := exec.Command(bin, "--completion", shell).Output()
		if err != nil {
			t.Fatalf("func --completion %s: %v", shell, err)
		}
		f := filepath.Join(t.TempDir(), "func."+shell)
		if err := os.WriteFile(f, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	run := func(shell string, args ...string) []string {
		t.Helper()
		cmd := exec.Command(shell, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %q: %v\n%s", shell, args, err, out)
		}
		var lines []string
		for l := range strings.Lines(string(out)) {
			if l = strings.TrimSpace(l); l != "" {
				lines = append(lines, strings.SplitN(l, "\t", 2)[0]) // fish adds descriptions after a tab
			}
		}
		slices.Sort(lines)
		return lines
	}
	cases := []struct {
		words []string // after "func"; the last is being completed
		want  []string
	}{
		{[]string{"--dir", dir, "m"}, []string{"m1.test", "m2.test"}},
		{[]string{"--dir", dir, "m1.test", "r"}, []string{"run"}},
		{[]string{"--log-level", "w"}, []string{"warn"}},
		{[]string{"--dir", dir, "m1.test", "call", "--str"}, []string{"--stream", "--strings"}},
		{[]string{"aud"}, []string{"audit"}},
	}

	bashScript := script("bash")
	zshScript := script("zsh")
	fishScript := script("fish")
	t.Run("bash", func(t *testing.T) {
		bash := needShell(t, "bash")
		for _, tc := range cases {
			words := append([]string{"func"}, tc.words...)
			prog := "source " + bashScript + "; COMP_WORDS=(" + quoteAll(words) + "); COMP_CWORD=" + strconv.Itoa(len(words)-1) +
				"; _func; printf '%s\\n' \"${COMPREPLY[@]}\""
			if got := run(bash, "-c", prog); !slices.Equal(got, tc.want) {
				t.Errorf("bash %q: %q, want %q", tc.words, got, tc.want)
			}
		}
	})
	t.Run("zsh", func(t *testing.T) {
		zsh := needShell(t, "zsh")
		// Outside an interactive completion, compadd and compdef are
		// stand-ins that print what the script hands them.
		stubs := "compdef() { :; }; _files() { print :files; }; " +
			"compadd() { while [[ $1 == -* && $1 != -- ]]; do shift; done; [[ $1 == -- ]] && shift; print -l -- \"$@\"; }; "
		for _, tc := range cases {
			words := append([]string{"func"}, tc.words...)
			prog := stubs + "source " + zshScript + "; words=(" + quoteAll(words) + "); CURRENT=" + strconv.Itoa(len(words)) + "; _func"
			if got := run(zsh, "-f", "-c", prog); !slices.Equal(got, tc.want) {
				t.Errorf("zsh %q: %q, want %q", tc.words, got, tc.want)
			}
		}
		if out, err := exec.Command(zsh, "-n", zshScript).CombinedOutput(); err != nil {
			t.Errorf("zsh -n: %v\n%s", err, out)
		}
	})
	t.Run("fish", func(t *testing.T) {
		fish := needShell(t, "fish")
		for _, tc := range cases {
			line := "func " + strings.Join(tc.words, " ")
			prog := "source " + fishScript + "; complete -C " + shellQuote(line)
			if got := run(fish, "--no-config", "-c", prog); !slices.Equal(got, tc.want) {
				t.Errorf("fish %q: %q, want %q", tc.words, got, tc.want)
			}
		}
	})
}

// The man page comes from the same definitions and reads cleanly.
func TestManPage(t *testing.T) {
	bin := funcBinary(t)
	page, err := exec.Command(bin, "--man").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".TH FUNC 1", ".SS \"func <spec> run <argv> ...", "\\fB\\-\\-passthrough\\fR", ".SS \"Output (global)\"",
		"\\fB\\-\\-jsonl\\fR", "func '*' ping", ".SH SEE ALSO"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("man page lacks %q", want)
		}
	}
	switch err := clidoc.Lint(string(page)); {
	case errors.Is(err, clidoc.ErrNoGroff) && os.Getenv("CI") == "":
		t.Log("SKIPPED the groff check: groff is not installed")
	case err != nil:
		t.Error(err)
	}
}

func quoteAll(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = shellQuote(w)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
