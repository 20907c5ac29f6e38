package users

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func fixtureModule() *Module {
	return &Module{PasswdFile: "testdata/passwd", GroupFile: "testdata/group"}
}

func TestListUsersFixture(t *testing.T) {
	users, err := fixtureModule().ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{Name: "root", UID: 0, GID: 0, Gecos: "root", Home: "/root", Shell: "/bin/bash"},
		{Name: "daemon", UID: 1, GID: 1, Gecos: "daemon", Home: "/usr/sbin", Shell: "/usr/sbin/nologin"},
		{Name: "alice", UID: 1000, GID: 1000, Gecos: "Alice Liddell,Room 1,,", Home: "/home/alice", Shell: "/bin/bash"},
		{Name: "bob", UID: 1001, GID: 100, Home: "/home/bob"},
		{Name: "Debian-exim", UID: 101, GID: 104, Home: "/var/spool/exim4", Shell: "/usr/sbin/nologin"},
		{Name: "svc", UID: 999, GID: 999, Gecos: "crlf line", Home: "/srv", Shell: "/bin/false"},
	}
	if diff := cmp.Diff(want, users); diff != "" {
		t.Errorf("ListUsers (-want +got):\n%s", diff)
	}
}

func TestListGroupsFixture(t *testing.T) {
	groups, err := fixtureModule().ListGroups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Group{
		{Name: "root", GID: 0, Members: []string{}},
		{Name: "users", GID: 100, Members: []string{"bob"}},
		{Name: "alice", GID: 1000, Members: []string{}},
		{Name: "sudo", GID: 27, Members: []string{"alice", "bob"}},
		{Name: "docker", GID: 998, Members: []string{"alice"}},
		{Name: "svc", GID: 999, Members: []string{}},
	}
	if diff := cmp.Diff(want, groups); diff != "" {
		t.Errorf("ListGroups (-want +got):\n%s", diff)
	}
}

