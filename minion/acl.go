package minion

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/glob"
)

// Rule grants (or, with Deny, forbids) methods to identities.
type Rule struct {
	// Identity is a case-insensitive glob over the caller's certificate
	// name; "*" is everyone.
	Identity string
	// Role limits the rule to certificates of one role; "*" is every
	// role. Empty means the overlord role for a grant and every role for
	// a deny rule: a rule written without a role never grants anything
	// to a minion, broker or dashboard certificate that happens to share
	// a name with an overlord, while a deny rule still covers them all.
	// ParseACL writes the effective role into every rule it reads.
	Role gofunc.Role
	// Methods are case-insensitive globs over "module.method" names.
	// An async call, async.module.method, is judged as module.method.
	Methods []string
	// Deny makes the rule forbid what it matches. A matching deny rule
	// wins over every grant.
	Deny bool
	// Source says where the rule came from ("ops.acl:3"), for messages.
	Source string
}

// String formats the rule in the acl file syntax (see ParseACL).
func (r Rule) String() string {
	var b strings.Builder
	if r.Deny {
		b.WriteByte('!')
	}
	b.WriteString(r.Identity)
	if r.Role != "" {
		b.WriteString("@" + string(r.Role))
	}
	b.WriteString(" = ")
	b.WriteString(strings.Join(r.Methods, ", "))
	return b.String()
}

// Validate reports a rule that ParseACL would refuse: an empty pattern,
// a pattern with spaces, commas or non-ASCII characters, an unknown role
// or no methods.
func (r Rule) Validate() error {
	if err := checkPattern(r.Identity); err != nil {
		return fmt.Errorf("%w: identity: %v", ErrACLSyntax, err)
	}
	if err := checkIdentity(r.Identity); err != nil {
		return fmt.Errorf("%w: %v", ErrACLSyntax, err)
	}
	if r.Role != "" && r.Role != AnyRole && !r.Role.Valid() {
		return fmt.Errorf("%w: unknown role %q", ErrACLSyntax, r.Role)
	}
	if len(r.Methods) == 0 {
		return fmt.Errorf("%w: rule names no methods", ErrACLSyntax)
	}
	for _, m := range r.Methods {
		if err := checkPattern(m); err != nil {
			return fmt.Errorf("%w: method: %v", ErrACLSyntax, err)
		}
		if strings.Contains(m, ",") {
			return fmt.Errorf("%w: method pattern %q holds a comma", ErrACLSyntax, m)
		}
	}
	return nil
}

// ACL is an ordered set of rules. A call is allowed when no deny rule
// matches it and at least one grant does. A method marked Dangerous
// (reboot, command.shell) is granted only by a rule that names it
// exactly: a glob such as "*" or "command.*" does not cover it. A deny
// glob does cover it.
type ACL struct {
	Rules []Rule
}

// DefaultACL lets overlord certificates call every method that is not
// dangerous, monitor certificates read the event journal
// (events.since), and no one else (minions, dashboard users...) call
// anything. It is what a Server with a nil ACL uses.
var DefaultACL = &ACL{Rules: []Rule{
	{Identity: "*", Role: gofunc.RoleOverlord, Methods: []string{"*"}, Source: "default"},
	{Identity: "*", Role: gofunc.RoleMonitor, Methods: []string{"events.since"}, Source: "default"},
}}

// NewACL returns an ACL of rules after checking each with Rule.Validate.
func NewACL(rules ...Rule) (*ACL, error) {
	a := &ACL{Rules: rules}
	if err := a.Validate(); err != nil {
		return nil, err
	}
	return a, nil
}

// Validate checks every rule (see Rule.Validate).
func (a *ACL) Validate() error {
	for i, r := range a.Rules {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("rule %d (%s): %w", i+1, r.Source, err)
		}
	}
	return nil
}

