package filetracker_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc/modules/filetracker"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "tracked")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	conf := filepath.Join(dir, "app.conf")
	if err := os.WriteFile(conf, []byte("listen 80\n"), 0o644); err != nil {
		log.Fatal(err)
	}

	m := &filetracker.Module{StateDir: filepath.Join(dir, ".state")}
	if err := m.Track(ctx, conf); err != nil {
		log.Fatal(err)
	}
	if _, err := m.Scan(ctx); err != nil { // the baseline
		log.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("listen 8080\n"), 0o600); err != nil {
		log.Fatal(err)
	}
	if err := os.Chmod(conf, 0o600); err != nil {
		log.Fatal(err)
	}
	changes, err := m.Diff(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, mod := range changes.Modified {
		// mtime may or may not differ within the clock's resolution; leave it out.
		var attrs []string
		for _, a := range mod.Changed {
			if a != "mtime" {
				attrs = append(attrs, a)
			}
		}
		fmt.Println(filepath.Base(mod.Path), attrs, mod.Before.Mode, "->", mod.After.Mode)
	}
	// Output:
	// app.conf [sha256 size mode] 0644 -> 0600
}
