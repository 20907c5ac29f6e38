// Package groupsfile is the overlord's groups file (Func's INI-like format)
// and the target-spec syntax its members use: parsing for the overlord,
// formatting and editing for the func command (`func group`).
package groupsfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// Errors, re-exported by package overlord under the same names.
var (
	// ErrBadGroups: a groups file cannot be parsed. The error names the
	// line.
	ErrBadGroups = errors.New("overlord: bad groups file")
	// ErrBadSpec: a target spec (or a group name) cannot be parsed.
	ErrBadSpec = errors.New("overlord: bad target spec")
	// ErrUnknownGroup: an "@group" names no group.
	ErrUnknownGroup = errors.New("overlord: unknown group")
)

// Bounds on a groups file, so a huge or hostile file is an error rather
// than an allocation spree.
const (
	maxGroupsFileBytes = 1 << 20
	maxGroupNameLen    = 64
)

// Parse reads a groups file, Func's INI-like format:
//
//	# comment (a line starting with # or ;)
//	[web]
//	hosts = web*;cache1.example.com
//	hosts = @db:db1*          more lines add to the group
//
//	[db]
//	hosts = db*
//
// Each [section] is a group; its "hosts" lines (Func's "host" is
// accepted too) are target specs whose union is the group. Group names
// are 1 to 64 characters from [A-Za-z0-9_.-]. A group with no hosts
// line is empty. Unknown keys, text outside a section, a group defined
// twice and malformed specs are ErrBadGroups errors naming the line.
// It returns each group's members as one spec ("web*;cache1").
func Parse(r io.Reader) (map[string]string, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxGroupsFileBytes+1))
	sc.Buffer(make([]byte, 0, 4096), maxGroupsFileBytes+1)
	groups := map[string]string{}
	var cur string
	var size int
	for n := 1; sc.Scan(); n++ {
		size += len(sc.Bytes()) + 1
		if size > maxGroupsFileBytes {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadGroups, maxGroupsFileBytes)
		}
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if name, ok := strings.CutPrefix(line, "["); ok {
			name, ok = strings.CutSuffix(name, "]")
			if !ok {
				return nil, fmt.Errorf("%w: line %d: section header %q has no closing ]", ErrBadGroups, n, clipText(line))
			}
			name = strings.TrimSpace(name)
			if err := CheckName(name); err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrBadGroups, n, err)
			}
			if _, dup := groups[name]; dup {
				return nil, fmt.Errorf("%w: line %d: group %q defined twice", ErrBadGroups, n, name)
			}
			groups[name], cur = "", name
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%w: line %d: want [group] or hosts = SPEC, got %q", ErrBadGroups, n, clipText(line))
		}
		if key = strings.TrimSpace(key); key != "hosts" && key != "host" {
			return nil, fmt.Errorf("%w: line %d: unknown key %q (want hosts)", ErrBadGroups, n, clipText(key))
		}
		if cur == "" {
			return nil, fmt.Errorf("%w: line %d: hosts outside a [group] section", ErrBadGroups, n)
		}
		terms, err := specTerms(value)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrBadGroups, n, err)
		}
		groups[cur] = joinTerms(splitTerms(groups[cur]), terms)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadGroups, maxGroupsFileBytes)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadGroups, err)
	}
	return groups, nil
}

// Format writes groups in the format Parse reads, sorted by
// name, one hosts line per group.
func Format(groups map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# gofunc groups: [name] sections with \"hosts = SPEC\" lines; see `func group`.\n")
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		if err := CheckName(name); err != nil {
			return nil, err
		}
		terms, err := specTerms(groups[name])
		if err != nil {
			return nil, fmt.Errorf("group %q: %w", name, err)
		}
		fmt.Fprintf(&b, "\n[%s]\n", name)
		if len(terms) > 0 {
			fmt.Fprintf(&b, "hosts = %s\n", strings.Join(terms, ";"))
		}
	}
	return b.Bytes(), nil
}

// Load reads the groups file at path; a missing file defines no
// groups.
func Load(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("overlord: groups: %w", err)
	}
	defer f.Close()
	g, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// Save writes groups to path atomically (mode 0600).
func Save(path string, groups map[string]string) error {
	b, err := Format(groups)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b, 0o600)
}

// Edit adds the terms of spec to group name in the groups file at
// path (creating the group, and the file, if needed), or with remove
// set takes them out of it (the whole group when spec is empty). It
// returns the group's spec after the change.
func Edit(path, name, spec string, remove bool) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	groups, err := Load(path)
	if err != nil {
		return "", err
	}
	terms, err := specTerms(spec)
	if err != nil {
		return "", err
	}
	cur, exists := groups[name]
	switch {
	case !remove:
		groups[name] = joinTerms(splitTerms(cur), terms)
	case !exists:
		return "", fmt.Errorf("%w %q", ErrUnknownGroup, name)
	case len(terms) == 0:
		delete(groups, name)
	default:
		keep := slices.DeleteFunc(splitTerms(cur), func(t string) bool {
			return slices.ContainsFunc(terms, func(r string) bool { return strings.EqualFold(r, t) })
		})
		groups[name] = strings.Join(keep, ";")
	}
	return groups[name], Save(path, groups)
}

// CheckName checks a group name: 1 to 64 characters from
// [A-Za-z0-9_.-]. Errors match ErrBadSpec.
func CheckName(name string) error {
	if name == "" || len(name) > maxGroupNameLen {
		return fmt.Errorf("%w: group name %q must be 1 to %d characters", ErrBadSpec, clipText(name), maxGroupNameLen)
	}
	for _, c := range []byte(name) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return fmt.Errorf("%w: group name %q may hold only letters, digits, '_', '.' and '-'", ErrBadSpec, clipText(name))
		}
	}
	return nil
}

// specTerms splits a spec into its checked, non-empty terms.
func specTerms(spec string) ([]string, error) {
	terms := splitTerms(spec)
	for _, t := range terms {
		if err := CheckTerm(t); err != nil {
			return nil, err
		}
	}
	return terms, nil
}

func splitTerms(spec string) []string {
	var out []string
	for t := range strings.SplitSeq(spec, ";") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// joinTerms appends the terms of add not already in have.
func joinTerms(have, add []string) string {
	for _, t := range add {
		if !slices.ContainsFunc(have, func(h string) bool { return strings.EqualFold(h, t) }) {
			have = append(have, t)
		}
	}
	return strings.Join(have, ";")
}

// CheckTerm checks one term of a target spec: printable ASCII with no
// space, and balanced brackets. Errors match ErrBadSpec.
func CheckTerm(term string) error {
	for _, c := range term {
		if c < 0x21 || c > 0x7e {
			return fmt.Errorf("%w: %q has a space, control or non-ASCII character", ErrBadSpec, term)
		}
	}
	if strings.Count(term, "[") != strings.Count(term, "]") {
		return fmt.Errorf("%w: %q has an unbalanced [", ErrBadSpec, term)
	}
	return nil
}

// clipText shortens user text quoted in an error.
func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
