// Package packages is the gofunc "packages" module: installed packages,
// available updates, install and remove, through dpkg/apt on Debian-like
// hosts and rpm/dnf on Red Hat-like ones, whichever is present. Tools are
// run with an argv (never a shell), in the C locale.
//
//	srv.Register("packages", &packages.Module{})
//
// packages.install and packages.remove are Dangerous.
package packages

import (
	"bytes"
	"cmp"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults of Module's fields.
const (
	DefaultDpkgQueryPath = "/usr/bin/dpkg-query"
	DefaultAptGetPath    = "/usr/bin/apt-get"
	DefaultRpmPath       = "/usr/bin/rpm"
	DefaultDnfPath       = "/usr/bin/dnf"
)

// Managers, the values of Module.Manager.
const (
	Deb = "deb" // dpkg-query and apt-get
	RPM = "rpm" // rpm and dnf
)

// Limits on install and remove arguments.
const (
	maxNames   = 256
	maxNameLen = 256
	// maxResultOutput bounds the tool output install and remove return.
	maxResultOutput = 64 << 10
)

// dpkgFormat makes dpkg-query print what ParseList reads.
const dpkgFormat = `${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n`

// rpmFormat makes rpm print what ParseList reads; the epoch only when set.
const rpmFormat = `%{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\t%{ARCH}\tinstalled\n`

// aptEnv keeps apt and dpkg from asking questions.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "APT_LISTCHANGES_FRONTEND=none"}

// Module is the packages module. Its exported fields are its
// configuration; the zero Module is ready to use. It is safe for
// concurrent use; install and remove run one at a time.
type Module struct {
	// Manager chooses the tool family: Deb, RPM, or "" to detect it
	// (Deb when DpkgQueryPath exists, else RPM when RpmPath exists).
	Manager string
	// DpkgQueryPath, AptGetPath, RpmPath and DnfPath are the tools; ""
	// means the Default...Path constants (/usr/bin/dpkg-query,
	// /usr/bin/apt-get, /usr/bin/rpm, /usr/bin/dnf).
	DpkgQueryPath string
	AptGetPath    string
	RpmPath       string
	DnfPath       string

	mu sync.Mutex // serializes install and remove (the tools lock anyway)
}

// Result is what install or remove did.
type Result struct {
	// Output is the end of the tool's output, at most 64 KiB.
	Output string `xmlrpc:"output"`
}

// List returns the installed packages.
func (m *Module) List(ctx context.Context) ([]Package, error) {
	mgr, err := m.manager()
	if err != nil {
		return nil, err
	}
	var argv []string
	if mgr == Deb {
		argv = []string{cmp.Or(m.DpkgQueryPath, DefaultDpkgQueryPath), "-W", "-f=" + dpkgFormat}
	} else {
		argv = []string{cmp.Or(m.RpmPath, DefaultRpmPath), "-qa", "--qf", rpmFormat}
	}
	return m.query(ctx, argv)
}

// Inventory returns the installed packages, as List does, sorted by
// name, then architecture, then version: rpm lists its database in no
// particular order, and an inventory must not change when nothing was
// installed or removed.
func (m *Module) Inventory(ctx context.Context) ([]Package, error) {
	pkgs, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(pkgs, func(a, b Package) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Arch, b.Arch),
			strings.Compare(a.Version, b.Version), strings.Compare(a.Status, b.Status))
	})
	return pkgs, nil
}

// Version returns the installed package called name (one entry per
// architecture installed), or a CodeNotFound fault.
func (m *Module) Version(ctx context.Context, name string) ([]Package, error) {
	mgr, err := m.manager()
	if err != nil {
		return nil, err
	}
	if err := checkName(mgr, name, false); err != nil {
		return nil, err
	}
	var argv []string
	if mgr == Deb {
		argv = []string{cmp.Or(m.DpkgQueryPath, DefaultDpkgQueryPath), "-W", "-f=" + dpkgFormat, "--", name}
	} else {
		argv = []string{cmp.Or(m.RpmPath, DefaultRpmPath), "-q", "--qf", rpmFormat, "--", name}
	}
	res, err := run(ctx, nil, argv)
	if err != nil {
		return nil, err
	}
	if res.ExitCode == 1 { // both tools: no such package
		return nil, gofunc.Errorf(gofunc.CodeNotFound, "package %q is not installed", name)
	}
	pkgs, err := parsed(argv, res)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, gofunc.Errorf(gofunc.CodeNotFound, "package %q is not installed", name)
	}
	return pkgs, nil
}

