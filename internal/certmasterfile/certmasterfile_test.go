package certmasterfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of nothing = %v, want ErrNotExist", err)
	}
	want := Entry{Certmaster: "cm.example.org:51235", CAFingerprint: "sha256:00"}
	if err := Save(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := Load(dir)
	if err != nil || got != want {
		t.Fatalf("Load = %+v, %v; want %+v", got, err, want)
	}
	for name, body := range map[string]string{
		"not JSON":   "certmaster: x",
		"no address": `{"ca_fingerprint": "sha256:00"}`,
		"too large":  `{"certmaster": "` + strings.Repeat("x", maxBytes) + `"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, Name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Load = %v, want an error", name, err)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{"certmaster": "cm:51235", "ca_fingerprint": "sha256:00"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, Name), body, 0o644); err != nil {
			t.Fatal(err)
		}
		if e, err := Load(dir); err == nil && e.Certmaster == "" {
			t.Fatalf("Load accepted an entry without an address: %q", body)
		}
	})
}
