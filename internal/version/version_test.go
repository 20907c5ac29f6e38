package version

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   debug.BuildInfo
		want []string // substrings of String()
		not  []string
	}{
		{"release", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Path: "github.com/gofunc/gofunc", Version: "v1.2.0"}},
			[]string{"v1.2.0 (github.com/gofunc/gofunc)", "go1.27.3"}, []string{"revision"}},
		{"checkout", debug.BuildInfo{GoVersion: "go1.27.3", Main: debug.Module{Path: "github.com/gofunc/gofunc", Version: "v0.0.0-20261201100000-1a2b3c4d5e6f+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "1a2b3c4d5e6f7a8b9c0d"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			[]string{"revision 1a2b3c4d5e6f modified", "2026-12-01T10:00:00Z"}, []string{"1a2b3c4d5e6f7"}},
		{"no version", debug.BuildInfo{}, []string{"(devel)"}, []string{"revision", "()"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fromBuildInfo(&tc.bi).String()
			for _, w := range tc.want {
				if !strings.Contains(s, w) {
					t.Errorf("String() = %q, want it to contain %q", s, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(s, n) {
					t.Errorf("String() = %q, must not contain %q", s, n)
				}
			}
		})
	}
}

// The flag prints before required flags are checked, and exits 0.
func TestFlag(t *testing.T) {
	var cli struct {
		Version Flag   `help:"Print the version and exit."`
		Dir     string `required:""`
	}
	var out bytes.Buffer
	code := -1
	p, err := kong.New(&cli, kong.Name("tool"), kong.Writers(&out, &out), kong.Exit(func(c int) { code = c; panic("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() { _ = recover() }()
		_, _ = p.Parse([]string{"--version"})
	}()
	if code != 0 || !strings.HasPrefix(out.String(), "tool ") || !strings.HasSuffix(out.String(), "\n") {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
}
