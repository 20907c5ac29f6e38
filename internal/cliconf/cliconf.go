// Package cliconf gives gofunc's commands (certmaster, funcd, func) one
// way to take every flag from four places, in this order of precedence:
//
//  1. the command line;
//  2. the environment, as GOFUNC_<FLAG>: the flag's name upper-cased with
//     "-" as "_" (--log-level is GOFUNC_LOG_LEVEL, --dir is GOFUNC_DIR);
//  3. gofunc.toml in the identity directory (--dir): top-level keys named
//     like the flags ("log-level" or "log_level"), or the same keys inside
//     a table named after the command ("[serve]"), which win over the
//     top-level ones;
//  4. the system-wide file of the program, /etc/gofunc/PROGRAM.toml
//     (funcd.toml, certmaster.toml, func.toml; the directory is
//     $GOFUNC_SYSCONFDIR when set), in the same form. It may also name
//     the directory itself (dir = "/var/lib/gofunc"), so that a daemon
//     started with no flag at all finds everything.
//
// A key that names no flag of the program is an error naming the file,
// so that a typo cannot leave a setting at its default. The arrays of
// tables in ArrayTables ([[watch]]) are left to their own readers. A flag's
// default applies when none of the four sets it.
//
// Use it with kong:
//
//	parser, err := kong.New(&cli, ...)
//	kctx, err := cliconf.Parse(parser, args) // nil kctx: --help was printed
package cliconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/alecthomas/kong"
)

// FileName is the configuration file looked for in the directory.
const FileName = "gofunc.toml"

// EnvPrefix starts every environment variable that sets a flag.
const EnvPrefix = "GOFUNC_"

// DefaultSystemDir holds the system-wide configuration files.
const DefaultSystemDir = "/etc/gofunc"

// SystemDir is where the system-wide files are: $GOFUNC_SYSCONFDIR, else
// /etc/gofunc.
func SystemDir() string {
	if d := os.Getenv(EnvPrefix + "SYSCONFDIR"); d != "" {
		return d
	}
	return DefaultSystemDir
}

// SystemFile is program's system-wide configuration file:
// SystemDir()/program.toml.
func SystemFile(program string) string {
	return filepath.Join(SystemDir(), program+".toml")
}

// maxFileBytes bounds gofunc.toml; a configuration file is small.
const maxFileBytes = 1 << 20

// EnvName returns the environment variable for a flag name:
// EnvName("log-level") == "GOFUNC_LOG_LEVEL".
func EnvName(flag string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// DirFromArgs finds the --dir flag's value in args ("--dir X" or
// "--dir=X") before kong parses them, so the resolver knows where
// gofunc.toml is; failing that it returns GOFUNC_DIR from getenv (nil
// means os.Getenv), else "". Arguments after "--" are not flags.
func DirFromArgs(args []string, getenv func(string) string) string {
	return DirFromArgsOr(args, getenv, "")
}

// DirFromArgsOr is DirFromArgs for a command whose --dir has a default
// (func's is ~/.gofunc): when neither --dir nor GOFUNC_DIR is set it
// returns defaultDir, so that directory's gofunc.toml is read too.
func DirFromArgsOr(args []string, getenv func(string) string, defaultDir string) string {
	if d, ok := dirFromArgsEnv(args, getenv); ok {
		return d
	}
	return defaultDir
}

func dirFromArgsEnv(args []string, getenv func(string) string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--dir="); ok {
			return v, true
		}
		if a == "--dir" && i+1 < len(args) {
			return args[i+1], true
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv(EnvName("dir")); d != "" {
		return d, true
	}
	return "", false
}

// systemDirKey is the "dir" a system-wide file sets, if it is a string.
func systemDirKey(system string) string {
	f := &configFile{path: system}
	if f.load() != nil {
		return ""
	}
	d, _ := f.values["dir"].(string)
	return d
}

// Resolver returns a kong.Resolver that supplies flags missing from the
// command line from the environment (GOFUNC_<FLAG>) and then from
// dir/gofunc.toml ("" means no file). getenv nil means os.Getenv. A
// gofunc.toml that cannot be read or parsed fails the parse with an error
// naming the file; a missing one is fine.
func Resolver(dir string, getenv func(string) string) kong.Resolver {
	if dir == "" {
		return FileResolver(getenv)
	}
	return FileResolver(getenv, filepath.Join(dir, FileName))
}

// FileResolver is Resolver with the configuration files named: the
// environment first, then each file in turn (Parse passes
// DIR/gofunc.toml and the system-wide file).
func FileResolver(getenv func(string) string, paths ...string) kong.Resolver {
	if getenv == nil {
		getenv = os.Getenv
	}
	r := &resolver{getenv: getenv}
	for _, p := range paths {
		r.files = append(r.files, &configFile{path: p})
	}
	return r
}

type resolver struct {
	getenv func(string) string
	files  []*configFile // in order of precedence
}

// configFile is one TOML file, read once.
type configFile struct {
	path   string
	once   sync.Once
	values map[string]any
	err    error
}

// Validate loads the files early so that a syntax error is reported
// even when no flag needs them, and refuses keys that name no flag: a
// typo such as "acl_dri" must not silently leave a setting at its
// default.
func (r *resolver) Validate(app *kong.Application) error {
	for _, f := range r.files {
		if err := f.load(); err != nil {
			return err
		}
		if err := f.checkKeys(app); err != nil {
			return err
		}
	}
	return nil
}

// ArrayTables are the arrays of tables a gofunc.toml may hold beside
// the flags, each read by its own parser: "watch", funcd's watchers
// (events/watch.Parse, which checks their keys).
var ArrayTables = []string{"watch"}

// ErrUnknownKey is wrapped by the error for a configuration key that
// names no flag.
var ErrUnknownKey = errors.New("unknown key")

// checkKeys accepts a top-level key that names any flag of the program,
// and a table named after a command whose keys name that command's
// flags (or the program's global ones).
func (f *configFile) checkKeys(app *kong.Application) error {
	if app == nil || app.Node == nil {
		return nil
	}
	all := flagNames(app.Node, nil)
	global := flagNames(&kong.Node{Flags: app.Node.Flags}, nil)
	for key, v := range f.values {
		if _, ok := v.([]map[string]any); ok && slices.Contains(ArrayTables, key) {
			continue
		}
		table, isTable := v.(map[string]any)
		if !isTable {
			if !all[key] {
				return fmt.Errorf("cliconf: %s: %w %q: no such flag", f.path, ErrUnknownKey, key)
			}
			continue
		}
		cmd := findCommand(app.Node, key)
		if cmd == nil {
			return fmt.Errorf("cliconf: %s: %w [%s]: no such command", f.path, ErrUnknownKey, key)
		}
		known := flagNames(cmd, maps.Clone(global))
		for k := range table {
			if !known[k] {
				return fmt.Errorf("cliconf: %s: %w %q in [%s]: no such flag", f.path, ErrUnknownKey, k, key)
			}
		}
	}
	return nil
}

// flagNames adds the names of n's flags and of every flag below it, in
// both spellings (acl-dir and acl_dir), to into.
func flagNames(n *kong.Node, into map[string]bool) map[string]bool {
	if into == nil {
		into = map[string]bool{}
	}
	for _, f := range n.Flags {
		into[f.Name] = true
		into[strings.ReplaceAll(f.Name, "-", "_")] = true
	}
	for _, c := range n.Children {
		flagNames(c, into)
	}
	return into
}

func findCommand(root *kong.Node, name string) *kong.Node {
	for _, c := range root.Children {
		if c.Type == kong.CommandNode && c.Name == name {
			return c
		}
	}
	return nil
}

func (f *configFile) load() error {
	f.once.Do(func() {
		f.values = map[string]any{}
		b, err := readBounded(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			f.err = fmt.Errorf("cliconf: %w", err)
			return
		}
		if _, err := toml.Decode(string(b), &f.values); err != nil {
			f.err = fmt.Errorf("cliconf: %s: %w", f.path, err)
		}
	})
	return f.err
}

// ReadFile reads a configuration file of at most 1 MiB, as the
// resolver does (for readers of its ArrayTables).
func ReadFile(path string) ([]byte, error) { return readBounded(path) }

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxFileBytes)
	}
	return b, nil
}

