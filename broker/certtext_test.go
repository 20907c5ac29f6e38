package broker

import (
	"encoding/base64"
	"testing"
)

// A certificate's header text is its base64 DER, computed once.
func TestCertText(t *testing.T) {
	leaf := testCert(t, "m1.example").Leaf
	want := base64.StdEncoding.EncodeToString(leaf.Raw)
	if got := certText(leaf); got != want {
		t.Fatalf("certText = %.40q..., want %.40q...", got, want)
	}
	ownCerts.mu.Lock()
	cached := ownCerts.m[leaf]
	ownCerts.mu.Unlock()
	if cached != want || certText(leaf) != want {
		t.Error("not remembered")
	}
	other := testCert(t, "m2.example").Leaf
	if certText(other) != base64.StdEncoding.EncodeToString(other.Raw) {
		t.Error("another certificate got the first one's text")
	}
}
