package packages

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofunc/gofunc/internal/lineparse"
)

// MaxLineLen is the longest line of tool output the parsers accept.
const MaxLineLen = 64 << 10

// MaxEntries bounds the entries a parser returns before failing with
// ErrTooMany.
const MaxEntries = 1_000_000

// ErrMalformed is wrapped by the *ParseError of a line the parser cannot read.
var ErrMalformed = errors.New("malformed line")

// ErrTooMany is returned for output with more than MaxEntries entries.
var ErrTooMany = fmt.Errorf("more than %d entries", MaxEntries)

// ParseError reports the output line (1-based) where parsing stopped.
type ParseError = lineparse.Error

// Package is an installed package.
type Package struct {
	Name    string `xmlrpc:"name"`
	Version string `xmlrpc:"version"` // with epoch when not 0: "1:4.13+dfsg1-1"
	Arch    string `xmlrpc:"arch"`    // "amd64", "x86_64", "all", "noarch"
	// Status is "installed", or for dpkg a transitional state such as
	// "half-configured" or "unpacked".
	Status string `xmlrpc:"status"`
}

// Update is an available update of an installed package.
type Update struct {
	Name      string `xmlrpc:"name"`
	Current   string `xmlrpc:"current"` // installed version; "" for a package new to the system
	Available string `xmlrpc:"available"`
	Arch      string `xmlrpc:"arch"`
	// Origin is the repository: "Debian:12.5/stable, Debian-Security:12/stable-security", "updates".
	Origin string `xmlrpc:"origin"`
	// Security is set when the origin is a security repository (apt only).
	Security bool `xmlrpc:"security"`
}

// dpkgStatus names the second letter of dpkg's db:Status-Abbrev.
var dpkgStatus = map[byte]string{
	'i': "installed", 'W': "triggers-awaited", 't': "triggers-pending",
	'U': "unpacked", 'F': "half-configured", 'H': "half-installed",
}

// ParseList parses "name\tversion\tarch\tstatus" lines, as the list
// commands print them (dpkg-query with db:Status-Abbrev such as "ii ", rpm
// with "installed"). dpkg packages that are not installed (status 'n') or
// only leave configuration files ('c') are skipped.
func ParseList(r io.Reader) ([]Package, error) {
	pkgs := []Package{}
	err := lines(r, func(text string) error {
		if text == "" {
			return nil
		}
		f := strings.Split(text, "\t")
		if len(f) != 4 || f[0] == "" || f[3] == "" {
			return fmt.Errorf("%w: want name, version, arch and status separated by tabs", ErrMalformed)
		}
		status := f[3]
		if len(status) == 3 { // dpkg's abbreviation: want, status, error
			var ok bool
			if status, ok = dpkgStatus[f[3][1]]; !ok {
				return nil // not installed, config files only
			}
		}
		if len(pkgs) == MaxEntries {
			return ErrTooMany
		}
		pkgs = append(pkgs, Package{Name: f[0], Version: f[1], Arch: f[2], Status: status})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pkgs, nil
}

// ParseAptSimulate parses the "Inst" lines of apt-get -s upgrade:
//
//	Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.14/oldstable [amd64])
//	Inst libperl5.36 [5.36.0-7] (5.36.0-7+deb12u3 Debian:12/stable, Debian-Security:12/stable-security [amd64]) [perl:amd64 ]
//
// Other lines are ignored.
func ParseAptSimulate(r io.Reader) ([]Update, error) {
	updates := []Update{}
	err := lines(r, func(text string) error {
		rest, ok := strings.CutPrefix(text, "Inst ")
		if !ok {
			return nil
		}
		u, err := parseInst(rest)
		if err != nil {
			return err
		}
		if len(updates) == MaxEntries {
			return ErrTooMany
		}
		updates = append(updates, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updates, nil
}

func parseInst(rest string) (Update, error) {
	var u Update
	name, rest, _ := strings.Cut(rest, " ")
	if name == "" {
		return u, fmt.Errorf("%w: Inst without a package", ErrMalformed)
	}
	u.Name = name
	if strings.HasPrefix(rest, "[") {
		current, after, ok := strings.Cut(rest[1:], "] ")
		if !ok {
			return u, fmt.Errorf("%w: unterminated [version]", ErrMalformed)
		}
		u.Current, rest = current, after
	}
	if !strings.HasPrefix(rest, "(") {
		return u, fmt.Errorf("%w: no (version origin [arch])", ErrMalformed)
	}
	inner, _, ok := strings.Cut(rest[1:], ")")
	if !ok {
		return u, fmt.Errorf("%w: unterminated (version origin [arch])", ErrMalformed)
	}
	available, inner, _ := strings.Cut(inner, " ")
	if available == "" {
		return u, fmt.Errorf("%w: no available version", ErrMalformed)
	}
	u.Available = available
	if i := strings.LastIndex(inner, " ["); i >= 0 && strings.HasSuffix(inner, "]") {
		u.Arch = inner[i+2 : len(inner)-1]
		inner = inner[:i]
	} else if strings.HasPrefix(inner, "[") && strings.HasSuffix(inner, "]") {
		u.Arch, inner = inner[1:len(inner)-1], ""
	}
	u.Origin = inner
	u.Security = strings.Contains(strings.ToLower(inner), "security")
	return u, nil
}

// ParseDnfCheckUpdate parses the output of dnf check-update: one
// "name.arch version repository" per package, a name too long for its
// column wrapped onto the next line. Header lines and the "Obsoleting
// Packages" section are ignored.
func ParseDnfCheckUpdate(r io.Reader) ([]Update, error) {
	updates := []Update{}
	carry := "" // the name of a wrapped line, waiting for its version and repository
	done := false
	err := lines(r, func(text string) error {
		if done {
			return nil
		}
		if strings.HasPrefix(text, "Obsoleting Packages") {
			done = true
			return nil
		}
		fields := strings.Fields(text)
		if carry != "" && len(fields) == 2 {
			fields = append([]string{carry}, fields...)
		}
		carry = ""
		if len(fields) == 1 && strings.Contains(fields[0], ".") && !strings.HasSuffix(fields[0], ":") {
			carry = fields[0]
			return nil
		}
		if len(fields) != 3 || strings.HasSuffix(fields[0], ":") {
			return nil // headers: "Last metadata expiration check: ...", "Security: ..."
		}
		dot := strings.LastIndexByte(fields[0], '.')
		if dot <= 0 || dot == len(fields[0])-1 {
			return nil
		}
		if len(updates) == MaxEntries {
			return ErrTooMany
		}
		updates = append(updates, Update{Name: fields[0][:dot], Arch: fields[0][dot+1:],
			Available: fields[1], Origin: fields[2]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return updates, nil
}

// lines hands each line of r, without its line ending, to line, and
// wraps line's error in a *ParseError.
func lines(r io.Reader, line func(string) error) error {
	return lineparse.Lines(r, MaxLineLen, func(l string) error {
		return line(strings.TrimRight(l, "\r"))
	})
}
