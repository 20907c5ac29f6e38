package lineparse

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var got []string
	err := Lines(strings.NewReader("a\r\nb\n\nc"), 16, func(l string) error {
		got = append(got, l)
		return nil
	})
	if err != nil || strings.Join(got, "|") != "a|b||c" {
		t.Fatalf("lines = %q, %v", got, err)
	}
}

func TestErrorNamesTheLine(t *testing.T) {
	bad := errors.New("bad")
	err := Lines(strings.NewReader("ok\nnot ok\nok\n"), 16, func(l string) error {
		if l == "not ok" {
			return bad
		}
		return nil
	})
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || !errors.Is(err, bad) || err.Error() != "line 2: bad" {
		t.Fatalf("err = %v", err)
	}
}

func TestLongLineRefused(t *testing.T) {
	err := Lines(strings.NewReader("short\n"+strings.Repeat("x", 100)+"\n"), 16, func(string) error { return nil })
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || !errors.Is(err, bufio.ErrTooLong) {
		t.Fatalf("err = %v, want ErrTooLong on line 2", err)
	}
}
