package broker

import (
	"errors"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/identity"
)

func TestTokenRoundTrip(t *testing.T) {
	for _, name := range []string{"web1", "web1.example.com", "A-1.b", "x"} {
		tok, err := Token(name)
		if err != nil {
			t.Fatalf("Token(%q): %v", name, err)
		}
		if strings.ContainsAny(tok, ".*> \t") {
			t.Errorf("Token(%q) = %q: not a single subject token", name, tok)
		}
		back, err := NameOfToken(tok)
		if err != nil {
			t.Fatalf("NameOfToken(%q): %v", tok, err)
		}
		want, _ := identity.ValidateName(name)
		if back != want {
			t.Errorf("round trip %q -> %q -> %q, want %q", name, tok, back, want)
		}
	}
}

func TestTokenRefusesWildcardsAndSeparators(t *testing.T) {
	for _, name := range []string{"", "a_b", "*", ">", "a.*", "a b", "web>", "a..b"} {
		if tok, err := Token(name); !errors.Is(err, identity.ErrBadName) {
			t.Errorf("Token(%q) = %q, %v; want ErrBadName", name, tok, err)
		}
		if _, err := CallSubject(name); !errors.Is(err, identity.ErrBadName) {
			t.Errorf("CallSubject(%q): %v; want ErrBadName", name, err)
		}
	}
}

func TestCallSubject(t *testing.T) {
	got, err := CallSubject("web1.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if want := "gf.v1.call.web1_example_com"; got != want {
		t.Errorf("CallSubject = %q, want %q", got, want)
	}
}
