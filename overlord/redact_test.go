package overlord_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/modules/command"
	"github.com/gofunc/gofunc/overlord"
)

// openTrail opens an overlord audit log in a temporary directory.
func openTrail(t *testing.T) (*audit.Log, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "overlord-audit.log")
	trail, err := audit.Open(path, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	return trail, path
}

// assertNotInFile fails if any of leaks appears in the file.
func assertNotInFile(t *testing.T, path string, leaks ...string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range leaks {
		if strings.Contains(string(raw), leak) {
			t.Errorf("%s holds the secret %q", filepath.Base(path), leak)
		}
	}
}

// minionStart returns the newest call.start record of method in a
// minion's audit log.
func minionStart(t *testing.T, m *fleettest.Minion, method string) audit.Record {
	t.Helper()
	var last audit.Record
	err := audit.Query([]string{m.AuditPath}, audit.Filter{Kind: audit.KindCallStart, Method: method}, func(r audit.Record) error {
		last = r
		return nil
	})
	if err != nil || last.Method == "" {
		t.Fatalf("no %s call.start record in %s: %v", method, m.AuditPath, err)
	}
	return last
}

// command.run's env and stdin reach the command but never the
// overlord's audit log; the args digest is the minion's, which does not
// depend on the secrets, so it cannot confirm a guess of them.
func TestOverlordAuditRedactsCommandSecrets(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	trail, path := openTrail(t)
	c := f.Client(overlord.WithAudit(trail))
	argv := []string{"sh", "-c", `read line; printf '%s %s' "$API_TOKEN" "$line"`}
	run := func(token, stdin string, opts any) audit.Record {
		t.Helper()
		if opts == nil {
			opts = map[string]any{"env": map[string]any{"API_TOKEN": token}, "stdin": stdin + "\n", "timeout": "20s"}
		}
		res, err := c.Targets("*").Call(t.Context(), "command", "run", argv, opts)
		if err != nil {
			t.Fatal(err)
		}
		var out struct{ Stdout string }
		if err := res["m1.test"].Decode(&out); err != nil || out.Stdout != token+" "+stdin {
			t.Fatalf("command.run stdout = %q (%v): the secrets did not reach the command", out.Stdout, err)
		}
		rec, _ := lastRecord(t, path, audit.KindOverlordCall)
		return rec
	}
	first := run("tok-Hunter2-env", "pw-Hunter2-stdin", nil)
	second := run("tok-Other-env", "pw-Other-stdin", nil)
	// A Go struct is redacted by its wire member names.
	third := run("tok-Struct-env", "pw-Struct-stdin", command.RunOptions{Env: map[string]string{"API_TOKEN": "tok-Struct-env"},
		Stdin: "pw-Struct-stdin\n", Timeout: 20 * time.Second})
	assertNotInFile(t, path, "Hunter2", "Other-", "Struct-")

	for _, rec := range []audit.Record{first, third} {
		opts, _ := rec.Args[1].(map[string]any)
		if len(rec.Args) != 2 || opts["env"] != audit.Redacted || opts["stdin"] != audit.Redacted {
			t.Errorf("overlord record args = %#v, want env and stdin %q", rec.Args, audit.Redacted)
		}
		if a, _ := rec.Args[0].([]any); len(a) != 3 || a[2] != argv[2] {
			t.Errorf("overlord record argv = %#v, want it readable", rec.Args[0])
		}
		if rec.Details["arg_docs"] != "builtin" {
			t.Errorf("arg_docs = %q, want builtin", rec.Details["arg_docs"])
		}
	}
	if first.Args[1].(map[string]any)["timeout"] != "20s" {
		t.Errorf("timeout = %v, want it readable", first.Args[1])
	}
	if first.ArgsDigest != second.ArgsDigest {
		t.Errorf("the args digest changes with the secrets (%s, %s): it could confirm a guess", first.ArgsDigest, second.ArgsDigest)
	}
	// The overlord's digest is the one the minion recorded for the
	// same call: the two logs can be matched record to record.
	if m := minionStart(t, f.Minions()[0], "command.run"); m.ArgsDigest != third.ArgsDigest {
		t.Errorf("minion digest %s, overlord digest %s: want the same", m.ArgsDigest, third.ArgsDigest)
	}
}

// vault is a custom module: the overlord learns from get_method_args
// that its password is secret.
type vault struct{}

func (vault) Login(user, password string) string { return "welcome " + user }

func (vault) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Version: "1", Methods: map[string]gofunc.MethodDoc{
		"Login": {Args: []gofunc.ArgDoc{{Name: "user"}, {Name: "password", Secret: true}}},
	}}
}

// liarVault has vault's methods but documents no secret.
type liarVault struct{}

func (liarVault) Login(user, password string) string { return "welcome " + user }

// liarCommand poses as the built-in command module and says nothing of
// secrets.
type liarCommand struct{}

func (liarCommand) Run(argv []string, options map[string]any) string { return "ran" }

