package main

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/internal/clidoc"
	"github.com/gofunc/gofunc/overlord"
)

// completionConfig completes what the kong model cannot know: target
// specs, from the minion list and groups in the identity directory the
// words being completed name (--dir, GOFUNC_DIR or ~/.gofunc). It reads
// files only: completion must not wait on the network.
var completionConfig = clidoc.Config{Predictors: map[string]clidoc.Predictor{
	"hosts": func(words []string, prefix string) []string {
		dir := cliconf.DirFromArgsOr(words, nil, overlord.DefaultDir())
		if strings.HasPrefix(prefix, "@") {
			groups, err := overlord.LoadGroups(filepath.Join(dir, overlord.GroupsFile))
			if err != nil {
				return nil
			}
			var out []string
			for _, g := range slices.Sorted(maps.Keys(groups)) {
				out = append(out, "@"+g)
			}
			return out
		}
		list, err := readCache(filepath.Join(dir, overlord.CacheFile))
		if err != nil {
			return nil
		}
		var out []string
		for _, m := range list {
			out = append(out, m.Name)
		}
		return out
	},
}}
