package main

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The quickstart is the issue-2 path end to end through the public API:
// a CA and certmaster, three minions that enroll over TLS pinning the CA
// by fingerprint, an overlord with its own certificate calling them over
// mutual TLS, and a verified audit log.
func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), &out); err != nil {
		t.Fatalf("quickstart: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	for _, want := range []string{
		"minion1.quickstart enrolled", "minion3.quickstart enrolled",
		"ping minion2.quickstart", "-> true",
		"uname -r on minion1.quickstart", "exit 0",
		"chain verified", `"method":"command.run"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", text)
	}
}