// The overlord redacts a custom module's secret arguments as its
// minions document them; a minion lying about its docs cannot lower
// what an honest target asks for, nor the built-in table.
func TestOverlordAuditRedactsByMinionDocs(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2, NoBuiltins: true,
		Modules: func(name string, srv *minion.Server) error {
			if name == "m1.test" {
				return srv.Register("vault", vault{})
			}
			if err := srv.Register("vault", liarVault{}); err != nil {
				return err
			}
			return srv.Register("command", liarCommand{})
		}})
	trail, path := openTrail(t)
	c := f.Client(overlord.WithAudit(trail))

	if _, err := c.Targets("*").Call(t.Context(), "vault", "login", "alice", "pw-Hunter2-both"); err != nil {
		t.Fatal(err)
	}
	rec, _ := lastRecord(t, path, audit.KindOverlordCall)
	if len(rec.Args) != 2 || rec.Args[0] != "alice" || rec.Args[1] != audit.Redacted {
		t.Errorf("vault.login on both: args = %#v, want the password redacted", rec.Args)
	}
	if rec.Details["arg_docs"] != "get_method_args of 2 of 2 hosts" {
		t.Errorf("arg_docs = %q", rec.Details["arg_docs"])
	}
	if m := minionStart(t, f.Minions()[0], "vault.login"); m.ArgsDigest != rec.ArgsDigest {
		t.Errorf("honest minion digest %s, overlord digest %s: want the same", m.ArgsDigest, rec.ArgsDigest)
	}
	// Cached: a second call asks no minion again.
	if _, err := c.Targets("m1.test").Call(t.Context(), "vault", "login", "bob", "pw-Hunter2-cached"); err != nil {
		t.Fatal(err)
	}
	if n := countCalls(t, f.Minions()[0], "vault.get_method_args"); n != 1 {
		t.Errorf("m1 answered get_method_args %d times, want once (cached)", n)
	}

	// The liar poses as the built-in command module: the built-in table
	// still redacts, and the liar is not even asked.
	opts := map[string]any{"env": map[string]any{"TOKEN": "tok-Hunter2-liar"}, "stdin": "pw-Hunter2-liar"}
	if _, err := c.Targets("m2.test").Call(t.Context(), "command", "run", []string{"id"}, opts); err != nil {
		t.Fatal(err)
	}
	rec, _ = lastRecord(t, path, audit.KindOverlordCall)
	if o, _ := rec.Args[1].(map[string]any); o["env"] != audit.Redacted || o["stdin"] != audit.Redacted {
		t.Errorf("command.run on the liar: args = %#v", rec.Args)
	}
	assertNotInFile(t, path, "Hunter2")
}

// When no target tells the overlord which arguments are secret (here
// the ACL lets the caller call vault.login but not get_method_args),
// every argument is redacted.
func TestOverlordAuditRedactsAllWithoutDocs(t *testing.T) {
	t.Parallel()
	acl, err := minion.ParseACL("test", strings.NewReader("admin@overlord = vault.login\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := fleettest.Start(t, fleettest.Config{Minions: 1, NoBuiltins: true, ACL: acl,
		Modules: func(_ string, srv *minion.Server) error { return srv.Register("vault", vault{}) }})
	trail, path := openTrail(t)
	c := f.Client(overlord.WithAudit(trail))
	for range 3 {
		if _, err := c.Targets("*").Call(t.Context(), "vault", "login", "alice", "pw-Hunter2"); err != nil {
			t.Fatal(err)
		}
		rec, _ := lastRecord(t, path, audit.KindOverlordCall)
		if len(rec.Args) != 2 || rec.Args[0] != audit.Redacted || rec.Args[1] != audit.Redacted {
			t.Errorf("args = %#v, want both redacted", rec.Args)
		}
		if !strings.HasPrefix(rec.Details["arg_docs"], "unknown") {
			t.Errorf("arg_docs = %q, want unknown", rec.Details["arg_docs"])
		}
	}
	assertNotInFile(t, path, "Hunter2")
	// The refusal is remembered for a while: the minion was asked once,
	// not before every call.
	n := 0
	err = audit.Query([]string{f.Minions()[0].AuditPath}, audit.Filter{Kind: audit.KindCallDenied, Method: "vault.get_method_args"}, func(audit.Record) error {
		n++
		return nil
	})
	if err != nil || n != 1 {
		t.Errorf("get_method_args asked %d times (%v), want once", n, err)
	}
}

// countCalls counts the call.start records of method in a minion's log.
func countCalls(t *testing.T, m *fleettest.Minion, method string) int {
	t.Helper()
	n := 0
	err := audit.Query([]string{m.AuditPath}, audit.Filter{Kind: audit.KindCallStart, Method: method}, func(audit.Record) error {
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Credentials that plugins and mount options carry (check_http -a
// user:pass, cifs password=) stay out of both audit logs, whatever
// becomes of the call on the minion.
func TestOverlordAuditRedactsPluginAndMountCredentials(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 1})
	trail, path := openTrail(t)
	c := f.Client(overlord.WithAudit(trail))
	calls := []struct {
		module, method string
		args           []any
	}{
		{"nagios", "run_check", []any{"check_http", []string{"-H", "127.0.0.1", "-a", "admin:Hunter2-nagios"}}},
		{"nagios_check", "run", []any{"check_http -H 127.0.0.1 -a admin:Hunter2-funccheck"}},
		{"mount", "mount", []any{"//127.0.0.1/share", "/mnt/x", "cifs", "username=u,password=Hunter2-mount"}},
	}
	for _, call := range calls {
		// The outcome does not matter here (no such plugin, a refused
		// mount): only what the logs keep.
		_, _ = c.Targets("*").Call(t.Context(), call.module, call.method, call.args...)
		rec, _ := lastRecord(t, path, audit.KindOverlordCall)
		if rec.Method != call.module+"."+call.method {
			t.Fatalf("last overlord record is %s, want %s.%s", rec.Method, call.module, call.method)
		}
	}
	assertNotInFile(t, path, "Hunter2")
	assertNotInFile(t, f.Minions()[0].AuditPath, "Hunter2")
}
