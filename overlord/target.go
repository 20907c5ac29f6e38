package overlord

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/gofunc/gofunc/internal/glob"
	"github.com/gofunc/gofunc/internal/groupsfile"
)

// Target errors.
var (
	// ErrNoMatch: the spec matched no known minion. The error's text
	// says what was tried.
	ErrNoMatch = errors.New("overlord: no minion matched")
	// ErrBadSpec: the spec cannot be parsed.
	ErrBadSpec = groupsfile.ErrBadSpec
	// ErrUnknownGroup: an "@group" names no group.
	ErrUnknownGroup = groupsfile.ErrUnknownGroup
)

// maxGroupDepth bounds groups that name groups, so a cycle is an error
// rather than a hang.
const maxGroupDepth = 8

// match resolves a spec against the known minions, Func's grammar:
// ";"-separated union of case-insensitive globs, "@group" and
// "@group:glob" (members of group that match glob).
func match(spec string, minions []Minion, groups map[string]string) (map[string]Minion, error) {
	return matchDepth(spec, minions, groups, 0)
}

func matchDepth(spec string, minions []Minion, groups map[string]string, depth int) (map[string]Minion, error) {
	if depth > maxGroupDepth {
		return nil, fmt.Errorf("%w: groups nest deeper than %d (a cycle?)", ErrBadSpec, maxGroupDepth)
	}
	if strings.TrimSpace(spec) == "" {
		return nil, fmt.Errorf("%w: empty spec", ErrBadSpec)
	}
	out := make(map[string]Minion)
	terms := 0
	for term := range strings.SplitSeq(spec, ";") {
		term = strings.TrimSpace(term)
		if term == "" {
			continue
		}
		terms++
		if err := groupsfile.CheckTerm(term); err != nil {
			return nil, err
		}
		got, err := matchTerm(term, minions, groups, depth)
		if err != nil {
			return nil, err
		}
		for k, m := range got {
			out[k] = m
		}
	}
	if terms == 0 {
		return nil, fmt.Errorf("%w: %q has no terms", ErrBadSpec, spec)
	}
	return out, nil
}

func matchTerm(term string, minions []Minion, groups map[string]string, depth int) (map[string]Minion, error) {
	name, ok := strings.CutPrefix(term, "@")
	if !ok {
		return globMatch(term, minions), nil
	}
	group, sub, _ := strings.Cut(name, ":")
	members, ok := groups[group]
	if !ok {
		known := "none defined"
		if len(groups) > 0 {
			known = "known: " + strings.Join(sortedKeys(groups), ", ")
		}
		return nil, fmt.Errorf("%w %q (%s)", ErrUnknownGroup, group, known)
	}
	if strings.TrimSpace(members) == "" {
		return map[string]Minion{}, nil // an empty group matches nothing
	}
	got, err := matchDepth(members, minions, groups, depth+1)
	if err != nil {
		return nil, fmt.Errorf("group %q: %w", group, err)
	}
	if sub != "" {
		for k := range got {
			if !glob.Match(sub, k) {
				delete(got, k)
			}
		}
	}
	return got, nil
}

func globMatch(pattern string, minions []Minion) map[string]Minion {
	out := make(map[string]Minion)
	for _, m := range minions {
		if glob.Match(pattern, m.Name) {
			out[strings.ToLower(m.Name)] = m
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
