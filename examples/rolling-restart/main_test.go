package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Batches of two, no failure tolerated: m1 and m2 restart, the batch of
// m3 and m4 fails, and m5 and m6 are never touched.
func TestDemoStopsAtTheFailingBatch(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"--demo", "--size", "2", "--max-failures", "0"}, &out)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"m1.test      restarted", "m2.test      restarted",
		"m3.test      FAILED", "m4.test      FAILED",
		"m5.test      skipped", "m6.test      skipped",
		"2 restarted, 2 failed, 2 skipped",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}

// Tolerating two failures lets the roll finish.
func TestDemoToleratesFailures(t *testing.T) {
	var out bytes.Buffer
	code := run(t.Context(), []string{"--demo", "--size", "2", "--max-failures", "2"}, &out)
	if code != 1 || !strings.Contains(out.String(), "4 restarted, 2 failed, 0 skipped") {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
}

func TestUsage(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"only-a-spec"}, &out); code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, out.String())
	}
	if code := run(t.Context(), []string{"--demo", "--percent", "150"}, &out); code != 2 {
		t.Fatalf("bad percent: exit %d, want 2\n%s", code, out.String())
	}
}