func TestLookups(t *testing.T) {
	m := fixtureModule()
	ctx := t.Context()
	for name, want := range map[string]bool{"alice": true, "Debian-exim": true, "carol": false} {
		if got, err := m.UserExists(ctx, name); err != nil || got != want {
			t.Errorf("UserExists(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	for name, want := range map[string]bool{"sudo": true, "wheel": false} {
		if got, err := m.GroupExists(ctx, name); err != nil || got != want {
			t.Errorf("GroupExists(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	info, err := m.Info(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	want := UserInfo{Name: "bob", UID: 1001, GID: 100, Home: "/home/bob", Group: "users", Groups: []string{"sudo", "users"}}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Errorf("Info(bob) (-want +got):\n%s", diff)
	}
	if _, err := m.Info(ctx, "carol"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Info(carol) = %v, want CodeNotFound", err)
	}
	inv, err := m.Inventory(ctx)
	if err != nil || len(inv.Users) != 6 || len(inv.Groups) != 6 {
		t.Errorf("Inventory() = %d users, %d groups, %v", len(inv.Users), len(inv.Groups), err)
	}
}

func TestRealDatabases(t *testing.T) {
	m := &Module{}
	info, err := m.Info(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	if info.UID != 0 || info.GID != 0 || info.Group != "root" {
		t.Errorf("Info(root) = %+v", info)
	}
	if ok, err := m.GroupExists(t.Context(), "root"); !ok || err != nil {
		t.Errorf("GroupExists(root) = %v, %v", ok, err)
	}
	if _, err := (&Module{PasswdFile: filepath.Join(t.TempDir(), "nope")}).ListUsers(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("ListUsers(missing file) = %v, want CodeUnavailable", err)
	}
}

// fakeUseradd stands in for useradd: it records its argv and appends the
// account to the fixture passwd file, as the real one would.
func fakeUseradd(t *testing.T, passwd string) (string, *modtest.ArgvLog) {
	t.Helper()
	return modtest.FakeBinary(t, "useradd",
		fmt.Sprintf("for last; do :; done\necho \"$last:x:1500:1500::/home/$last:/bin/sh\" >> %q", passwd))
}

func copyFixture(t *testing.T) *Module {
	t.Helper()
	passwd := filepath.Join(t.TempDir(), "passwd")
	b, err := os.ReadFile("testdata/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(passwd, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Module{PasswdFile: passwd, GroupFile: "testdata/group"}
}

func TestAddUserArgv(t *testing.T) {
	m := copyFixture(t)
	bin, argv := fakeUseradd(t, m.PasswdFile)
	m.UseraddPath = bin
	u, err := m.AddUser(t.Context(), "carol", AddOptions{UID: 1500, Group: "users", Groups: []string{"sudo", "docker"},
		Shell: "/bin/zsh", Home: "/srv/carol/", CreateHome: true, System: true, Comment: "-Carol, Room 2"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{bin, "--uid=1500", "--gid=users", "--groups=sudo,docker", "--shell=/bin/zsh",
		"--home-dir=/srv/carol", "--create-home", "--system", "--comment=-Carol, Room 2", "--", "carol"}
	if diff := cmp.Diff(want, argv.Last()); diff != "" {
		t.Errorf("useradd argv (-want +got):\n%s", diff)
	}
	if u.Name != "carol" || u.UID != 1500 {
		t.Errorf("AddUser returned %+v", u)
	}
	if _, err := m.AddUser(t.Context(), "dave", AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bin, "--no-create-home", "--", "dave"}, argv.Last()); diff != "" {
		t.Errorf("useradd argv with zero options (-want +got):\n%s", diff)
	}
	if _, err := m.AddUser(t.Context(), "alice", AddOptions{}); !errors.Is(err, gofunc.ErrConflict) {
		t.Errorf("AddUser(existing) = %v, want CodeConflict", err)
	}
}

func TestAddUserToolFailures(t *testing.T) {
	for exit, want := range map[int]error{9: gofunc.ErrConflict, 6: gofunc.ErrNotFound, 1: &gofunc.Fault{Code: gofunc.CodeModule}} {
		bin, _ := modtest.FakeTool(t, "useradd", "useradd: group 'nope' does not exist", exit)
		m := &Module{PasswdFile: "testdata/passwd", UseraddPath: bin}
		_, err := m.AddUser(t.Context(), "carol", AddOptions{Groups: []string{"nope"}})
		if !errors.Is(err, want) || !strings.Contains(err.Error(), "does not exist") {
			t.Errorf("useradd exiting %d: AddUser = %v, want %v with the tool's message", exit, err, want)
		}
	}
}

func TestDeleteUser(t *testing.T) {
	bin, argv := modtest.FakeTool(t, "userdel", "", 0)
	m := &Module{PasswdFile: "testdata/passwd", UserdelPath: bin}
	if err := m.DeleteUser(t.Context(), "alice", true); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bin, "--remove", "--", "alice"}, argv.Last()); diff != "" {
		t.Errorf("userdel argv (-want +got):\n%s", diff)
	}
	if err := m.DeleteUser(t.Context(), "bob", false); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{bin, "--", "bob"}, argv.Last()); diff != "" {
		t.Errorf("userdel argv (-want +got):\n%s", diff)
	}
	if err := m.DeleteUser(t.Context(), "root", false); !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("DeleteUser(root) = %v, want CodeDenied", err)
	}
	if err := m.DeleteUser(t.Context(), "carol", false); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("DeleteUser(missing) = %v, want CodeNotFound", err)
	}
}

func TestHostileArguments(t *testing.T) {
	bin, argv := modtest.FakeTool(t, "tool", "", 0)
	m := &Module{PasswdFile: "testdata/passwd", GroupFile: "testdata/group", UseraddPath: bin, UserdelPath: bin}
	ctx := t.Context()
	for _, name := range []string{"", "nginx; reboot", "-rf", "../../etc/shadow", "a\x00b", "Carol",
		"carol\n", strings.Repeat("a", 33), "9lives", "c:x"} {
		if _, err := m.AddUser(ctx, name, AddOptions{}); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("AddUser(%q) = %v, want CodeBadArgs", name, err)
		}
		if err := m.DeleteUser(ctx, name, true); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("DeleteUser(%q) = %v, want CodeBadArgs", name, err)
		}
	}
	for _, name := range []string{"", "-rf", "a:b", "a,b", "a\x00", "../../etc/shadow", strings.Repeat("a", 300)} {
		if _, err := m.UserExists(ctx, name); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("UserExists(%q) = %v, want CodeBadArgs", name, err)
		}
	}
	for _, opts := range []AddOptions{
		{UID: -1}, {UID: 1 << 40}, {Group: "-g0"}, {Groups: []string{"sudo,root"}}, {Groups: []string{"--help"}},
		{Shell: "bin/sh"}, {Shell: "/bin/sh\n"}, {Home: "home/x"}, {Comment: "a:b"}, {Comment: "a\nb"},
		{Comment: strings.Repeat("x", 300)}, {Home: "/" + strings.Repeat("a", 5000)},
	} {
		if _, err := m.AddUser(ctx, "carol", opts); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("AddUser(carol, %+v) = %v, want CodeBadArgs", opts, err)
		}
	}
	if got := argv.Last(); got != nil {
		t.Errorf("a refused call ran the tool: %q", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		parse    func(string) error
		want     error
	}{
		{"passwd fields", "root:x:0:0:root:/root\n", parsePasswdString, ErrMalformed},
		{"passwd uid", "root:x:zero:0:root:/root:/bin/sh\n", parsePasswdString, ErrMalformed},
		{"passwd negative gid", "root:x:0:-1:root:/root:/bin/sh\n", parsePasswdString, ErrMalformed},
		{"passwd uid overflow", "root:x:4294967296:0:root:/root:/bin/sh\n", parsePasswdString, ErrMalformed},
		{"passwd empty name", ":x:0:0:root:/root:/bin/sh\n", parsePasswdString, ErrMalformed},
		{"group fields", "root:x:0\n", parseGroupString, ErrMalformed},
		{"group gid", "root:x::\n", parseGroupString, ErrMalformed},
		{"line too long", "root:x:0:" + strings.Repeat("a,", MaxLineLen/2) + "\n", parseGroupString, bufio.ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse("# first line\n" + tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 2 || !errors.Is(err, tt.want) {
				t.Errorf("parse = %v, want a *ParseError on line 2 wrapping %v", err, tt.want)
			}
		})
	}
	if _, err := fixtureModule().ListUsers(t.Context()); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(bad, []byte("root:x:0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Module{PasswdFile: bad}).ListUsers(t.Context()); !errors.Is(err, &gofunc.Fault{Code: gofunc.CodeModule}) {
		t.Errorf("ListUsers(malformed) = %v, want CodeModule", err)
	}
}

func parsePasswdString(s string) error { _, err := ParsePasswd(strings.NewReader(s)); return err }
func parseGroupString(s string) error  { _, err := ParseGroup(strings.NewReader(s)); return err }

func FuzzParsePasswd(f *testing.F) {
	addSeeds(f, "testdata/passwd", "/etc/passwd")
	f.Fuzz(func(t *testing.T, in string) {
		users, err := ParsePasswd(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		modtest.RoundTrip(t, users, ParsePasswd, func(u User) (string, bool) {
			return fmt.Sprintf("%s:x:%d:%d:%s:%s:%s", u.Name, u.UID, u.GID, u.Gecos, u.Home, u.Shell), true
		})
	})
}

func FuzzParseGroup(f *testing.F) {
	addSeeds(f, "testdata/group", "/etc/group")
	f.Fuzz(func(t *testing.T, in string) {
		groups, err := ParseGroup(strings.NewReader(in))
		modtest.WantErrorAs[*ParseError](t, err)
		modtest.RoundTrip(t, groups, ParseGroup, func(g Group) (string, bool) {
			return fmt.Sprintf("%s:x:%d:%s", g.Name, g.GID, strings.Join(g.Members, ",")), true
		})
	})
}

func addSeeds(f *testing.F, files ...string) {
	modtest.AddSeeds(f, files...)
	f.Add("a:b:c:d:e:f:g\n")
	f.Add("x:x:1:1\r\r\n")
}

// The reviewer's case on this host's real databases.
func TestInventoryStable(t *testing.T) {
	inv := modtest.CheckStable(t, (&Module{}).Inventory)
	if !hasUser(inv.Users, "root") {
		t.Errorf("Inventory() users = %+v, want root among them", inv.Users)
	}
}

func hasUser(users []User, name string) bool {
	for _, u := range users {
		if u.Name == name {
			return true
		}
	}
	return false
}

// The same accounts and groups, written in another order with members
// in another order, give the same inventory, sorted by name.
func TestInventoryOrder(t *testing.T) {
	want, err := fixtureModule().Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	reversed := func(src, dst string, swapMembers bool) string {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		slices.Reverse(lines)
		for i, l := range lines {
			if swapMembers && strings.HasPrefix(l, "sudo:") {
				lines[i] = "sudo:x:27:bob,alice"
			}
		}
		path := filepath.Join(dir, dst)
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	m := &Module{PasswdFile: reversed("testdata/passwd", "passwd", false), GroupFile: reversed("testdata/group", "group", true)}
	got, err := m.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Inventory of reordered files (-original +reordered):\n%s", diff)
	}
	if !slices.IsSortedFunc(got.Users, func(a, b User) int { return strings.Compare(a.Name, b.Name) }) ||
		!slices.IsSortedFunc(got.Groups, func(a, b Group) int { return strings.Compare(a.Name, b.Name) }) {
		t.Errorf("Inventory is not sorted by name: %+v", got)
	}
}
