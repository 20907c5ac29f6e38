package cliconf

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kong"
)

type sizeCLI struct {
	Dir string
	Max Size `default:"1GiB"`
}

func parseSize(t *testing.T, dir string, args ...string) (Size, error) {
	t.Helper()
	var cli sizeCLI
	p, err := kong.New(&cli, kong.Resolvers(Resolver(dir, func(string) string { return "" })), kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Parse(args)
	return cli.Max, err
}

func TestSize(t *testing.T) {
	for in, want := range map[string]Size{
		"1GiB": 1 << 30, "512MiB": 512 << 20, "2 GB": 2e9, "1048576": 1 << 20, "1.5KiB": 1536, "0": 0, "4gib": 4 << 30,
	} {
		got, err := parseSize(t, "", "--max", in)
		if err != nil || got != want {
			t.Errorf("--max %q = %d, %v; want %d", in, got, err, want)
		}
	}
	if got, err := parseSize(t, ""); err != nil || got != 1<<30 || got.String() != "1.0 GiB" {
		t.Errorf("default = %d (%s), %v; want 1 GiB", got, got, err)
	}
	for _, in := range []string{"lots", "-1", "1XB", "", "99999999999EiB", "1e30"} {
		if got, err := parseSize(t, "", "--max", in); err == nil {
			t.Errorf("--max %q = %d, want an error", in, got)
		}
	}
	dir := t.TempDir()
	for file, want := range map[string]Size{"max = 4096\n": 4096, "max = \"8KiB\"\n": 8192} {
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := parseSize(t, dir); err != nil || got != want {
			t.Errorf("gofunc.toml %q: max = %d, %v; want %d", file, got, err, want)
		}
	}
	for _, file := range []string{"max = -4096\n", "max = 1.5\n", "max = true\n"} {
		if err := os.WriteFile(filepath.Join(dir, FileName), []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := parseSize(t, dir); err == nil {
			t.Errorf("gofunc.toml %q: max = %d, want an error", file, got)
		}
	}
}

func FuzzSize(f *testing.F) {
	for _, s := range []string{"1GiB", "512 MB", "-1", "1e3", "0x10", "1.5KiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var cli sizeCLI
		p, err := kong.New(&cli, kong.Exit(func(int) {}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Parse([]string{"--max=" + s}); err == nil && cli.Max < 0 {
			t.Fatalf("--max=%q gave a negative size %d", s, cli.Max)
		}
	})
}
