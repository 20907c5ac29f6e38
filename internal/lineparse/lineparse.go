// Package lineparse is the line loop the modules' text parsers share
// (mountinfo, passwd and group, dpkg/rpm/apt/dnf output): lines are
// numbered from 1, bounded in length, and the first error stops the
// parse, wrapped in an *Error that names its line.
package lineparse

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Error reports the line (1-based) where parsing stopped.
type Error struct {
	Line int
	Err  error
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

// Unwrap returns the cause: the parser's own error, or bufio.ErrTooLong
// for a line over the length limit.
func (e *Error) Unwrap() error { return e.Err }

// Lines calls fn with each line of r, without its line ending ("\n" or
// "\r\n"), until fn fails or r ends. A line longer than maxLen bytes
// fails with bufio.ErrTooLong. Every error is an *Error.
func Lines(r io.Reader, maxLen int, fn func(line string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(4096, maxLen)), maxLen)
	n := 0
	for sc.Scan() {
		n++
		if err := fn(strings.TrimSuffix(sc.Text(), "\r")); err != nil {
			return &Error{Line: n, Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return &Error{Line: n + 1, Err: err}
	}
	return nil
}
