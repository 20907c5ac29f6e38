package identity

import (
	"regexp"
	"strings"
	"testing"
)

var canonName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// FuzzValidateName: an accepted name is canonical, idempotent and of the
// RFC 1123 shape; case never changes the verdict.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"m1", "Web1.Example.COM", "a-b.c", "-a", "a-", "a..b", "a/b", "..", "a b", "\u212aelvin",
		"xn--nxasmq6b", "127.0.0.1", "::1", strings.Repeat("a", 64), strings.Repeat("a.", 127) + "a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		canon, err := ValidateName(name)
		if err != nil {
			if canon != "" {
				t.Fatal("error with a name")
			}
			return
		}
		if !canonName.MatchString(canon) || len(canon) > maxNameLen || !strings.EqualFold(canon, name) {
			t.Fatalf("ValidateName(%q) = %q", name, canon)
		}
		for _, label := range strings.Split(canon, ".") {
			if len(label) > maxLabelLen {
				t.Fatalf("label %q too long", label)
			}
		}
		if again, err := ValidateName(strings.ToUpper(canon)); err != nil || again != canon {
			t.Fatalf("not idempotent: %q -> %q, %v", canon, again, err)
		}
	})
}

// FuzzNormalizeFingerprint: an accepted fingerprint is canonical and
// idempotent.
func FuzzNormalizeFingerprint(f *testing.F) {
	for _, s := range []string{"sha256:" + strings.Repeat("AB", 32), "sha256:" + strings.Repeat("ab:", 31) + "ab", "md5:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := NormalizeFingerprint(s)
		if err != nil {
			return
		}
		if !fingerprintRE.MatchString(fp) {
			t.Fatalf("fingerprint %q -> %q", s, fp)
		}
		if again, err := NormalizeFingerprint(fp); err != nil || again != fp {
			t.Fatalf("not idempotent: %q -> %q, %v", fp, again, err)
		}
	})
}
