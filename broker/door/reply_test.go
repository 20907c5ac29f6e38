package door

import "testing"

// The unsigned acknowledgement goes only to a reply subject of the call
// it acknowledges: alone, or in a group (one more numeric token).
func TestIsReplyFor(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	for reply, want := range map[string]bool{
		"gf.v1.rpl.caller." + id:                true,
		"gf.v1.rpl.caller." + id + ".0":         true,
		"gf.v1.rpl.caller." + id + ".255":       true,
		"gf.v1.rpl.caller." + id + ".x":         false,
		"gf.v1.rpl.caller." + id + ".":          false,
		"gf.v1.rpl.caller." + id + ".1.2":       false,
		"gf.v1.rpl." + id + ".1":                false, // no caller token
		"gf.v1.evt.caller." + id:                false,
		"elsewhere.caller." + id + ".1":         false,
		"gf.v1.rpl.caller.ffff" + id[4:]:        false,
		"gf.v1.rpl.caller.ffff" + id[4:] + ".1": false,
	} {
		if got := isReplyFor(reply, id); got != want {
			t.Errorf("isReplyFor(%q) = %v, want %v", reply, got, want)
		}
	}
}

func FuzzIsReplyFor(f *testing.F) {
	f.Add("gf.v1.rpl.caller.0123456789abcdef0123456789abcdef.7", "0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, reply, id string) {
		_ = isReplyFor(reply, id) // never panics
	})
}
