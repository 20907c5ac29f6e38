package readmecheck

import (
	"slices"
	"testing"

	"github.com/alecthomas/kong"
)

func TestCheck(t *testing.T) {
	var cli struct {
		Dir    string `help:"."`
		Hidden bool   `hidden:""`
		Serve  struct {
			Listen string `help:"."`
		} `cmd:""`
		List struct{} `cmd:""`
	}
	p, err := kong.New(&cli, kong.Name("tool"))
	if err != nil {
		t.Fatal(err)
	}
	if got := Check(p.Model, "tool serve --dir D [--listen :1]\ntool list --dir D"); len(got) != 0 {
		t.Errorf("a complete text: %q", got)
	}
	got := Check(p.Model, "tool serve --dir D [--lisen :1] [--old]")
	want := []string{`flag --listen (serve) is not in the README`, `command "list" is not in the README`,
		`the README names --lisen, which tool does not have`, `the README names --old, which tool does not have`}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Check missed %q; got %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Check = %q", got)
	}
	if l := Lines("a x\n  --y\nb z\n  --w\na v", "a"); l != "a x\n  --y\na v" {
		t.Errorf("Lines = %q", l)
	}
}