// Resolve implements kong.Resolver.
func (r *resolver) Resolve(ctx *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	if v, ok := lookupEnv(r.getenv, EnvName(flag.Name)); ok {
		return v, nil
	}
	var command string
	if ctx != nil {
		if cmd := strings.Fields(ctx.Command()); len(cmd) > 0 {
			command = cmd[0]
		}
	}
	for _, f := range r.files {
		if err := f.load(); err != nil {
			return nil, err
		}
		if v, ok := f.lookup(command, flag.Name); ok {
			return v, nil
		}
	}
	return nil, nil
}

// lookup finds a flag's value in the file: in the command's table
// first, then at the top level; under its name or with "_" for "-".
func (f *configFile) lookup(command, flag string) (any, bool) {
	keys := []string{flag, strings.ReplaceAll(flag, "-", "_")}
	if table, ok := f.values[command].(map[string]any); ok && command != "" {
		for _, k := range keys {
			if v, ok := table[k]; ok {
				return v, true
			}
		}
	}
	for _, k := range keys {
		if v, ok := f.values[k]; ok {
			if _, isTable := v.(map[string]any); !isTable {
				return v, true
			}
		}
	}
	return nil, false
}

// lookupEnv treats an empty variable as unset, as shells make unsetting
// awkward and an empty flag value is rarely meant.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

// Parse parses args with parser, taking missing flags from the
// environment and DIR/gofunc.toml (see Resolver; DIR from DirFromArgs
// with os.Getenv). When the user asked for help, kong has printed it and
// Parse returns a nil context and a nil error: the command should exit
// 0. Any other early exit kong asks for is returned as an error.
// parser.Exit is restored before Parse returns.
func Parse(parser *kong.Kong, args []string) (ctx *kong.Context, err error) {
	return ParseOr(parser, args, "")
}

// ParseOr is Parse for a command whose --dir has a default: with
// neither --dir nor GOFUNC_DIR, the directory is the one the
// system-wide file names (dir = "..."), else defaultDir, and its
// gofunc.toml is read (see DirFromArgsOr). Parse is ParseOr with no
// default directory.
func ParseOr(parser *kong.Kong, args []string, defaultDir string) (ctx *kong.Context, err error) {
	system := SystemFile(parser.Model.Name)
	dir, ok := dirFromArgsEnv(args, nil)
	if !ok {
		if dir = systemDirKey(system); dir == "" {
			dir = defaultDir
		}
	}
	paths := []string{system}
	if dir != "" {
		paths = []string{filepath.Join(dir, FileName), system}
	}
	if err := kong.Resolvers(FileResolver(nil, paths...)).Apply(parser); err != nil {
		return nil, err
	}
	exit := parser.Exit
	parser.Exit = func(code int) { panic(exitRequest{code}) }
	defer func() {
		parser.Exit = exit
		r := recover()
		if r == nil {
			return
		}
		req, ok := r.(exitRequest)
		if !ok {
			panic(r)
		}
		ctx, err = nil, nil
		if req.code != 0 {
			err = fmt.Errorf("cliconf: exit status %d", req.code)
		}
	}()
	return parser.Parse(args)
}

// exitRequest carries kong's Exit out of Parse.
type exitRequest struct{ code int }
