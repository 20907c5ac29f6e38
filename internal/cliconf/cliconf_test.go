package cliconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

type testCLI struct {
	Dir      string        `help:"directory"`
	LogLevel string        `default:"info"`
	Listen   string        `default:":51235"`
	Forks    int           `default:"8"`
	Timeout  time.Duration `default:"30s"`
	Verbose  bool
	Tags     []string

	Serve struct {
		Autosign string
	} `cmd:""`
	List struct{} `cmd:""`
}

func parse(t *testing.T, dir string, env map[string]string, args ...string) (*testCLI, error) {
	t.Helper()
	var cli testCLI
	getenv := func(k string) string { return env[k] }
	p, err := kong.New(&cli, kong.Resolvers(Resolver(dir, getenv)), kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return &cli, err
}

func writeTOML(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestPrecedence(t *testing.T) {
	dir := writeTOML(t, `
log-level = "debug"
listen = "file:1"
forks = 3
timeout = "5s"
verbose = true
tags = ["a", "b"]
[serve]
listen = "serve-file:2"
autosign = "web*"
`)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want testCLI
	}{
		{"file only", nil, []string{"list"},
			testCLI{LogLevel: "debug", Listen: "file:1", Forks: 3, Timeout: 5 * time.Second, Verbose: true, Tags: []string{"a", "b"}}},
		{"command table wins over top level", nil, []string{"serve"},
			testCLI{LogLevel: "debug", Listen: "serve-file:2", Forks: 3, Timeout: 5 * time.Second, Verbose: true, Tags: []string{"a", "b"}}},
		{"env wins over file", map[string]string{"GOFUNC_LISTEN": "env:3", "GOFUNC_FORKS": "9", "GOFUNC_LOG_LEVEL": "warn"}, []string{"serve"},
			testCLI{LogLevel: "warn", Listen: "env:3", Forks: 9, Timeout: 5 * time.Second, Verbose: true, Tags: []string{"a", "b"}}},
		{"flag wins over env", map[string]string{"GOFUNC_LISTEN": "env:3"}, []string{"--listen", "flag:4", "--forks=1", "serve", "--autosign", "db*"},
			testCLI{LogLevel: "debug", Listen: "flag:4", Forks: 1, Timeout: 5 * time.Second, Verbose: true, Tags: []string{"a", "b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parse(t, dir, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			got.Serve.Autosign = ""
			got.Dir = ""
			if got.LogLevel != tt.want.LogLevel || got.Listen != tt.want.Listen || got.Forks != tt.want.Forks ||
				got.Timeout != tt.want.Timeout || got.Verbose != tt.want.Verbose || strings.Join(got.Tags, ",") != strings.Join(tt.want.Tags, ",") {
				t.Errorf("got %+v, want %+v", *got, tt.want)
			}
		})
	}
	got, err := parse(t, dir, nil, "serve")
	if err != nil || got.Serve.Autosign != "web*" {
		t.Errorf("serve autosign from [serve] table: %q, %v", got.Serve.Autosign, err)
	}
}

func TestDefaultsWithoutFile(t *testing.T) {
	got, err := parse(t, t.TempDir(), nil, "list")
	if err != nil {
		t.Fatal(err)
	}
	if got.LogLevel != "info" || got.Listen != ":51235" || got.Forks != 8 {
		t.Errorf("defaults not applied: %+v", got)
	}
	got, err = parse(t, "", map[string]string{"GOFUNC_VERBOSE": "true"}, "list")
	if err != nil || !got.Verbose {
		t.Errorf("env bool: %+v %v", got, err)
	}
}

func TestBadFile(t *testing.T) {
	dir := writeTOML(t, "listen = [unterminated")
	_, err := parse(t, dir, nil, "list")
	if err == nil || !strings.Contains(err.Error(), FileName) {
		t.Errorf("bad toml: %v, want an error naming the file", err)
	}
	dir = writeTOML(t, `forks = "many"`)
	if _, err := parse(t, dir, nil, "list"); err == nil {
		t.Error("a wrongly typed value was accepted")
	}
}

func TestDirFromArgs(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"serve", "--dir", "/a"}, nil, "/a"},
		{[]string{"--dir=/b", "list"}, map[string]string{"GOFUNC_DIR": "/env"}, "/b"},
		{[]string{"list"}, map[string]string{"GOFUNC_DIR": "/env"}, "/env"},
		{[]string{"sign", "--", "--dir", "/c"}, nil, ""},
		{[]string{"--dir"}, nil, ""},
	}
	for _, tt := range tests {
		if got := DirFromArgs(tt.args, env(tt.env)); got != tt.want {
			t.Errorf("DirFromArgs(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
	if EnvName("ca-fingerprint") != "GOFUNC_CA_FINGERPRINT" {
		t.Error("EnvName")
	}
}

func TestParseHelpAndEnvDir(t *testing.T) {
	var cli testCLI
	var out strings.Builder
	p, err := kong.New(&cli, kong.Writers(&out, &out), kong.Exit(func(int) { t.Fatal("kong exited the test") }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := Parse(p, []string{"--help"})
	if ctx != nil || err != nil || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("help: ctx=%v err=%v out=%q", ctx, err, out.String())
	}
	if _, err := Parse(p, []string{"bogus"}); err == nil {
		t.Error("unknown command accepted")
	}

	dir := writeTOML(t, `listen = "from-file:1"`)
	t.Setenv("GOFUNC_DIR", dir)
	var cli2 testCLI
	p2, _ := kong.New(&cli2, kong.Exit(func(int) { t.Fatal("exit") }))
	if _, err := Parse(p2, []string{"list"}); err != nil {
		t.Fatal(err)
	}
	if cli2.Dir != dir || cli2.Listen != "from-file:1" {
		t.Errorf("dir %q listen %q: want the dir from GOFUNC_DIR and its file", cli2.Dir, cli2.Listen)
	}
}

// A command whose --dir has a default reads that directory's
// gofunc.toml when neither --dir nor GOFUNC_DIR is given; commands
// without one (Parse) still read no file.
func TestParseOrDefaultDir(t *testing.T) {
	dir := writeTOML(t, `listen = "from-default:2"`)
	t.Setenv("GOFUNC_DIR", "")
	var withDefault testCLI
	p, _ := kong.New(&withDefault, kong.Exit(func(int) { t.Fatal("exit") }))
	if _, err := ParseOr(p, []string{"list"}, dir); err != nil {
		t.Fatal(err)
	}
	if withDefault.Listen != "from-default:2" {
		t.Errorf("listen %q: the default dir's gofunc.toml was not read", withDefault.Listen)
	}
	var without testCLI
	p2, _ := kong.New(&without, kong.Exit(func(int) { t.Fatal("exit") }))
	if _, err := Parse(p2, []string{"list"}); err != nil {
		t.Fatal(err)
	}
	if without.Listen == "from-default:2" {
		t.Error("Parse read a file with no --dir and no default")
	}
	other := writeTOML(t, `listen = "from-flag:3"`)
	if got := DirFromArgsOr([]string{"--dir", other}, func(string) string { return "" }, dir); got != other {
		t.Errorf("DirFromArgsOr with --dir = %q, want %q", got, other)
	}
	if got := DirFromArgsOr(nil, func(string) string { return "/env" }, dir); got != "/env" {
		t.Errorf("DirFromArgsOr with GOFUNC_DIR = %q, want /env", got)
	}
}

// A key that names no flag is an error, not silently ignored: a typo in
// a setting such as acl-dir must not leave it at a permissive default.
func TestUnknownKeysRefused(t *testing.T) {
	for name, body := range map[string]string{
		"top level":     "lisen = \":1\"\n",
		"in a table":    "[serve]\nautosing = \"*\"\n",
		"unknown table": "[srve]\nlisten = \":1\"\n",
		"unknown array": "[[wach]]\ntype = \"file\"\n",
		"watch, plain":  "watch = \"file\"\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, writeTOML(t, body), nil, "serve")
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("err = %v, want ErrUnknownKey", err)
			}
		})
	}
	// Both spellings of a real flag are accepted, and [[watch]] tables
	// (events/watch reads them).
	if _, err := parse(t, writeTOML(t, "log_level = \"debug\"\n[serve]\nlisten = \":1\"\n[[watch]]\ntype = \"file\"\npath = \"/etc/passwd\"\n"), nil, "serve"); err != nil {
		t.Fatalf("known keys refused: %v", err)
	}
}

