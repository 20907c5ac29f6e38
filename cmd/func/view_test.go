package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
)

func TestFoldHosts(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"web1", "web2", "web3", "web7"}, "web[1-3,7]"},
		{[]string{"m3.test", "m1.test", "m2.test"}, "m[1-3].test"},
		{[]string{"node01", "node02", "node10"}, "node[01-02,10]"},
		{[]string{"db", "web2", "web1", "rack1-n5", "rack1-n6"}, "db,rack1-n[5-6],web[1-2]"},
		{[]string{"a9", "a10", "a11"}, "a[9-11]"},
		{[]string{"solo5"}, "solo5"},
		{nil, ""},
	} {
		if got := hostList(tc.in, 0); got != tc.want {
			t.Errorf("hostList(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := hostList([]string{"a1", "a2", "b1", "c1", "d5"}, 2); got != "a[1-2],b1 and 2 more" {
		t.Errorf("cut list = %q", got)
	}
	if got := hostList([]string{"x1", "x2", "y1", "y2", "y3"}, 1); got != "x[1-2] and 3 more" {
		t.Errorf("cut list counts folded hosts: %q", got)
	}
}

func TestSummaryLine(t *testing.T) {
	var outcomes []hostOutcome
	for _, h := range []string{"web1", "web2", "web5", "web6", "web7"} {
		outcomes = append(outcomes, hostOutcome{host: h, ok: true, class: "ok"})
	}
	outcomes = append(outcomes,
		hostOutcome{host: "web3", class: "exited non-zero", note: "exit 2"},
		hostOutcome{host: "web4", class: "unreachable"})
	if got, want := summaryLine(outcomes), "5 ok, 1 exited non-zero: web3 (exit 2), 1 unreachable: web4"; got != want {
		t.Errorf("summary = %q\nwant      %q", got, want)
	}
	if got := summaryLine(nil); got != "no hosts answered" {
		t.Errorf("empty summary = %q", got)
	}
}

// run groups identical output, shows stderr and exit status only where
// they are not empty or zero, and exits 0 / 1 / the highest status.
func TestRunCommand(t *testing.T) {
	f, dir := fleetDir(t, 3)
	o := runFunc(t, "", "--dir", dir, "*", "run", "echo", "-n", "same everywhere").want(t, exitOK)
	if o.stdout != "---------------- m[1-3].test (3)\nsame everywhere\n" {
		t.Errorf("grouped output:\n%s", o.stdout)
	}
	if strings.TrimSpace(o.stderr) != "3 ok" {
		t.Errorf("summary: %q", o.stderr)
	}
	// A failing command: exit 1, or its status with --passthrough.
	script := []string{"--", "sh", "-c", "echo out; echo oops >&2; exit 3"}
	o = runFunc(t, "", append([]string{"--dir", dir, "*", "run"}, script...)...).want(t, exitFailed)
	if want := "---------------- m[1-3].test (3): exit 3\nout\n---- stderr\noops\n"; o.stdout != want {
		t.Errorf("failing command:\n%s\nwant:\n%s", o.stdout, want)
	}
	if !strings.Contains(o.stderr, "3 exited non-zero: m[1-3].test (exit 3)") {
		t.Errorf("summary: %q", o.stderr)
	}
	runFunc(t, "", append([]string{"--dir", dir, "*", "run", "--passthrough"}, script...)...).want(t, 3)
	runFunc(t, "", "--dir", dir, "*", "run", "false").want(t, exitFailed)
	runFunc(t, "", "--dir", dir, "*", "run").want(t, exitUsage)

	// A host that cannot run it: one line, counted apart; exit 1 even
	// with --passthrough when every command that ran exited 0.
	f.Minions()[1].SetFault(fleettest.Fault{Err: gofunc.Errorf(gofunc.CodeDenied, "not you")})
	o = runFunc(t, "", "--dir", dir, "*", "run", "--passthrough", "true").want(t, exitFailed)
	if !strings.Contains(o.stdout, "---------------- m2.test (1)\ndenied: not you\n") {
		t.Errorf("denied host:\n%s", o.stdout)
	}
	if !strings.Contains(o.stderr, "2 ok, 1 denied: m2.test") {
		t.Errorf("summary: %q", o.stderr)
	}

	// --stream: every line prefixed with its host; the command's stderr
	// and exit status, and problems, on stderr.
	o = runFunc(t, "", append([]string{"--dir", dir, "--stream", "*", "run"}, script...)...).want(t, exitFailed)
	for _, h := range []string{"m1.test", "m3.test"} {
		if !strings.Contains(o.stdout, h+": out\n") || !strings.Contains(o.stderr, h+": oops\n") || !strings.Contains(o.stderr, h+": exit 3\n") {
			t.Errorf("--stream for %s:\nstdout:\n%s\nstderr:\n%s", h, o.stdout, o.stderr)
		}
	}
	if !strings.Contains(o.stderr, "m2.test: denied: not you\n") || strings.Contains(o.stdout, "m2") {
		t.Errorf("--stream problem line:\nstdout:\n%s\nstderr:\n%s", o.stdout, o.stderr)
	}
}

// run's --json is the shape scripts (and the Puppet module) rely on:
// one object per host with ok, value (command.run's result) and error.
func TestRunJSON(t *testing.T) {
	f, dir := fleetDir(t, 2)
	f.Minions()[1].Down()
	o := runFunc(t, "", "--dir", dir, "--json", "*", "run", "--", "sh", "-c", "echo hi; exit 2").want(t, exitFailed)
	var got map[string]struct {
		OK    bool `json:"ok"`
		Value *struct {
			ExitCode int    `json:"exit_code"`
			Stdout   string `json:"stdout"`
			Stderr   string `json:"stderr"`
		} `json:"value"`
		Error *errorJSON `json:"error"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil {
		t.Fatalf("--json: %v\n%s", err, o.stdout)
	}
	m1, m2 := got["m1.test"], got["m2.test"]
	if m1.OK || m1.Value == nil || m1.Value.ExitCode != 2 || m1.Value.Stdout != "hi\n" || m1.Error == nil || m1.Error.Kind != "exit" || m1.Error.Code != 2 {
		t.Errorf("m1: %+v %+v %+v", m1, m1.Value, m1.Error)
	}
	if m2.OK || m2.Value != nil || m2.Error == nil || m2.Error.Kind != "unreachable" || m2.Error.Message != "connection refused" {
		t.Errorf("m2: %+v %+v", m2, m2.Error)
	}
	o = runFunc(t, "", "--dir", dir, "--json", "m1*", "run", "true").want(t, exitOK)
	if !strings.Contains(o.stdout, `"ok": true`) || !strings.Contains(o.stdout, `"error": null`) || !strings.Contains(o.stdout, `"exit_code": 0`) {
		t.Errorf("success:\n%s", o.stdout)
	}
}

// --jsonl prints one line per host, each a JSON object with its host.
func TestJSONLines(t *testing.T) {
	f, dir := fleetDir(t, 3)
	f.Minions()[2].Down()
	o := runFunc(t, "", "--dir", dir, "--jsonl", "*", "ping").want(t, exitFailed)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), o.stdout)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var r struct {
			Host  string     `json:"host"`
			OK    bool       `json:"ok"`
			Value any        `json:"value"`
			Error *errorJSON `json:"error"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		seen[r.Host] = r.OK
		if r.Host == "m3.test" && (r.OK || r.Error == nil || r.Error.Kind != "unreachable") {
			t.Errorf("m3: %s", l)
		}
	}
	if !seen["m1.test"] || !seen["m2.test"] {
		t.Errorf("hosts: %v", seen)
	}
	// An error before any host answered is a JSON line too.
	o = runFunc(t, "", "--dir", dir, "--jsonl", "zz*", "ping").want(t, exitNoMatch)
	if !strings.HasPrefix(o.stdout, `{"error":{`) || !strings.Contains(o.stdout, `"kind":"no_match"`) {
		t.Errorf("no match: %q", o.stdout)
	}
}

// Failed hosts print one line without Go's error chain or their URL, so
// hosts failing the same way group; a timeout names the limit.
func TestHostErrorsOneLine(t *testing.T) {
	f, dir := fleetDir(t, 3)
	f.Minions()[0].Down()
	f.Minions()[1].Down()
	o := runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stdout, "---------------- m[1-2].test (2)\nunreachable (connection refused)\n") {
		t.Errorf("identical errors do not group:\n%s", o.stdout)
	}
	for _, bad := range []string{"https://", "RPC2", "dial tcp", "Post "} {
		if strings.Contains(o.stdout+o.stderr, bad) {
			t.Errorf("output holds %q:\n%s\n%s", bad, o.stdout, o.stderr)
		}
	}
	f.Minions()[2].SetFault(fleettest.Fault{Delay: time.Minute})
	o = runFunc(t, "", "--dir", dir, "--timeout", "500ms", "m3*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stdout, "timed out: no answer within 500ms (--timeout)") || !strings.Contains(o.stderr, "1 timed out after 500ms: m3.test") {
		t.Errorf("timeout:\n%s\n%s", o.stdout, o.stderr)
	}
	f.Minions()[2].SetFault(fleettest.Fault{Err: errors.New("disk on fire\nsecond line")})
	o = runFunc(t, "", "--dir", dir, "--stream", "m3*", "ping").want(t, exitFailed)
	if o.stdout != "m3.test: failed: disk on fire second line\n" {
		t.Errorf("module error line: %q", o.stdout)
	}
}

