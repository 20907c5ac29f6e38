package overlord

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofunc/gofunc/internal/fsutil"
)

// ErrBadGroups: a groups file cannot be parsed. The error names the line.
var ErrBadGroups = errors.New("overlord: bad groups file")

// Bounds on a groups file, so a huge or hostile file is an error rather
// than an allocation spree.
const (
	maxGroupsFileBytes = 1 << 20
	maxGroupNameLen    = 64
)

// ParseGroups reads a groups file, Func's INI-like format:
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
func ParseGroups(r io.Reader) (map[string]string, error) {
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
			if err := checkGroupName(name); err != nil {
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

// FormatGroups writes groups in the format ParseGroups reads, sorted by
// name, one hosts line per group.
func FormatGroups(groups map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("# gofunc groups: [name] sections with \"hosts = SPEC\" lines; see `func group`.\n")
	for _, name := range sortedKeys(groups) {
		if err := checkGroupName(name); err != nil {
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

// LoadGroups reads the groups file at path; a missing file defines no
// groups.
func LoadGroups(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("overlord: groups: %w", err)
	}
	defer f.Close()
	g, err := ParseGroups(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// SaveGroups writes groups to path atomically (mode 0600).
func SaveGroups(path string, groups map[string]string) error {
	b, err := FormatGroups(groups)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(path, b, 0o600)
}

// EditGroup adds the terms of spec to group name in the groups file at
// path (creating the group, and the file, if needed), or with remove
// set takes them out of it (the whole group when spec is empty). It
// returns the group's spec after the change.
func EditGroup(path, name, spec string, remove bool) (string, error) {
	if err := checkGroupName(name); err != nil {
		return "", err
	}
	groups, err := LoadGroups(path)
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
	return groups[name], SaveGroups(path, groups)
}

func checkGroupName(name string) error {
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
		if err := checkTerm(t); err != nil {
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

// clipText shortens user text quoted in an error.
func clipText(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
