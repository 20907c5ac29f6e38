package users

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gofunc/gofunc/internal/lineparse"
)

// MaxLineLen is the longest passwd or group line the parsers accept
// (group lines of large groups are long).
const MaxLineLen = 1 << 20

// MaxEntries is the largest number of entries the parsers return before
// failing with ErrTooMany.
const MaxEntries = 1_000_000

// ErrMalformed is wrapped by the *ParseError of a line that is not an entry.
var ErrMalformed = errors.New("malformed entry")

// ErrTooMany is returned for a file with more than MaxEntries entries.
var ErrTooMany = fmt.Errorf("more than %d entries", MaxEntries)

// ParseError reports the file line (1-based) where parsing stopped; it
// wraps ErrMalformed, ErrTooMany or bufio.ErrTooLong.
type ParseError = lineparse.Error

// User is an account of passwd(5).
type User struct {
	Name  string `xmlrpc:"name"`
	UID   int64  `xmlrpc:"uid"`
	GID   int64  `xmlrpc:"gid"`
	Gecos string `xmlrpc:"gecos"` // full name and contact fields
	Home  string `xmlrpc:"home"`
	Shell string `xmlrpc:"shell"`
}

// Group is a group of group(5).
type Group struct {
	Name    string   `xmlrpc:"name"`
	GID     int64    `xmlrpc:"gid"`
	Members []string `xmlrpc:"members"` // supplementary members; never nil
}

// ParsePasswd parses passwd(5): "name:password:uid:gid:gecos:home:shell".
// Blank lines, '#' comments and NIS compat lines ("+", "-") are skipped;
// any other line that is not an entry fails with a *ParseError.
func ParsePasswd(r io.Reader) ([]User, error) {
	var users []User
	err := scan(r, 7, func(f []string) error {
		uid, err := parseID(f[2])
		if err != nil {
			return fmt.Errorf("%w: uid %q", ErrMalformed, f[2])
		}
		gid, err := parseID(f[3])
		if err != nil {
			return fmt.Errorf("%w: gid %q", ErrMalformed, f[3])
		}
		users = append(users, User{Name: f[0], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// ParseGroup parses group(5): "name:password:gid:member,member". It skips
// the same lines as ParsePasswd.
func ParseGroup(r io.Reader) ([]Group, error) {
	var groups []Group
	err := scan(r, 4, func(f []string) error {
		gid, err := parseID(f[2])
		if err != nil {
			return fmt.Errorf("%w: gid %q", ErrMalformed, f[2])
		}
		members := []string{}
		for m := range strings.SplitSeq(f[3], ",") {
			if m != "" {
				members = append(members, m)
			}
		}
		groups = append(groups, Group{Name: f[0], GID: gid, Members: members})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return groups, nil
}

// scan splits each entry line of r into exactly n colon-separated fields
// and hands them to entry.
func scan(r io.Reader, n int, entry func([]string) error) error {
	entries := 0
	return lineparse.Lines(r, MaxLineLen, func(text string) error {
		text = strings.TrimRight(text, "\r")
		if strings.TrimSpace(text) == "" || text[0] == '#' || text[0] == '+' || text[0] == '-' {
			return nil
		}
		if entries++; entries > MaxEntries {
			return ErrTooMany
		}
		fields := strings.Split(text, ":")
		if len(fields) != n {
			return fmt.Errorf("%w: %d fields, want %d", ErrMalformed, len(fields), n)
		}
		if fields[0] == "" {
			return fmt.Errorf("%w: empty name", ErrMalformed)
		}
		return entry(fields)
	})
}

// parseID parses a uid or gid: a decimal 32-bit unsigned number.
func parseID(s string) (int64, error) {
	id, err := strconv.ParseUint(s, 10, 32)
	return int64(id), err
}
