package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The demo fleet has one minion down: that host is UNKNOWN, the others
// are judged on real load and disk figures.
func TestDemo(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"--demo", "--warn-load", "1000", "--crit-load", "2000", "--warn-disk", "100", "--crit-disk", "101"}, &out)
	if code != int(Unknown) {
		t.Fatalf("exit %d, want %d (UNKNOWN); output:\n%s", code, Unknown, out.String())
	}
	text := out.String()
	if !strings.HasPrefix(text, "UNKNOWN - 4 hosts: 3 ok, 0 warning, 0 critical, 1 unknown") {
		t.Fatalf("summary line wrong:\n%s", text)
	}
	if !strings.Contains(text, "m4.test") || !strings.Contains(text, "unreachable") {
		t.Fatalf("the down host is not reported as unreachable:\n%s", text)
	}
}

// Thresholds of zero make every reachable host CRITICAL, which outranks
// the UNKNOWN host.
func TestCriticalWins(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"--demo", "--warn-disk", "0", "--crit-disk", "0"}, &out)
	if code != int(Critical) {
		t.Fatalf("exit %d, want CRITICAL; output:\n%s", code, out.String())
	}
}

func TestWorst(t *testing.T) {
	cases := []struct{ a, b, want State }{
		{OK, Warning, Warning}, {Warning, Unknown, Warning}, {Unknown, Critical, Critical}, {OK, Unknown, Unknown},
	}
	for _, c := range cases {
		if got := worst(c.a, c.b); got != c.want {
			t.Errorf("worst(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
