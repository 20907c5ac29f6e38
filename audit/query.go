package audit

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/gofunc/gofunc/internal/glob"
)

// Filter selects records for Query. Zero fields match everything; set
// fields must all match. Patterns are the globs the rest of gofunc uses
// for targets and ACLs (fnmatch syntax, case-insensitive: "command.*",
// "web?", "[!x]*").
type Filter struct {
	Since  time.Time // records at or after Since; zero: no lower bound
	Until  time.Time // records before Until; zero: no upper bound
	Kind   string    // pattern on Kind: "call.*", "ca.sign"
	Caller string    // pattern on Caller (certificate CN)
	Method string    // pattern on Method: "command.*"
	// Outcome is matched exactly: "ok", "fault", "denied", ...
	Outcome string
	CallID  string // exact; gives a call's start and end records
}

// Validate reports a pattern with an unclosed "[" (fnmatch would take
// it literally, which is rarely what was meant), wrapping
// path.ErrBadPattern.
func (f Filter) Validate() error {
	for _, p := range []struct{ name, pattern string }{{"kind", f.Kind}, {"caller", f.Caller}, {"method", f.Method}} {
		if strings.Count(p.pattern, "[") > strings.Count(p.pattern, "]") {
			return fmt.Errorf("audit: filter %s %q: %w: unclosed [", p.name, p.pattern, path.ErrBadPattern)
		}
	}
	return nil
}

// Match reports whether r passes the filter (Query calls Validate
// first).
func (f Filter) Match(r Record) bool {
	return (f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until)) &&
		matchPattern(f.Kind, r.Kind) &&
		matchPattern(f.Caller, r.Caller) &&
		matchPattern(f.Method, r.Method) &&
		(f.Outcome == "" || f.Outcome == r.Outcome) &&
		(f.CallID == "" || f.CallID == r.CallID)
}

func matchPattern(pattern, s string) bool {
	if pattern == "" {
		return true
	}
	return glob.Match(pattern, s)
}

// Query calls fn, in chain order, with each record in paths (as Files
// returns them) that f matches. fn returning ErrStop ends the query
// with a nil error; any other error ends it with that error.
//
// Query checks the chain as it reads, like Verify, except that the
// first record may be any seq (so a query can skip archived files), and
// stops at the first problem with a *VerifyError. A torn final line
// (errors.Is(err, ErrTorn)) is reported after every record before it
// was passed to fn; it is not tampering.
func Query(paths []string, f Filter, fn func(Record) error) error {
	if err := f.Validate(); err != nil {
		return err
	}
	c := &chain{}
	match := func(r Record) error {
		if f.Match(r) {
			return fn(r)
		}
		return nil
	}
	for i, p := range paths {
		err := scanFile(p, i == len(paths)-1, c, match)
		if errors.Is(err, ErrStop) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}
