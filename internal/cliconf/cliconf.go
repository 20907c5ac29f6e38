// Package cliconf gives gofunc's commands (certmaster, funcd, func) one
// way to take every flag from three places, in this order of precedence:
//
//  1. the command line;
//  2. the environment, as GOFUNC_<FLAG>: the flag's name upper-cased with
//     "-" as "_" (--log-level is GOFUNC_LOG_LEVEL, --dir is GOFUNC_DIR);
//  3. gofunc.toml in the identity directory (--dir): top-level keys named
//     like the flags ("log-level" or "log_level"), or the same keys inside
//     a table named after the command ("[serve]"), which win over the
//     top-level ones.
//
// Keys the command does not know are ignored: one gofunc.toml may serve
// several commands. A flag's default applies when none of the three sets
// it.
//
// Use it with kong:
//
//	dir := cliconf.DirFromArgs(args, os.Getenv)
//	parser, err := kong.New(&cli, kong.Resolvers(cliconf.Resolver(dir, os.Getenv)))
package cliconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"
	"github.com/alecthomas/kong"
)

// FileName is the configuration file looked for in the directory.
const FileName = "gofunc.toml"

// EnvPrefix starts every environment variable that sets a flag.
const EnvPrefix = "GOFUNC_"

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
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--dir="); ok {
			return v
		}
		if a == "--dir" && i+1 < len(args) {
			return args[i+1]
		}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if d := getenv(EnvName("dir")); d != "" {
		return d
	}
	return defaultDir
}

// Resolver returns a kong.Resolver that supplies flags missing from the
// command line from the environment (GOFUNC_<FLAG>) and then from
// dir/gofunc.toml ("" means no file). getenv nil means os.Getenv. A
// gofunc.toml that cannot be read or parsed fails the parse with an error
// naming the file; a missing one is fine.
func Resolver(dir string, getenv func(string) string) kong.Resolver {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &resolver{dir: dir, getenv: getenv}
}

type resolver struct {
	dir    string
	getenv func(string) string

	once   sync.Once
	values map[string]any
	err    error
}

// Validate loads the file early so that a syntax error is reported even
// when no flag needs it, and refuses keys that name no flag: a typo
// such as "acl_dri" must not silently leave a setting at its default.
func (r *resolver) Validate(app *kong.Application) error {
	if err := r.load(); err != nil {
		return err
	}
	return r.checkKeys(app)
}

// ErrUnknownKey is wrapped by the error for a gofunc.toml key that names
// no flag.
var ErrUnknownKey = errors.New("unknown key")

// checkKeys accepts a top-level key that names any flag of the program,
// and a table named after a command whose keys name that command's
// flags (or the program's global ones).
func (r *resolver) checkKeys(app *kong.Application) error {
	if app == nil || app.Node == nil {
		return nil
	}
	all := flagNames(app.Node, nil)
	global := flagNames(&kong.Node{Flags: app.Node.Flags}, nil)
	path := filepath.Join(r.dir, FileName)
	for key, v := range r.values {
		table, isTable := v.(map[string]any)
		if !isTable {
			if !all[key] {
				return fmt.Errorf("cliconf: %s: %w %q: no such flag", path, ErrUnknownKey, key)
			}
			continue
		}
		cmd := findCommand(app.Node, key)
		if cmd == nil {
			return fmt.Errorf("cliconf: %s: %w [%s]: no such command", path, ErrUnknownKey, key)
		}
		known := flagNames(cmd, maps.Clone(global))
		for k := range table {
			if !known[k] {
				return fmt.Errorf("cliconf: %s: %w %q in [%s]: no such flag", path, ErrUnknownKey, k, key)
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

func (r *resolver) load() error {
	r.once.Do(func() {
		r.values = map[string]any{}
		if r.dir == "" {
			return
		}
		path := filepath.Join(r.dir, FileName)
		b, err := readBounded(path)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			r.err = fmt.Errorf("cliconf: %w", err)
			return
		}
		if _, err := toml.Decode(string(b), &r.values); err != nil {
			r.err = fmt.Errorf("cliconf: %s: %w", path, err)
		}
	})
	return r.err
}

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
	if err := r.load(); err != nil {
		return nil, err
	}
	keys := []string{flag.Name, strings.ReplaceAll(flag.Name, "-", "_")}
	if ctx != nil {
		if cmd := strings.Fields(ctx.Command()); len(cmd) > 0 {
			if table, ok := r.values[cmd[0]].(map[string]any); ok {
				for _, k := range keys {
					if v, ok := table[k]; ok {
						return v, nil
					}
				}
			}
		}
	}
	for _, k := range keys {
		if v, ok := r.values[k]; ok {
			if _, isTable := v.(map[string]any); !isTable {
				return v, nil
			}
		}
	}
	return nil, nil
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
// neither --dir nor GOFUNC_DIR, gofunc.toml is read from defaultDir
// (see DirFromArgsOr). Parse is ParseOr with no default directory.
func ParseOr(parser *kong.Kong, args []string, defaultDir string) (ctx *kong.Context, err error) {
	if err := kong.Resolvers(Resolver(DirFromArgsOr(args, nil, defaultDir), nil)).Apply(parser); err != nil {
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