// CheckUpdates returns the updates available from the repositories the
// host already knows (it does not refresh them): apt-get -s upgrade, or
// dnf check-update.
func (m *Module) CheckUpdates(ctx context.Context) ([]Update, error) {
	mgr, err := m.manager()
	if err != nil {
		return nil, err
	}
	if mgr == Deb {
		argv := []string{cmp.Or(m.AptGetPath, DefaultAptGetPath), "-s", "-q", "upgrade"}
		res, err := run(ctx, aptEnv, argv)
		if err != nil {
			return nil, err
		}
		if res.ExitCode != 0 {
			return nil, toolFault(argv, res)
		}
		updates, err := ParseAptSimulate(bytes.NewReader(res.Stdout))
		return wrapParse(argv, updates, err)
	}
	argv := []string{cmp.Or(m.DnfPath, DefaultDnfPath), "-q", "check-update"}
	res, err := run(ctx, nil, argv)
	if err != nil {
		return nil, err
	}
	switch res.ExitCode {
	case 0: // nothing to update
		return []Update{}, nil
	case 100: // updates listed
		updates, err := ParseDnfCheckUpdate(bytes.NewReader(res.Stdout))
		return wrapParse(argv, updates, err)
	}
	return nil, toolFault(argv, res)
}

// Install installs the named packages ("nginx", Debian "nginx=1.22.1-9"
// or "libc6:i386") with apt-get or dnf.
func (m *Module) Install(ctx context.Context, names []string) (Result, error) {
	return m.change(ctx, "install", names)
}

// Remove removes the named packages (configuration files stay).
func (m *Module) Remove(ctx context.Context, names []string) (Result, error) {
	return m.change(ctx, "remove", names)
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	names := gofunc.ArgDoc{Name: "names", Type: "array",
		Description: "package names (Debian: name[:arch][=version]; rpm: name or name-version), at most 256"}
	return gofunc.ModuleDoc{
		Description: "Installed packages, available updates, install and remove (dpkg/apt or rpm/dnf).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List":      {Description: "Installed packages: [{name, version, arch, status}]."},
			"Inventory": {Description: "Installed packages, as list(), sorted by name, arch and version."},
			"Version": {Description: "The installed package called name, one entry per architecture.",
				Args: []gofunc.ArgDoc{{Name: "name", Type: "string", Description: "package name"}}},
			"CheckUpdates": {Description: "Available updates from the known repositories (no refresh): " +
				"[{name, current, available, arch, origin, security}]."},
			"Install": {Description: "Install packages; returns {output}.", Dangerous: true, Args: []gofunc.ArgDoc{names}},
			"Remove":  {Description: "Remove packages; returns {output}.", Dangerous: true, Args: []gofunc.ArgDoc{names}},
		},
	}
}

// change validates names and runs the install or remove command.
func (m *Module) change(ctx context.Context, verb string, names []string) (Result, error) {
	mgr, err := m.manager()
	if err != nil {
		return Result{}, err
	}
	argv, env, err := m.changeArgv(mgr, verb, names)
	if err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res, err := run(ctx, env, argv)
	if err != nil {
		return Result{}, err
	}
	if res.ExitCode != 0 {
		return Result{}, toolFault(argv, res)
	}
	out := res.Stdout
	if len(out) > maxResultOutput {
		out = out[len(out)-maxResultOutput:]
	}
	return Result{Output: strings.ToValidUTF8(string(out), "?")}, nil
}

