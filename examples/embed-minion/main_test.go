package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	if code := run(t.Context(), []string{"--demo"}, &out); code != 0 {
		t.Fatalf("exit %d, output:\n%s", code, out.String())
	}
	for _, want := range []string{"version 1.4.2, queue 5", "enqueue", "status", "get_method_args"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUsage(t *testing.T) {
	if code := run(t.Context(), nil, &bytes.Buffer{}); code != 2 {
		t.Fatalf("no flags: exit %d, want 2", code)
	}
}
