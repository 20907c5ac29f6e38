// Package users is the gofunc "users" module: it lists local accounts and
// groups from /etc/passwd and /etc/group, and adds and deletes accounts by
// running useradd(8) and userdel(8) with an argv (never a shell).
//
//	srv.Register("users", &users.Module{})
//
// users.add_user and users.delete_user are Dangerous. New account names
// must follow the portable POSIX rule ^[a-z_][a-z0-9_-]{0,31}$; uid 0
// can be neither requested nor deleted.
package users

import (
	"cmp"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults of Module's fields.
const (
	DefaultPasswdFile  = "/etc/passwd"
	DefaultGroupFile   = "/etc/group"
	DefaultUseraddPath = "/usr/sbin/useradd"
	DefaultUserdelPath = "/usr/sbin/userdel"
)

// maxID is the largest uid or gid add_user accepts; 2^32-1 is the
// kernel's "no id".
const maxID = 1<<32 - 2

// Module is the users module. Its exported fields are its configuration;
// the zero Module is ready to use. It is safe for concurrent use.
type Module struct {
	// PasswdFile and GroupFile are the account databases read; "" means
	// DefaultPasswdFile ("/etc/passwd") and DefaultGroupFile ("/etc/group").
	PasswdFile string
	GroupFile  string
	// UseraddPath and UserdelPath are the tools run to change accounts; ""
	// means DefaultUseraddPath ("/usr/sbin/useradd") and
	// DefaultUserdelPath ("/usr/sbin/userdel").
	UseraddPath string
	UserdelPath string
}

// UserInfo is an account with the names of its groups.
type UserInfo struct {
	Name  string `xmlrpc:"name"`
	UID   int64  `xmlrpc:"uid"`
	GID   int64  `xmlrpc:"gid"`
	Gecos string `xmlrpc:"gecos"`
	Home  string `xmlrpc:"home"`
	Shell string `xmlrpc:"shell"`
	// Group is the primary group's name ("" if no group has the gid).
	Group string `xmlrpc:"group"`
	// Groups are the supplementary groups' names, sorted.
	Groups []string `xmlrpc:"groups"`
}

// Inventory is every account and group.
type Inventory struct {
	Users  []User  `xmlrpc:"users"`
	Groups []Group `xmlrpc:"groups"`
}

// AddOptions are add_user's optional knobs; the zero value lets useradd
// choose everything.
type AddOptions struct {
	// UID is the new account's uid; 0 means the next free one (uid 0
	// itself cannot be requested).
	UID int64 `xmlrpc:"uid"`
	// Group is the primary group (name or gid); "" means useradd's
	// default (usually a new group named like the user).
	Group string `xmlrpc:"group"`
	// Groups are supplementary groups, which must exist.
	Groups []string `xmlrpc:"groups"`
	// Shell is the login shell, an absolute path; "" means useradd's default.
	Shell string `xmlrpc:"shell"`
	// Home is the home directory, an absolute path; "" means useradd's default.
	Home string `xmlrpc:"home"`
	// CreateHome creates the home directory (useradd -m); false passes -M.
	CreateHome bool `xmlrpc:"create_home"`
	// System creates a system account (useradd -r).
	System bool `xmlrpc:"system"`
	// Comment is the GECOS field (full name).
	Comment string `xmlrpc:"comment"`
}

// ListUsers returns the accounts of PasswdFile, in file order.
func (m *Module) ListUsers(ctx context.Context) ([]User, error) {
	return readDB(ctx, cmp.Or(m.PasswdFile, DefaultPasswdFile), ParsePasswd)
}

// ListGroups returns the groups of GroupFile, in file order.
func (m *Module) ListGroups(ctx context.Context) ([]Group, error) {
	return readDB(ctx, cmp.Or(m.GroupFile, DefaultGroupFile), ParseGroup)
}

// UserExists reports whether an account is called name.
func (m *Module) UserExists(ctx context.Context, name string) (bool, error) {
	if err := checkLookupName("name", name); err != nil {
		return false, err
	}
	users, err := m.ListUsers(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(users, func(u User) bool { return u.Name == name }), nil
}

// GroupExists reports whether a group is called name.
func (m *Module) GroupExists(ctx context.Context, name string) (bool, error) {
	if err := checkLookupName("name", name); err != nil {
		return false, err
	}
	groups, err := m.ListGroups(ctx)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(groups, func(g Group) bool { return g.Name == name }), nil
}

// Info returns the account called name and its groups, or a CodeNotFound
// fault.
func (m *Module) Info(ctx context.Context, name string) (UserInfo, error) {
	if err := checkLookupName("name", name); err != nil {
		return UserInfo{}, err
	}
	u, err := m.findUser(ctx, name)
	if err != nil {
		return UserInfo{}, err
	}
	groups, err := m.ListGroups(ctx)
	if err != nil {
		return UserInfo{}, err
	}
	info := UserInfo{Name: u.Name, UID: u.UID, GID: u.GID, Gecos: u.Gecos, Home: u.Home, Shell: u.Shell, Groups: []string{}}
	for _, g := range groups {
		if g.GID == u.GID && info.Group == "" {
			info.Group = g.Name
		}
		if slices.Contains(g.Members, name) {
			info.Groups = append(info.Groups, g.Name)
		}
	}
	slices.Sort(info.Groups)
	info.Groups = slices.Compact(info.Groups)
	return info, nil
}

// Inventory returns every account and group, sorted by name (accounts
// that share a name stay in file order) with each group's members
// sorted: a file rewritten in another order (pwck -s, a configuration
// manager) is no change.
func (m *Module) Inventory(ctx context.Context) (Inventory, error) {
	users, err := m.ListUsers(ctx)
	if err != nil {
		return Inventory{}, err
	}
	groups, err := m.ListGroups(ctx)
	if err != nil {
		return Inventory{}, err
	}
	slices.SortStableFunc(users, func(a, b User) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(groups, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	for _, g := range groups {
		slices.Sort(g.Members)
	}
	return Inventory{Users: users, Groups: groups}, nil
}

// AddUser creates the account name with useradd and returns it as
// PasswdFile then holds it.
func (m *Module) AddUser(ctx context.Context, name string, opts AddOptions) (User, error) {
	argv, err := addUserArgv(cmp.Or(m.UseraddPath, DefaultUseraddPath), name, opts)
	if err != nil {
		return User{}, err
	}
	if exists, err := m.UserExists(ctx, name); err != nil {
		return User{}, err
	} else if exists {
		return User{}, gofunc.Errorf(gofunc.CodeConflict, "user %q already exists", name)
	}
	if err := m.exec(ctx, argv, map[int]gofunc.Code{3: gofunc.CodeBadArgs, 4: gofunc.CodeConflict,
		6: gofunc.CodeNotFound, 9: gofunc.CodeConflict}); err != nil {
		return User{}, err
	}
	u, err := m.findUser(ctx, name)
	if err != nil {
		return User{}, gofunc.Errorf(gofunc.CodeModule, "useradd succeeded but %s: %v", cmp.Or(m.PasswdFile, DefaultPasswdFile), err)
	}
	return u, nil
}

// DeleteUser deletes the account name with userdel, and its home
// directory and mail spool when removeHome is set. An account with uid
// 0 is never deleted.
func (m *Module) DeleteUser(ctx context.Context, name string, removeHome bool) error {
	argv, err := deleteUserArgv(cmp.Or(m.UserdelPath, DefaultUserdelPath), name, removeHome)
	if err != nil {
		return err
	}
	u, err := m.findUser(ctx, name)
	if err != nil {
		return err
	}
	if u.UID == 0 {
		return gofunc.Errorf(gofunc.CodeDenied, "user %q has uid 0 and is never deleted", name)
	}
	return m.exec(ctx, argv, map[int]gofunc.Code{6: gofunc.CodeNotFound, 8: gofunc.CodeConflict})
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	name := gofunc.ArgDoc{Name: "name", Type: "string", Description: "account or group name"}
	return gofunc.ModuleDoc{
		Description: "Local accounts and groups: list, look up, add, delete.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"ListUsers":   {Description: "Every account: [{name, uid, gid, gecos, home, shell}]."},
			"ListGroups":  {Description: "Every group: [{name, gid, members}]."},
			"UserExists":  {Description: "Whether an account has this name.", Args: []gofunc.ArgDoc{name}},
			"GroupExists": {Description: "Whether a group has this name.", Args: []gofunc.ArgDoc{name}},
			"Info": {Description: "One account with its primary group name and supplementary groups.",
				Args: []gofunc.ArgDoc{name}},
			"Inventory": {Description: "Every account and group: {users, groups}."},
			"AddUser": {
				Description: "Create an account with useradd; returns it.",
				Dangerous:   true,
				Args: []gofunc.ArgDoc{
					{Name: "name", Type: "string", Description: "new account name, ^[a-z_][a-z0-9_-]{0,31}$"},
					{Name: "options", Type: "struct", Optional: true, Description: "{uid, group, groups, shell, home, " +
						"create_home, system, comment}; uid 0 means the next free uid"},
				},
			},
			"DeleteUser": {
				Description: "Delete an account with userdel (never uid 0).",
				Dangerous:   true,
				Args: []gofunc.ArgDoc{
					{Name: "name", Type: "string", Description: "account name, ^[a-z_][a-z0-9_-]{0,31}$"},
					{Name: "remove_home", Type: "boolean", Optional: true, Default: false,
						Description: "also remove the home directory and mail spool (userdel -r)"},
				},
			},
		},
	}
}

// addUserArgv validates name and opts and returns the useradd command.
// Values are passed as --option=value, so none can be taken for an option.
func addUserArgv(bin, name string, opts AddOptions) ([]string, error) {
	if err := checkNewName("name", name); err != nil {
		return nil, err
	}
	argv := []string{bin}
	if opts.UID < 0 || opts.UID > maxID {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "options.uid %d is out of range 1..%d", opts.UID, maxID)
	}
	if opts.UID > 0 {
		argv = append(argv, "--uid="+strconv.FormatInt(opts.UID, 10))
	}
	if opts.Group != "" {
		if err := checkLookupName("options.group", opts.Group); err != nil {
			return nil, err
		}
		argv = append(argv, "--gid="+opts.Group)
	}
	if len(opts.Groups) > 0 {
		for _, g := range opts.Groups {
			if err := checkLookupName("options.groups", g); err != nil {
				return nil, err
			}
		}
		argv = append(argv, "--groups="+strings.Join(opts.Groups, ","))
	}
	if opts.Shell != "" {
		if err := checkPath("options.shell", opts.Shell); err != nil {
			return nil, err
		}
		argv = append(argv, "--shell="+opts.Shell)
	}
	if opts.Home != "" {
		if err := checkPath("options.home", opts.Home); err != nil {
			return nil, err
		}
		argv = append(argv, "--home-dir="+filepath.Clean(opts.Home))
	}
	if opts.CreateHome {
		argv = append(argv, "--create-home")
	} else {
		argv = append(argv, "--no-create-home")
	}
	if opts.System {
		argv = append(argv, "--system")
	}
	if opts.Comment != "" {
		if err := checkField("options.comment", opts.Comment, 256); err != nil {
			return nil, err
		}
		argv = append(argv, "--comment="+opts.Comment)
	}
	return append(argv, "--", name), nil
}

func deleteUserArgv(bin, name string, removeHome bool) ([]string, error) {
	if err := checkNewName("name", name); err != nil {
		return nil, err
	}
	argv := []string{bin}
	if removeHome {
		argv = append(argv, "--remove")
	}
	return append(argv, "--", name), nil
}

func (m *Module) findUser(ctx context.Context, name string) (User, error) {
	users, err := m.ListUsers(ctx)
	if err != nil {
		return User{}, err
	}
	for _, u := range users {
		if u.Name == name {
			return u, nil
		}
	}
	return User{}, gofunc.Errorf(gofunc.CodeNotFound, "no user %q", name)
}

// exec runs argv; a non-zero exit becomes a fault whose code comes from
// codes (by exit status) or is CodeModule.
func (m *Module) exec(ctx context.Context, argv []string, codes map[int]gofunc.Code) error {
	res, err := procrun.Run(ctx, procrun.Spec{Argv: argv, Env: procrun.ToolEnv(), Tool: true})
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		code, ok := codes[res.ExitCode]
		if !ok {
			code = gofunc.CodeModule
		}
		return res.Fault(code, filepath.Base(argv[0]))
	}
	return nil
}

func readDB[T any](ctx context.Context, path string, parse func(r io.Reader) ([]T, error)) ([]T, error) {
	if ctx.Err() != nil {
		return nil, procrun.ContextFault(ctx, "users")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeUnavailable, "users: %v", err)
	}
	defer f.Close()
	entries, err := parse(f)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeModule, "%s: %v", path, err)
	}
	if entries == nil {
		entries = []T{}
	}
	return entries, nil
}

var newNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// checkNewName applies the portable POSIX rule to a name add_user or
// delete_user will hand to a tool.
func checkNewName(arg, name string) error {
	if !newNameRE.MatchString(name) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s %q must match %s", arg, name, newNameRE)
	}
	return nil
}

// checkLookupName accepts any name an existing account or group may
// have (older systems allow upper case, dots, '$'), but nothing that
// could be read as an option, a list or a field separator.
func checkLookupName(arg, name string) error {
	switch {
	case name == "" || len(name) > 256:
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s must be 1 to 256 bytes", arg)
	case name[0] == '-' || name[0] == '+':
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s %q starts with %q", arg, name, name[0])
	case strings.ContainsAny(name, ":,/ \t"):
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s %q contains ':', ',', '/' or a space", arg, name)
	}
	return checkField(arg, name, 256)
}

// checkPath accepts a clean-able absolute path that can sit in a passwd field.
func checkPath(arg, path string) error {
	if !filepath.IsAbs(path) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s %q is not an absolute path", arg, path)
	}
	return checkField(arg, path, 4096)
}

// checkField accepts valid UTF-8 without control characters or ':' (the
// passwd field separator), at most limit bytes.
func checkField(arg, s string, limit int) error {
	if len(s) > limit {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s is longer than %d bytes", arg, limit)
	}
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f || r == ':' }) {
		return gofunc.Errorf(gofunc.CodeBadArgs, "%s %q contains ':', control characters or invalid UTF-8", arg, s)
	}
	return nil
}