// changeArgv returns the command installing or removing names.
func (m *Module) changeArgv(mgr, verb string, names []string) (argv, env []string, err error) {
	if len(names) == 0 || len(names) > maxNames {
		return nil, nil, gofunc.Errorf(gofunc.CodeBadArgs, "names must list 1 to %d packages, got %d", maxNames, len(names))
	}
	for _, name := range names {
		if err := checkName(mgr, name, true); err != nil {
			return nil, nil, err
		}
	}
	if mgr == Deb {
		argv = []string{cmp.Or(m.AptGetPath, DefaultAptGetPath), "-y", "-q",
			"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", verb, "--"}
		return append(argv, names...), aptEnv, nil
	}
	argv = []string{cmp.Or(m.DnfPath, DefaultDnfPath), "-y", "-q", verb, "--"}
	return append(argv, names...), nil, nil
}

// manager returns the configured or detected manager.
func (m *Module) manager() (string, error) {
	switch m.Manager {
	case Deb, RPM:
		return m.Manager, nil
	case "":
	default:
		return "", gofunc.Errorf(gofunc.CodeUnavailable, "packages: unknown Manager %q (want %q or %q)", m.Manager, Deb, RPM)
	}
	if executable(cmp.Or(m.DpkgQueryPath, DefaultDpkgQueryPath)) {
		return Deb, nil
	}
	if executable(cmp.Or(m.RpmPath, DefaultRpmPath)) {
		return RPM, nil
	}
	return "", gofunc.Errorf(gofunc.CodeUnavailable, "packages: neither dpkg-query nor rpm is installed")
}

func executable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}

// query runs a list command and parses its output.
func (m *Module) query(ctx context.Context, argv []string) ([]Package, error) {
	res, err := run(ctx, nil, argv)
	if err != nil {
		return nil, err
	}
	if res.ExitCode != 0 {
		return nil, toolFault(argv, res)
	}
	return parsed(argv, res)
}

// run runs a package tool in the environment procrun.ToolEnv gives, plus
// extraEnv.
func run(ctx context.Context, extraEnv, argv []string) (procrun.Output, error) {
	return procrun.Run(ctx, procrun.Spec{Argv: argv, Env: procrun.ToolEnv(extraEnv...), Tool: true})
}

func parsed(argv []string, res procrun.Output) ([]Package, error) {
	pkgs, err := ParseList(bytes.NewReader(res.Stdout))
	return wrapParse(argv, pkgs, err)
}

func wrapParse[T any](argv []string, v T, err error) (T, error) {
	if err != nil {
		return v, gofunc.Errorf(gofunc.CodeModule, "reading the output of %s: %v", filepath.Base(argv[0]), err)
	}
	return v, nil
}

// toolFault turns a failed tool run into a fault, recognizing the
// messages that deserve their own code.
func toolFault(argv []string, res procrun.Output) *gofunc.Fault {
	msg := res.Message()
	code := gofunc.CodeModule
	switch {
	case strings.Contains(msg, "Unable to locate package"), strings.Contains(msg, "No match for argument"),
		strings.Contains(msg, "is not installed"):
		code = gofunc.CodeNotFound
	case strings.Contains(msg, "Could not get lock"), strings.Contains(msg, "Waiting for process"):
		code = gofunc.CodeBusy
	}
	return res.Fault(code, filepath.Base(argv[0]))
}

var (
	// debNameRE is Debian policy's package name, with an optional
	// architecture qualifier.
	debNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$`)
	// debSpecRE adds the "=version" apt-get accepts; a version starts
	// with a digit (the epoch's, if any).
	debSpecRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[0-9][A-Za-z0-9.+~:-]*)?$`)
	// rpmNameRE is an rpm name or a dnf spec such as name-version-release.arch.
	rpmNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+~^:-]*$`)
)

func checkName(mgr, name string, spec bool) error {
	re := rpmNameRE
	if mgr == Deb {
		re = debNameRE
		if spec {
			re = debSpecRE
		}
	}
	if len(name) > maxNameLen || !re.MatchString(name) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "package name %.80q must match %s and be at most %d bytes",
			name, re, maxNameLen)
	}
	return nil
}