// --json prints JSON on stdout whatever the outcome.
func TestJSONInEveryOutcome(t *testing.T) {
	_, dir := fleetDir(t, 1)
	for _, tc := range []struct {
		args []string
		code int
		kind string
	}{
		{[]string{"--dir", dir, "--json", "zz*", "ping"}, exitNoMatch, "no_match"},
		{[]string{"--dir", dir, "--json", "@nogroup", "ping"}, exitUsage, "usage"},
		{[]string{"--dir", dir, "--json", "--batch", "0", "*", "ping"}, exitUsage, "usage"},
		{[]string{"--dir", dir, "--json", "*", "call", "test", "add", "{bad"}, exitUsage, "usage"},
		{[]string{"--dir", dir, "--json", "--no-such-flag", "*", "ping"}, exitUsage, "usage"},
		{[]string{"--dir", t.TempDir(), "--json", "*", "ping"}, exitFailed, "error"},
	} {
		o := runFunc(t, "", tc.args...).want(t, tc.code)
		var got struct {
			Error struct {
				Kind    string `json:"kind"`
				Message string `json:"message"`
				Exit    int    `json:"exit"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || got.Error.Kind != tc.kind || got.Error.Exit != tc.code || got.Error.Message == "" {
			t.Errorf("%v: stdout %q (%v)", tc.args, o.stdout, err)
		}
	}
	// Commands that print no host results print JSON too.
	for _, args := range [][]string{{"group", "add", "g", "m1*"}, {"group", "show", "g"}, {"group", "list"}, {"group", "remove", "g"},
		{"list_minions"}, {"jobs", "list"}} {
		o := runFunc(t, "", append([]string{"--dir", dir, "--json"}, args...)...).want(t, exitOK)
		if !json.Valid([]byte(o.stdout)) {
			t.Errorf("%v --json: %q", args, o.stdout)
		}
	}
	o := runFunc(t, "", "audit", "query", dir+"/missing.log").want(t, exitFailed)
	if !strings.HasPrefix(o.stdout, `{"error":{`) {
		t.Errorf("audit query of a missing file: %q", o.stdout)
	}
	// audit verify too.
	runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	o = runFunc(t, "", "--json", "audit", "verify", dir+"/audit.log").want(t, exitOK)
	var got []map[string]any
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || len(got) != 1 || got[0]["ok"] != true {
		t.Errorf("audit verify --json: %q (%v)", o.stdout, err)
	}
	o = runFunc(t, "", "--json", "audit", "verify", dir+"/missing.log").want(t, exitFailed)
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || len(got) != 1 || got[0]["ok"] != false || got[0]["error"] == "" {
		t.Errorf("audit verify --json of a missing file: %q (%v)", o.stdout, err)
	}
}

// --yaml prints every value type as YAML would: numbers as numbers,
// strings that look like numbers as strings.
func TestYAMLValueTypes(t *testing.T) {
	_, dir := fleetDir(t, 1)
	arg := `{"int":42,"neg":-7,"i8":9007199254740993,"float":2.5,"exp":1e300,"numstr":"42","str":"hello","empty":"","yes":true,"no":false,"list":[1,"x",false],"map":{"k":3}}`
	o := runFunc(t, "", "--dir", dir, "--yaml", "*", "call", "test", "echo", arg).want(t, exitOK)
	var got map[string]struct {
		OK    bool           `yaml:"ok"`
		Value map[string]any `yaml:"value"`
		Error any            `yaml:"error"`
	}
	if err := yaml.Unmarshal([]byte(o.stdout), &got); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, o.stdout)
	}
	v := got["m1.test"].Value
	want := map[string]any{"int": 42, "neg": -7, "i8": 9007199254740993, "float": 2.5, "exp": 1e300, "numstr": "42",
		"str": "hello", "empty": "", "yes": true, "no": false}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %#v (%T), want %#v (%T)\n%s", k, v[k], v[k], w, w, o.stdout)
		}
	}
	if l, _ := v["list"].([]any); len(l) != 3 || l[0] != 1 || l[1] != "x" || l[2] != false {
		t.Errorf("list = %#v", v["list"])
	}
	if m, _ := v["map"].(map[string]any); m["k"] != 3 {
		t.Errorf("map = %#v", v["map"])
	}
	if !got["m1.test"].OK || got["m1.test"].Error != nil {
		t.Errorf("ok/error: %+v", got["m1.test"])
	}
	// Bytes, times and null come from real methods: base64 text, an
	// RFC 3339 string, null.
	o = runFunc(t, "", "--dir", dir, "--yaml", "*", "call", "test", "echo", "--strings", "007").want(t, exitOK)
	if !strings.Contains(o.stdout, `value: "007"`) {
		t.Errorf("a numeric-looking string lost its quotes:\n%s", o.stdout)
	}
}

func TestAuditQueryTimesAndOutcomes(t *testing.T) {
	_, dir := fleetDir(t, 1)
	runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	log := dir + "/audit.log"
	o := runFunc(t, "", "audit", "query", "--since", "1h", log).want(t, exitOK)
	if n := strings.Count(o.stdout, "\n"); n < 2 {
		t.Errorf("--since 1h found %d records:\n%s", n, o.stdout)
	}
	o = runFunc(t, "", "audit", "query", "--until", "2d", log).want(t, exitOK)
	if o.stdout != "" {
		t.Errorf("--until 2d (two days ago) found records:\n%s", o.stdout)
	}
	runFunc(t, "", "audit", "query", "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), log).want(t, exitOK)
	o = runFunc(t, "", "audit", "query", "--since", "yesterday-ish", log).want(t, exitUsage)
	if !strings.Contains(o.stderr, "30m, 1h, 2d") {
		t.Errorf("bad --since: %q", o.stderr)
	}
	o = runFunc(t, "", "audit", "query", "--outcome", "bad-args", log).want(t, exitUsage)
	if !strings.Contains(o.stderr, "bad arguments") || !strings.Contains(o.stderr, "denied") {
		t.Errorf("bad --outcome does not list the valid ones: %q", o.stderr)
	}
	o = runFunc(t, "", "audit", "query", "--help").want(t, exitOK)
	if !strings.Contains(strings.Join(strings.Fields(o.stdout), " "), "bad arguments") {
		t.Errorf("--help does not list the outcomes:\n%s", o.stdout)
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"30m":                  now.Add(-30 * time.Minute),
		"1h":                   now.Add(-time.Hour),
		"2d":                   now.Add(-48 * time.Hour),
		"1.5d":                 now.Add(-36 * time.Hour),
		"1w":                   now.Add(-7 * 24 * time.Hour),
		"2026-12-01T10:00:00Z": time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
	} {
		got, err := parseWhen(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseWhen(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1h", "+2d", "d", "1e9d", "soon", "NaNd", "Infd"} {
		if _, err := parseWhen(bad, now); err == nil {
			t.Errorf("parseWhen(%q) accepted", bad)
		}
	}
}

func TestTransmitFieldErrors(t *testing.T) {
	_, dir := fleetDir(t, 1)
	for stdin, field := range map[string]string{
		`{"spec": "*", "module": "test", "method": "ping", "timeout": 5}`:      "timeout",
		`{"spec": "*", "module": "test", "method": "ping", "timeout": "soon"}`: "timeout",
		`{"spec": "*", "module": "test", "method": "ping", "exclude": 3}`:      "exclude",
		`{"spec": "*", "module": "test", "method": "add", "args": {"a": 1}}`:   "args",
		`{"spec": "*", "module": "test", "method": "add", "args": [1, null]}`:  "args",
		`{"spec": "*", "module": "test", "method": "ping", "where": ["x"]}`:    "where",
		`{"spec": "*", "module": "test", "method": "ping", "forks": 3}`:        "forks",
		`{"spec": "*", "module": "test"}`:                                      "method",
		`{"spec": 7, "module": "test", "method": "ping"}`:                      "spec",
		`{"spec": "*", "module": "", "method": "ping"}`:                        "module",
	} {
		o := runFunc(t, stdin, "--dir", dir, "transmit").want(t, exitUsage)
		var got struct {
			Error struct {
				Kind, Field, Message string
				Exit                 int
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || got.Error.Field != field || got.Error.Exit != exitUsage ||
			!strings.Contains(got.Error.Message, `"`+field+`"`) {
			t.Errorf("%s: %q (%v), want field %q", stdin, o.stdout, err, field)
		}
	}
	o := runFunc(t, `{"spec": "*", "module": "test", "method": "add", "args": [1, 2], "timeout": "5s", "where": "", "exclude": []}`,
		"--dir", dir, "transmit").want(t, exitOK)
	if !strings.Contains(o.stdout, `"value": 3`) {
		t.Errorf("transmit: %s", o.stdout)
	}
}

func TestUsageHints(t *testing.T) {
	o := runFunc(t, "", "ping").want(t, exitUsage)
	if !strings.Contains(o.stderr, "missing target spec") {
		t.Errorf("func ping: %q", o.stderr)
	}
	o = runFunc(t, "", "--timeout", "5s", "run", "uname").want(t, exitUsage)
	if !strings.Contains(o.stderr, "missing target spec") {
		t.Errorf("func run uname: %q", o.stderr)
	}
	o = runFunc(t, "").want(t, exitUsage)
	if !strings.Contains(o.stderr, "Usage: func") || !strings.Contains(o.stderr, "<spec> run") {
		t.Errorf("bare func: %q", o.stderr)
	}
	empty := t.TempDir()
	o = runFunc(t, "", "--dir", empty, "*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stderr, "certmaster issue-overlord") || strings.Count(o.stderr, "\n") != 1 {
		t.Errorf("missing identity: %q", o.stderr)
	}
}

func TestDoc(t *testing.T) {
	_, dir := fleetDir(t, 2)
	o := runFunc(t, "", "--dir", dir, "*", "doc", "command").want(t, exitOK)
	for _, want := range []string{"---------------- m[1-2].test (2)\n", "command: ", "\ncommand.run(argv array, [options struct])\n",
		"Dangerous: allowed only by an ACL rule that names it exactly.", "Secret (redacted in audit logs): env, stdin.",
		"(and get_method_args, list_methods, module_description, module_version, which every module has)"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("doc command lacks %q:\n%s", want, o.stdout)
		}
	}
	o = runFunc(t, "", "--dir", dir, "m1*", "doc", "test.add").want(t, exitOK)
	if !strings.HasPrefix(o.stdout, "---------------- m1.test (1)\ntest.add(") || strings.Contains(o.stdout, "test.ping") {
		t.Errorf("doc test.add:\n%s", o.stdout)
	}
	o = runFunc(t, "", "--dir", dir, "m1*", "doc", "nosuch").want(t, exitFailed)
	if !strings.Contains(o.stdout, `no module "nosuch" on this minion`) {
		t.Errorf("doc of a missing module:\n%s", o.stdout)
	}
	o = runFunc(t, "", "--dir", dir, "m1*", "doc", "test.nope").want(t, exitFailed)
	if !strings.Contains(o.stdout, "no method test.nope; its methods: add, echo") {
		t.Errorf("doc of a missing method:\n%s", o.stdout)
	}
	o = runFunc(t, "", "--dir", dir, "--json", "m1*", "doc", "command.run").want(t, exitOK)
	var got map[string]struct {
		Value struct {
			Module  string                    `json:"module"`
			Methods map[string]map[string]any `json:"methods"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(o.stdout), &got); err != nil || got["m1.test"].Value.Module != "command" ||
		len(got["m1.test"].Value.Methods) != 1 || got["m1.test"].Value.Methods["run"]["args"] == nil {
		t.Errorf("doc --json: %v\n%s", err, o.stdout)
	}
	runFunc(t, "", "--dir", dir, "m1*", "doc", "a.b.c").want(t, exitUsage)
}