// The system-wide file (/etc/gofunc/PROGRAM.toml, here under
// GOFUNC_SYSCONFDIR) comes last: after the flag, the environment and
// DIR/gofunc.toml; it may name the directory itself; its unknown keys
// are errors naming it.
func TestSystemFile(t *testing.T) {
	sys := t.TempDir()
	t.Setenv("GOFUNC_SYSCONFDIR", sys)
	t.Setenv("GOFUNC_DIR", "")
	t.Setenv("GOFUNC_LISTEN", "")
	dir := t.TempDir()
	write := func(path, body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sys, "tool.toml"), "dir = \""+dir+"\"\nlisten = \":1\"\nname = \"from-system\"\n")
	type cli struct {
		Dir    string `required:""`
		Listen string
		Name   string
	}
	parse := func(args ...string) (cli, error) {
		var c cli
		p, err := kong.New(&c, kong.Name("tool"), kong.Exit(func(int) { t.Fatal("exit") }))
		if err != nil {
			t.Fatal(err)
		}
		_, err = Parse(p, args)
		return c, err
	}
	c, err := parse()
	if err != nil || c.Dir != dir || c.Listen != ":1" || c.Name != "from-system" {
		t.Fatalf("system file only: %+v, %v", c, err)
	}
	write(filepath.Join(dir, FileName), "listen = \":2\"\n")
	c, err = parse()
	if err != nil || c.Listen != ":2" || c.Name != "from-system" {
		t.Errorf("DIR/gofunc.toml over the system file: %+v, %v", c, err)
	}
	t.Setenv("GOFUNC_LISTEN", ":3")
	if c, err = parse(); err != nil || c.Listen != ":3" {
		t.Errorf("environment over the files: %+v, %v", c, err)
	}
	if c, err = parse("--listen", ":4", "--dir", t.TempDir()); err != nil || c.Listen != ":4" || c.Name != "from-system" {
		t.Errorf("flag over everything, another --dir: %+v, %v", c, err)
	}
	write(filepath.Join(sys, "tool.toml"), "lisen = \":1\"\n")
	if _, err = parse("--dir", dir); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), filepath.Join(sys, "tool.toml")) {
		t.Errorf("typo in the system file: %v", err)
	}
	if SystemFile("funcd") != filepath.Join(sys, "funcd.toml") {
		t.Errorf("SystemFile = %s", SystemFile("funcd"))
	}
}
