package minion_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/minion"
)

type minionServer = minion.Server

func mustRegister(t testing.TB, s *minion.Server, name string, v any) {
	t.Helper()
	if err := s.Register(name, v); err != nil {
		t.Fatal(err)
	}
}

// power has a dangerous method, as reboot and command.shell are.
type power struct{ reboots int }

func (p *power) Reboot() bool   { p.reboots++; return true }
func (p *power) Status() string { return "up" }
func (p *power) Doc() gofunc.ModuleDoc {
	return gofunc.ModuleDoc{Methods: map[string]gofunc.MethodDoc{"Reboot": {Dangerous: true}}}
}

func peer(name string, role gofunc.Role) gofunc.Peer { return gofunc.Peer{Name: name, Role: role} }

func TestACLAllows(t *testing.T) {
	acl, err := minion.ParseACL("ops.acl", strings.NewReader(`
# admins may do anything that is not dangerous, and reboot
admin-*@overlord = *, power.reboot
monitor          = test.*, system.*, command.exists
!intern-*        = command.shell, power.*
intern-*@overlord = *
web*@minion      = test.ping
ops@overlord     = command.*
prom@monitor     = system.*
probe@*          = test.ping
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		peer      gofunc.Peer
		method    string
		dangerous bool
		want      bool
		why       string
	}{
		{peer("admin-ann", gofunc.RoleOverlord), "command.run", false, true, ""},
		{peer("ADMIN-Ann", gofunc.RoleOverlord), "Command.Run", false, true, ""},
		{peer("admin-ann", gofunc.RoleOverlord), "power.reboot", true, true, ""},
		{peer("admin-ann", gofunc.RoleOverlord), "command.shell", true, false, "dangerous"},
		{peer("admin-ann", gofunc.RoleMinion), "command.run", false, false, "no rule grants it"},
		{peer("monitor", gofunc.RoleOverlord), "test.ping", false, true, ""},
		// A rule without a role grants to overlords only (issue 11 item 4).
		{peer("monitor", gofunc.RoleMinion), "system.list_modules", false, false, "no rule grants it"},
		{peer("monitor", gofunc.RoleViewer), "test.ping", false, false, "no rule grants it"},
		{peer("prom", gofunc.RoleMonitor), "system.list_modules", false, true, ""},
		{peer("prom", gofunc.RoleOverlord), "system.list_modules", false, false, "no rule grants it"},
		{peer("probe", gofunc.RoleBroker), "test.ping", false, true, ""},
		{peer("probe", gofunc.RoleViewer), "test.ping", false, true, ""},
		// A deny rule without a role covers every role.
		{peer("intern-bob", gofunc.RoleMinion), "power.status", false, false, "ops.acl:5"},
		{peer("monitor", gofunc.RoleOverlord), "command.exists", false, true, ""},
		{peer("monitor", gofunc.RoleOverlord), "command.run", false, false, "no rule grants it"},
		{peer("intern-bob", gofunc.RoleOverlord), "test.ping", false, true, ""},
		{peer("intern-bob", gofunc.RoleOverlord), "power.status", false, false, "ops.acl:5"},
		{peer("intern-bob", gofunc.RoleOverlord), "command.shell", true, false, "ops.acl:5"},
		{peer("web1", gofunc.RoleMinion), "test.ping", false, true, ""},
		{peer("web1", gofunc.RoleMinion), "test.echo", false, false, "no rule grants it"},
		{peer("web1", gofunc.RoleOverlord), "test.ping", false, false, "no rule grants it"},
		{peer("ops", gofunc.RoleOverlord), "command.run", false, true, ""},
		{peer("ops", gofunc.RoleOverlord), "command.shell", true, false, "needs a rule naming it exactly"},
		{peer("nobody", gofunc.RoleOverlord), "test.ping", false, false, "no rule grants it"},
	}
	for _, c := range cases {
		got, why := acl.Check(c.peer, c.method, c.dangerous)
		if got != c.want || !strings.Contains(why, c.why) {
			t.Errorf("Check(%s@%s, %s, dangerous=%v) = %v %q, want %v %q", c.peer.Name, c.peer.Role, c.method, c.dangerous, got, why, c.want, c.why)
		}
		if acl.Allows(c.peer, c.method, c.dangerous) != c.want {
			t.Errorf("Allows disagrees with Check for %+v %s", c.peer, c.method)
		}
	}
}

func TestDefaultACL(t *testing.T) {
	cases := []struct {
		peer      gofunc.Peer
		method    string
		dangerous bool
		want      bool
	}{
		{peer("admin", gofunc.RoleOverlord), "command.run", false, true},
		{peer("admin", gofunc.RoleOverlord), "command.shell", true, false},
		{peer("m2", gofunc.RoleMinion), "test.ping", false, false},
		{peer("cm", gofunc.RoleCertmaster), "test.ping", false, false},
	}
	for _, r := range gofunc.Roles() {
		if r != gofunc.RoleOverlord {
			cases = append(cases, struct {
				peer      gofunc.Peer
				method    string
				dangerous bool
				want      bool
			}{peer("admin", r), "test.ping", false, false})
		}
	}
	for _, c := range cases {
		if got := minion.DefaultACL.Allows(c.peer, c.method, c.dangerous); got != c.want {
			t.Errorf("DefaultACL.Allows(%+v, %s) = %v", c.peer, c.method, got)
		}
	}
}

func TestParseACLErrors(t *testing.T) {
	cases := map[string]string{
		"no equals":      "admin *",
		"unknown role":   "admin@root = *",
		"empty role":     "admin@ = *",
		"empty identity": " = *",
		"empty method":   "admin = test.ping, ",
		"space":          "admin = test ping",
		"non-ascii":      "admïn = *",
		"double bang":    "!!admin = *",
		"double at":      "a@overlord@x = *",
		"too long line":  "admin = " + strings.Repeat("x", 70<<10),
		"too big":        strings.Repeat("# padding padding padding\n", (minion.MaxACLBytes/26)+1),
	}
	for name, text := range cases {
		_, err := minion.ParseACL("x.acl", strings.NewReader(text))
		if !errors.Is(err, minion.ErrACLSyntax) {
			t.Errorf("%s: ParseACL = %v, want ErrACLSyntax", name, err)
		} else if !strings.HasPrefix(err.Error(), "x.acl") {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	_, err := minion.ParseACL("x.acl", strings.NewReader("a = *\nb = *\nbad line\n"))
	if err == nil || !strings.Contains(err.Error(), "x.acl:3") {
		t.Errorf("error %v does not name line 3", err)
	}
}

func TestACLStringRoundTrip(t *testing.T) {
	src := "!intern-*@overlord = command.shell, power.*\nweb[0-9]@minion = test.ping\nprobe@* = test.ping\n"
	acl, err := minion.ParseACL("a.acl", strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	if acl.String() != src {
		t.Errorf("String() =\n%s\nwant\n%s", acl.String(), src)
	}
	// Rules without a role print with the role they are applied with.
	implicit, err := minion.ParseACL("b.acl", strings.NewReader("alice = *\n!intern-* = command.*\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "alice@overlord = *\n!intern-*@* = command.*\n"; implicit.String() != want {
		t.Errorf("String() of role-less rules =\n%s\nwant\n%s", implicit.String(), want)
	}
	if err := acl.Validate(); err != nil {
		t.Errorf("Validate of a parsed ACL: %v", err)
	}
}

func TestNewACLValidates(t *testing.T) {
	good := minion.Rule{Identity: "ops-*", Role: gofunc.RoleOverlord, Methods: []string{"service.*"}}
	if _, err := minion.NewACL(good); err != nil {
		t.Fatalf("NewACL(good) = %v", err)
	}
	bad := []minion.Rule{
		{Identity: "", Methods: []string{"*"}},
		{Identity: "a b", Methods: []string{"*"}},
		{Identity: "a@b", Methods: []string{"*"}},
		{Identity: "!a", Methods: []string{"*"}},
		{Identity: "a", Role: "root", Methods: []string{"*"}},
		{Identity: "a"},
		{Identity: "a", Methods: []string{"x,y"}},
		{Identity: "a", Methods: []string{""}},
	}
	for _, r := range bad {
		if _, err := minion.NewACL(good, r); !errors.Is(err, minion.ErrACLSyntax) {
			t.Errorf("NewACL(%+v) = %v, want ErrACLSyntax", r, err)
		}
	}
}

func TestLoadACLDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("20-ops.acl", "ops = service.*\n")
	write("10-admin.acl", "admin@overlord = *\n")
	write("notes.txt", "this = is not an acl\n")
	acl, err := minion.LoadACLDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []minion.Rule{
		{Identity: "admin", Role: gofunc.RoleOverlord, Methods: []string{"*"}, Source: "10-admin.acl:1"},
		{Identity: "ops", Role: gofunc.RoleOverlord, Methods: []string{"service.*"}, Source: "20-ops.acl:1"},
	}
	if diff := cmp.Diff(want, acl.Rules, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("LoadACLDir (-want +got):\n%s", diff)
	}
	write("30-bad.acl", "broken\n")
	if _, err := minion.LoadACLDir(dir); !errors.Is(err, minion.ErrACLSyntax) {
		t.Errorf("LoadACLDir with a bad file = %v", err)
	}
	if _, err := minion.LoadACLDir(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadACLDir(missing) = %v, want ErrNotExist", err)
	}
	empty := t.TempDir()
	acl, err = minion.LoadACLDir(empty)
	if err != nil || acl.Allows(peer("admin", gofunc.RoleOverlord), "test.ping", false) {
		t.Errorf("an empty ACL dir must allow nothing: %v %v", acl, err)
	}
}

// Through a real minion: a denial is a CodeDenied fault naming the rule,
// it is audited, the method does not run, and SetACL changes the rules
// for the next call.
func TestDenialsAreFaultsAuditedAndReloadable(t *testing.T) {
	pw := &power{}
	acl, err := minion.ParseACL("ops.acl", strings.NewReader("admin@overlord = *\n!admin = power.status\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := start(t, func(s *minion.Server) {
		mustRegister(t, s, "power", pw)
		s.ACL = acl
	})
	c := e.client(gofunc.RoleOverlord, "admin")
	_, err = e.call(c, "power.status")
	wantFault(t, "power.status", err, gofunc.CodeDenied, "admin", "power.status", "ops.acl:2")
	_, err = e.call(c, "power.reboot")
	wantFault(t, "power.reboot", err, gofunc.CodeDenied, "dangerous")
	if pw.reboots != 0 {
		t.Fatalf("a denied reboot ran")
	}
	recs := e.records()
	if len(recs) != 2 || recs[0].Kind != "call.denied" || recs[1].Kind != "call.denied" ||
		recs[0].Caller != "admin" || recs[0].Method != "power.status" || recs[0].Code != int(gofunc.CodeDenied) {
		t.Fatalf("audit records = %+v, want two denials", recs)
	}

	next, err := minion.ParseACL("new.acl", strings.NewReader("admin@overlord = *, power.reboot\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.srv.SetACL(next)
	if got, err := e.call(c, "power.reboot"); err != nil || got != true || pw.reboots != 1 {
		t.Fatalf("after SetACL, power.reboot = %v, %v (reboots %d)", got, err, pw.reboots)
	}
	if got, err := e.call(c, "power.status"); err != nil || got != "up" {
		t.Fatalf("after SetACL, power.status = %v, %v", got, err)
	}
	if e.srv.CurrentACL() != next {
		t.Fatal("CurrentACL is not the ACL set")
	}
	if st := e.srv.Stats(); st.Denied != 2 || st.Calls != 2 {
		t.Errorf("Stats = %+v, want 2 denied and 2 calls", st)
	}
}

func FuzzParseACL(f *testing.F) {
	for _, seed := range []string{
		"admin-*@overlord = *\nmonitor = test.*, system.*\n!intern-* = command.shell\n",
		"# comment\n\n  web[0-9]@minion = test.ping  \n",
		"a = b = c\n",
		"!a@certmaster=x,y,z",
		"x@ = y",
		"\r\n=\r\n",
		"\xff = *",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acl, err := minion.ParseACL("f.acl", strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, minion.ErrACLSyntax) {
				t.Fatalf("ParseACL error %v does not wrap ErrACLSyntax", err)
			}
			return
		}
		if err := acl.Validate(); err != nil {
			t.Fatalf("parsed ACL does not validate: %v\n%q", err, data)
		}
		again, err := minion.ParseACL("f.acl", strings.NewReader(acl.String()))
		if err != nil {
			t.Fatalf("String() of a parsed ACL does not parse: %v\n%q", err, acl.String())
		}
		if diff := cmp.Diff(acl.Rules, again.Rules, cmpopts.IgnoreFields(minion.Rule{}, "Source"), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip changed the rules (-first +second):\n%s", diff)
		}
		for _, r := range acl.Rules {
			// Matching must never panic, whatever the patterns.
			acl.Allows(peer(r.Identity, gofunc.RoleOverlord), strings.Join(r.Methods, "."), true)
		}
	})
}
