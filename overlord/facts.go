package overlord

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofunc/gofunc/internal/glob"
)

// ErrBadFilter: a facts filter cannot be parsed.
var ErrBadFilter = errors.New("overlord: bad facts filter")

// FactsMethod is what the overlord calls to learn a minion's facts: a
// flat {name: string or number} map.
const FactsMethod = "facts.list"

// Where keeps the minions whose fact matches pattern, a
// case-insensitive glob compared with the fact's text ("debian",
// "x86_64", "6.1.*", "4" for a number). Facts are fetched with one
// fan-out of facts.list and cached for FactsTTL; a minion whose facts
// cannot be fetched, or that lacks the fact, does not match.
func (s *Selection) Where(fact, pattern string) *Selection {
	return s.WhereFacts(fact + "=" + pattern)
}

// WhereFacts keeps the minions whose facts satisfy every condition of
// expr, a comma-separated list of NAME OP VALUE with OP one of
//
//	=   the fact's text matches the glob VALUE (case-insensitive)
//	!=  it does not
//	< <= > >=  the fact and VALUE are numbers and compare so
//
// for example "os=debian,arch=x86_64,cpu_count>=4". A missing fact
// satisfies no condition. A malformed expr is kept and returned, as an
// ErrBadFilter error, by Call.
func (s *Selection) WhereFacts(expr string) *Selection {
	conds, err := parseFactFilter(expr)
	return s.with(func(n *Selection) {
		n.conds = append(n.conds, conds...)
		if err != nil && n.err == nil {
			n.err = err
		}
	})
}

// factCond is one condition of a facts filter.
type factCond struct {
	name, op, value string
	num             float64 // value as a number, for the ordering ops
}

var factOps = []string{"!=", "<=", ">=", "=", "<", ">"}

// parseFactFilter parses "name=value,name>=4".
func parseFactFilter(expr string) ([]factCond, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, fmt.Errorf("%w: empty", ErrBadFilter)
	}
	if len(expr) > 4096 {
		return nil, fmt.Errorf("%w: longer than 4096 bytes", ErrBadFilter)
	}
	var out []factCond
	for part := range strings.SplitSeq(expr, ",") {
		part = strings.TrimSpace(part)
		i, op := operator(part)
		if i < 0 {
			return nil, fmt.Errorf("%w: %q has no operator (=, !=, <, <=, >, >=)", ErrBadFilter, clipText(part))
		}
		c := factCond{name: strings.TrimSpace(part[:i]), op: op, value: strings.TrimSpace(part[i+len(op):])}
		if !validFactName(c.name) {
			return nil, fmt.Errorf("%w: fact name %q must match [a-z][a-z0-9_]{0,63}", ErrBadFilter, clipText(c.name))
		}
		if c.value == "" {
			return nil, fmt.Errorf("%w: %q has no value", ErrBadFilter, clipText(part))
		}
		if op[0] == '<' || op[0] == '>' {
			f, err := strconv.ParseFloat(c.value, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%w: %s needs a number, got %q", ErrBadFilter, op, clipText(c.value))
			}
			c.num = f
		} else if err := checkValuePattern(c.value); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// operator finds the first operator in s: its index and text.
func operator(s string) (int, string) {
	for i := range len(s) {
		for _, op := range factOps {
			if strings.HasPrefix(s[i:], op) {
				return i, op
			}
		}
	}
	return -1, ""
}

func validFactName(name string) bool {
	if name == "" || len(name) > 64 || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func checkValuePattern(v string) error {
	for _, c := range v {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: value %q has a control character", ErrBadFilter, clipText(v))
		}
	}
	return nil
}

func formatConds(conds []factCond) string {
	parts := make([]string, len(conds))
	for i, c := range conds {
		parts[i] = c.name + c.op + c.value
	}
	return strings.Join(parts, ",")
}

// matches reports whether facts satisfy c.
func (c factCond) matches(facts map[string]any) bool {
	v, ok := facts[c.name]
	if !ok {
		return false
	}
	switch c.op {
	case "=":
		return glob.Match(c.value, factText(v))
	case "!=":
		return !glob.Match(c.value, factText(v))
	}
	f, ok := factNumber(v)
	if !ok {
		return false
	}
	switch c.op {
	case "<":
		return f < c.num
	case "<=":
		return f <= c.num
	case ">":
		return f > c.num
	default:
		return f >= c.num
	}
}

func factText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	case []byte:
		return string(x)
	}
	return fmt.Sprint(v)
}

func factNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}

// factCache keeps each host's facts for FactsTTL.
type factCache struct {
	mu      sync.Mutex
	entries map[string]factEntry
}

type factEntry struct {
	facts map[string]any
	at    time.Time
}

func (fc *factCache) get(host string, ttl time.Duration) (map[string]any, bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	e, ok := fc.entries[host]
	if !ok || ttl < 0 || time.Since(e.at) > ttl {
		return nil, false
	}
	return e.facts, true
}

func (fc *factCache) put(host string, facts map[string]any) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.entries == nil {
		fc.entries = map[string]factEntry{}
	}
	fc.entries[host] = factEntry{facts: facts, at: time.Now()}
}

// Facts returns the facts of the selected minions (cached for
// FactsTTL), fetched with one fan-out of facts.list; hosts whose facts
// could not be fetched are in the error map.
func (s *Selection) Facts(ctx context.Context) (map[string]map[string]any, map[string]error, error) {
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, nil, err
	}
	facts, failed, err := s.c.factsOf(ctx, targets)
	return facts, failed, err
}

// factsOf returns the facts of hosts, from the cache or one fan-out.
func (c *Client) factsOf(ctx context.Context, hosts map[string]Minion) (map[string]map[string]any, map[string]error, error) {
	out := make(map[string]map[string]any, len(hosts))
	failed := map[string]error{}
	var missing []string
	for h := range hosts {
		if f, ok := c.facts.get(h, c.cfg.FactsTTL); ok {
			out[h] = f
		} else {
			missing = append(missing, h)
		}
	}
	if len(missing) == 0 {
		return out, failed, nil
	}
	req, err := newRequest("facts", "list", nil)
	if err != nil {
		return nil, nil, err
	}
	r := &run{c: c, id: newID(), hosts: sortedKeys(sliceSet(missing)), req: req, spec: "facts for targeting", start: time.Now()}
	if err := c.auditStart(r); err != nil {
		return nil, nil, err
	}
	var mu sync.Mutex
	r.execute(ctx, func(res Result) {
		var f map[string]any
		err := res.Err
		if err == nil {
			if f, err = asFacts(res.Value); err != nil {
				err = &HostError{Host: res.Host, Op: FactsMethod, Err: err}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed[res.Host] = err
			return
		}
		out[res.Host] = f
		c.facts.put(res.Host, f)
	})
	return out, failed, nil
}

func asFacts(v any) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s answered %T, want a struct", ErrProtocol, FactsMethod, v)
	}
	return m, nil
}

// filterFacts keeps the hosts whose facts satisfy conds; it also
// returns how many hosts could not report facts.
func (c *Client) filterFacts(ctx context.Context, hosts map[string]Minion, conds []factCond) (map[string]Minion, int, error) {
	facts, failed, err := c.factsOf(ctx, hosts)
	if err != nil {
		return nil, 0, err
	}
	for h, err := range failed {
		c.cfg.Logger.Warn("minion left out of a facts selection", "host", h, "error", err)
	}
	out := make(map[string]Minion, len(hosts))
	for h, m := range hosts {
		f, ok := facts[h]
		if !ok {
			continue
		}
		keep := true
		for _, cond := range conds {
			if !cond.matches(f) {
				keep = false
				break
			}
		}
		if keep {
			out[h] = m
		}
	}
	return out, len(failed), nil
}

func sliceSet(s []string) map[string]struct{} {
	m := make(map[string]struct{}, len(s))
	for _, k := range s {
		m[k] = struct{}{}
	}
	return m
}
