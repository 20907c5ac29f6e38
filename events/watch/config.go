package watch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// ErrConfig is wrapped by Parse's errors.
var ErrConfig = errors.New("watch: bad [[watch]] table")

// commonKeys are the keys every [[watch]] table may have.
var commonKeys = []string{"type", "name", "every", "only_on_change", "pause_during_calls"}

// typeKeys are each type's own keys.
var typeKeys = map[string][]string{
	"nagios":    {"plugin", "args", "plugin_dir", "timeout"},
	"threshold": {"metric", "path", "warn", "crit", "hysteresis", "average", "per_cpu"},
	"file":      {"path", "notify", "max_hash_size"},
	"service":   {"unit"},
}

// maxWatches bounds the watchers one file may declare.
const maxWatches = 1000

// Parse reads the [[watch]] tables of a gofunc.toml:
//
//	[[watch]]
//	type = "nagios"            # nagios | threshold | file | service
//	name = "disk root"         # the events' source; unique
//	every = "1m"               # optional; the type's default otherwise
//	only_on_change = true      # optional; false: an event at every check
//	pause_during_calls = false # optional
//	plugin = "check_disk"      # the type's own keys (see Nagios,
//	args = ["-w", "10%", "-c", "5%", "-p", "/"]   # Threshold, File, Service)
//
// Other top-level keys and tables are left alone (one gofunc.toml serves
// several commands). Inside a [[watch]] table every key must be known
// for its type: a misspelt key is an error naming the table, never
// ignored. The watches are validated as Start validates them.
func Parse(data []byte) ([]Watch, error) {
	var doc struct {
		Watch []toml.Primitive `toml:"watch"`
	}
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if len(doc.Watch) > maxWatches {
		return nil, fmt.Errorf("%w: %d watches, at most %d", ErrConfig, len(doc.Watch), maxWatches)
	}
	var out []Watch
	names := map[string]int{}
	for i, p := range doc.Watch {
		w, err := parseTable(md, p)
		if err != nil {
			name := ""
			if w.Name != "" {
				name = fmt.Sprintf(" (%q)", w.Name)
			}
			return nil, fmt.Errorf("%w %d%s: %w", ErrConfig, i+1, name, err)
		}
		if j, dup := names[w.Name]; dup {
			return nil, fmt.Errorf("%w %d: the name %q is also watch %d's", ErrConfig, i+1, w.Name, j)
		}
		names[w.Name] = i + 1
		out = append(out, w)
	}
	return out, nil
}

// parseTable decodes one [[watch]] table.
func parseTable(md toml.MetaData, p toml.Primitive) (Watch, error) {
	var keys map[string]any
	if err := md.PrimitiveDecode(p, &keys); err != nil {
		return Watch{}, err
	}
	var head struct {
		Type             string        `toml:"type"`
		Name             string        `toml:"name"`
		Every            time.Duration `toml:"every"`
		OnlyOnChange     *bool         `toml:"only_on_change"`
		PauseDuringCalls bool          `toml:"pause_during_calls"`
		Notify           *bool         `toml:"notify"`
	}
	if err := md.PrimitiveDecode(p, &head); err != nil {
		return Watch{}, err
	}
	w := Watch{Name: head.Name, Every: head.Every, PauseDuringCalls: head.PauseDuringCalls}
	own, ok := typeKeys[head.Type]
	if !ok {
		return w, fmt.Errorf("type %q: want nagios, threshold, file or service", head.Type)
	}
	for k := range keys {
		if !slices.Contains(commonKeys, k) && !slices.Contains(own, k) {
			return w, fmt.Errorf("unknown key %q for type %s (its keys: %s)", k, head.Type, strings.Join(append(slices.Clone(commonKeys), own...), ", "))
		}
	}
	if head.OnlyOnChange != nil {
		w.Always = !*head.OnlyOnChange
	}
	switch head.Type {
	case "nagios":
		w.Check = new(Nagios)
	case "threshold":
		w.Check = new(Threshold)
	case "file":
		f := new(File)
		f.NoNotify = head.Notify != nil && !*head.Notify
		w.Check = f
	case "service":
		w.Check = new(Service)
	}
	if err := md.PrimitiveDecode(p, w.Check); err != nil {
		return w, err
	}
	return w, w.validate()
}
