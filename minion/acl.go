package minion

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	// Role limits the rule to certificates of one role; empty is any.
	Role gofunc.Role
	// Methods are globs over "module.method" names.
	Methods []string
	// Deny makes the rule forbid what it matches. A matching deny rule
	// wins over every grant.
	Deny bool
	// Source says where the rule came from ("ops.acl:3"), for messages.
	Source string
}

// ACL is an ordered set of rules. A call is allowed when no deny rule
// matches it and at least one grant does. A method marked Dangerous
// (reboot, command.shell) is granted only by a rule that names it
// exactly: a glob such as "*" or "command.*" does not cover it.
type ACL struct {
	Rules []Rule
}

// DefaultACL lets overlord certificates call every method that is not
// dangerous, and no one else call anything.
var DefaultACL = &ACL{Rules: []Rule{{Identity: "*", Role: gofunc.RoleOverlord, Methods: []string{"*"}, Source: "default"}}}

// Allows reports whether p may call method.
func (a *ACL) Allows(p gofunc.Peer, method string, dangerous bool) bool {
	granted := false
	for _, r := range a.Rules {
		if !r.matchesPeer(p) {
			continue
		}
		exact, any := r.matchesMethod(method)
		if r.Deny && any {
			return false
		}
		if !r.Deny && (exact || (any && !dangerous)) {
			granted = true
		}
	}
	return granted
}

func (r Rule) matchesPeer(p gofunc.Peer) bool {
	if r.Role != "" && r.Role != p.Role {
		return false
	}
	return glob.Match(r.Identity, p.Name)
}

// matchesMethod reports whether a pattern names method exactly, and
// whether any pattern matches it at all.
func (r Rule) matchesMethod(method string) (exact, any bool) {
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

// ErrACLSyntax is wrapped by every ACL parse error.
var ErrACLSyntax = errors.New("acl syntax error")

// ParseACL reads rules in the acl file format, one rule a line:
//
//	# comment
//	admin-*@overlord = *
//	monitor          = test.*, system.*, command.exists
//	!intern-*        = command.shell, reboot.*
//
// The left side is an identity glob, optionally "@role"; a leading "!"
// makes the rule a deny rule. The right side is a comma-separated list
// of method globs. name is used in error messages and Rule.Source.
func ParseACL(name string, r io.Reader) (*ACL, error) {
	acl := &ACL{}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
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
		return nil, fmt.Errorf("%s: %w", name, err)
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
		switch gofunc.Role(role) {
		case gofunc.RoleOverlord, gofunc.RoleMinion, gofunc.RoleCertmaster:
			r.Role = gofunc.Role(role)
		default:
			return Rule{}, fmt.Errorf("unknown role %q", role)
		}
	}
	if err := checkPattern(ident); err != nil {
		return Rule{}, fmt.Errorf("identity: %v", err)
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
	files, err := filepath.Glob(filepath.Join(dir, "*.acl"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("acl dir: %w", err)
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
