package identity

import "testing"

func TestASCIIEqualFold(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{{"m1", "M1", true}, {"web.Example", "WEB.example", true}, {"k", "\u212a", false}, {"m1", "m10", false}, {"a-b", "a_b", false}} {
		if got := asciiEqualFold(tt.a, tt.b); got != tt.want {
			t.Errorf("asciiEqualFold(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}
