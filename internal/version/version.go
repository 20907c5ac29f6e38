// Package version says which build of gofunc a binary is, for every
// daemon's and tool's --version: the module version and the VCS
// revision the Go toolchain stamped into the binary
// (runtime/debug.ReadBuildInfo), so nothing has to be set by hand at
// release time.
//
// Use it in a kong command line:
//
//	type cli struct {
//		Version version.Flag `help:"Print the version and exit."`
//		...
//	}
//
// `go install github.com/gofunc/gofunc/cmd/...@v1.2.0` stamps v1.2.0;
// a build from a git checkout stamps a pseudo-version and the revision
// (with "modified" when the tree had uncommitted changes); a build with
// -buildvcs=false, or a test binary, says "(devel)" and no revision.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/alecthomas/kong"
)

// Info is what a binary knows about its own build.
type Info struct {
	// Module is the main module's path, e.g. github.com/gofunc/gofunc;
	// empty when the binary carries no build information.
	Module string
	// Version is the main module's version: a release tag (v1.2.0), a
	// pseudo-version, or "(devel)".
	Version string
	// Revision is the VCS commit the binary was built from; empty when
	// unknown (built outside a checkout, or with -buildvcs=false).
	Revision string
	// Time is the commit's time in RFC 3339; empty when unknown.
	Time string
	// Modified reports uncommitted changes in the checkout it was built
	// from.
	Modified bool
	// Go is the toolchain that built the binary (go1.27.3).
	Go string
}

// Read returns this binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Version: "(devel)", Go: runtime.Version()}
	}
	return fromBuildInfo(bi)
}

func fromBuildInfo(bi *debug.BuildInfo) Info {
	in := Info{Module: bi.Main.Path, Version: bi.Main.Version, Go: bi.GoVersion}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	if in.Go == "" {
		in.Go = runtime.Version()
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the one line --version prints after the program's name:
//
//	v1.2.0 (github.com/gofunc/gofunc, revision 1a2b3c4d5e6f, 2026-12-01T10:00:00Z) go1.27.3 linux/amd64
func (in Info) String() string {
	var b strings.Builder
	b.WriteString(in.Version)
	var details []string
	if in.Module != "" {
		details = append(details, in.Module)
	}
	if in.Revision != "" {
		rev := in.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if in.Modified {
			rev += " modified"
		}
		details = append(details, "revision "+rev)
	}
	if in.Time != "" {
		details = append(details, in.Time)
	}
	if len(details) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(details, ", "))
	}
	fmt.Fprintf(&b, " %s %s/%s", in.Go, runtime.GOOS, runtime.GOARCH)
	return b.String()
}

// Line is what `PROGRAM --version` prints: the program's name and
// Read().String().
func Line(program string) string { return program + " " + Read().String() }

// Flag is a kong flag that prints Line(the program's name) on the
// parser's stdout and exits 0, before any other flag is checked (so
// `certmaster --version` works without the otherwise required --dir).
type Flag bool

// BeforeReset implements kong's hook: it runs before flags are
// validated.
func (Flag) BeforeReset(app *kong.Kong) error {
	fmt.Fprintln(app.Stdout, Line(app.Model.Name))
	app.Exit(0)
	return nil
}