// String formats the ACL in the acl file syntax, one rule a line.
func (a *ACL) String() string {
	var b strings.Builder
	for _, r := range a.Rules {
		b.WriteString(r.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Allows reports whether p may call method.
func (a *ACL) Allows(p gofunc.Peer, method string, dangerous bool) bool {
	ok, _ := a.Check(p, method, dangerous)
	return ok
}

// Check reports whether p may call method and, when it may not, why:
// the deny rule that matched, or that no rule grants it. The reason
// goes into the denial fault and the audit record.
func (a *ACL) Check(p gofunc.Peer, method string, dangerous bool) (allowed bool, reason string) {
	var grant, globOnly *Rule
	for i := range a.Rules {
		r := &a.Rules[i]
		if !r.matchesPeer(p) {
			continue
		}
		exact, any := r.matchesMethod(method)
		switch {
		case r.Deny && any:
			return false, "denied by rule " + r.where()
		case r.Deny:
		case exact || (any && !dangerous):
			if grant == nil {
				grant = r
			}
		case any:
			globOnly = r
		}
	}
	switch {
	case grant != nil:
		return true, ""
	case globOnly != nil:
		return false, fmt.Sprintf("%s is dangerous: it needs a rule naming it exactly, not a glob (rule %s)", method, globOnly.where())
	}
	return false, "no rule grants it"
}

func (r *Rule) where() string {
	if r.Source != "" {
		return r.Source
	}
	return strings.TrimSpace(r.String())
}

// AnyRole in Rule.Role (written "@*") makes a rule apply to every role.
const AnyRole gofunc.Role = "*"

// role is the rule's effective role (see Rule.Role).
func (r *Rule) role() gofunc.Role {
	switch {
	case r.Role != "":
		return r.Role
	case r.Deny:
		return AnyRole
	}
	return gofunc.RoleOverlord
}

func (r *Rule) matchesPeer(p gofunc.Peer) bool {
	if role := r.role(); role != AnyRole && role != p.Role {
		return false
	}
	return glob.Match(r.Identity, p.Name)
}

// matchesMethod reports whether a pattern names method exactly, and
// whether any pattern matches it at all.
func (r *Rule) matchesMethod(method string) (exact, any bool) {
	for _, pat := range r.Methods {
		if strings.EqualFold(pat, method) {
			return true, true
		}
		if glob.Match(pat, method) {
			any = true
		}
	}
	return false, any
}

// ErrACLSyntax is wrapped by every ACL parse and validation error.
var ErrACLSyntax = errors.New("acl syntax error")

// MaxACLBytes bounds one acl file.
const MaxACLBytes = 1 << 20

// ParseACL reads rules in the acl file format, one rule a line:
//
//	# comment
//	admin-*@overlord = *
//	monitor@overlord = test.*, system.*, command.exists
//	prom@monitor     = metrics.*
//	!intern-*        = command.shell, reboot.*
//
// The left side is an identity glob, optionally "@role" (any role the CA
// issues, or "*" for every role); a leading "!" makes the rule a deny
// rule. Without "@role" a grant is for overlord certificates only and a
// deny rule is for every role (see Rule.Role); the parsed rule carries
// that role explicitly, so the ACL prints as it is applied. The
// right side is a comma-separated list of method globs. Globs are
// fnmatch-style and case-insensitive; patterns are printable ASCII
// without spaces. Rules apply in no particular order: any matching deny
// rule wins. name is used in error messages and Rule.Source. A file over
// MaxACLBytes or a line over 64 KiB is an error, never cut short.
func ParseACL(name string, r io.Reader) (*ACL, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxACLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxACLBytes {
		return nil, fmt.Errorf("%s: %w: file over %d bytes", name, ErrACLSyntax, MaxACLBytes)
	}
	acl := &ACL{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rule, err := parseRule(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w: %v", name, n, ErrACLSyntax, err)
		}
		rule.Source = fmt.Sprintf("%s:%d", name, n)
		acl.Rules = append(acl.Rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w: %v", name, n+1, ErrACLSyntax, err)
	}
	return acl, nil
}

func parseRule(line string) (Rule, error) {
	lhs, rhs, ok := strings.Cut(line, "=")
	if !ok {
		return Rule{}, errors.New(`want "identity = method, method"`)
	}
	var r Rule
	lhs = strings.TrimSpace(lhs)
	if rest, deny := strings.CutPrefix(lhs, "!"); deny {
		r.Deny, lhs = true, strings.TrimSpace(rest)
	}
	ident, role, hasRole := strings.Cut(lhs, "@")
	if hasRole {
		if r.Role = gofunc.Role(role); r.Role != AnyRole && !r.Role.Valid() {
			return Rule{}, fmt.Errorf("unknown role %q", role)
		}
	}
	r.Role = r.role()
	if err := checkPattern(ident); err != nil {
		return Rule{}, fmt.Errorf("identity: %v", err)
	}
	if err := checkIdentity(ident); err != nil {
		return Rule{}, err
	}
	r.Identity = ident
	for m := range strings.SplitSeq(rhs, ",") {
		m = strings.TrimSpace(m)
		if err := checkPattern(m); err != nil {
			return Rule{}, fmt.Errorf("method: %v", err)
		}
		r.Methods = append(r.Methods, m)
	}
	return r, nil
}

// checkIdentity refuses what the file syntax could not say back: "@"
// and "=" are separators, a leading "!" means deny and "#" a comment.
func checkIdentity(p string) error {
	if strings.ContainsAny(p, "@=") || strings.HasPrefix(p, "!") || strings.HasPrefix(p, "#") {
		return fmt.Errorf("identity %q may not hold '@' or '=' nor start with '!' or '#'", p)
	}
	return nil
}

func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	for _, c := range p {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("pattern %q has a space or non-ASCII character", p)
		}
	}
	return nil
}

// LoadACLDir reads every *.acl file in dir, in name order, into one ACL.
// A missing directory is an error; an empty one is an ACL that allows
// nothing.
func LoadACLDir(dir string) (*ACL, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("acl dir: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.acl"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	all := &ACL{}
	for _, f := range files {
		acl, err := loadACLFile(f)
		if err != nil {
			return nil, err
		}
		all.Rules = append(all.Rules, acl.Rules...)
	}
	return all, nil
}

func loadACLFile(path string) (*ACL, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseACL(filepath.Base(path), f)
}

// summary describes the ACL in a line, for the acl_reloaded event: how
// many rules, from which files.
func (a *ACL) summary() string {
	var sources []string
	for _, r := range a.Rules {
		file, _, _ := strings.Cut(r.Source, ":") // "ops.acl:3"
		if file != "" && !slices.Contains(sources, file) {
			sources = append(sources, file)
		}
	}
	return fmt.Sprintf("%d rules from %s", len(a.Rules), strings.Join(sources, ", "))
}
