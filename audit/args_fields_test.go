package audit

import (
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
)

func TestSecretFieldsRedactOnlyThoseMembers(t *testing.T) {
	docs := []gofunc.ArgDoc{{Name: "argv"}, {Name: "options", SecretFields: []string{"env", "stdin"}}}
	opts := map[string]any{"env": map[string]any{"TOKEN": "hunter2"}, "stdin": "s3cret", "dir": "/tmp"}
	sum, digest := SummarizeArgs([]any{[]any{"id"}, opts}, docs)
	o, ok := sum[1].(map[string]any)
	if !ok || o["env"] != Redacted || o["stdin"] != Redacted || o["dir"] != "/tmp" {
		t.Fatalf("summary = %#v", sum)
	}
	if opts["env"] == Redacted {
		t.Fatal("the caller's value was modified")
	}
	// The digest does not depend on the secrets (a low-entropy secret
	// could be found from it).
	opts2 := map[string]any{"env": map[string]any{"TOKEN": "other"}, "stdin": "other", "dir": "/tmp"}
	if _, d2 := SummarizeArgs([]any{[]any{"id"}, opts2}, docs); d2 != digest {
		t.Fatal("digest changes with the secret values")
	}
	// A value that is not a struct cannot be split: redacted whole.
	sum, _ = SummarizeArgs([]any{[]any{"id"}, "TOKEN=hunter2"}, docs)
	if sum[1] != Redacted || strings.Contains(digest, "hunter2") {
		t.Fatalf("non-struct secret argument = %#v", sum[1])
	}
}
