package overlord_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// Fetch a file from every minion into a local directory, refusing any
// copy over 1 MiB (and any that would not fit on the disk).
func ExampleFiles() {
	f, err := fleettest.New(fleettest.Config{Minions: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	dir, err := os.MkdirTemp("", "fetched")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "motd")
	if err := os.WriteFile(src, []byte("welcome\n"), 0o644); err != nil {
		fmt.Println(err)
		return
	}
	files := &overlord.Files{Dir: filepath.Join(dir, "out"), Name: "motd", MaxBytes: 1 << 20}
	res, err := f.Overlord().Targets("*").GetFileTo(context.Background(), src, files.Open)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range res.Hosts() {
		b, _ := os.ReadFile(files.Path(h))
		fmt.Printf("%s %s: %q\n", h, filepath.Base(files.Path(h)), b)
	}
	// A copy larger than MaxBytes is refused before it is fetched.
	files.MaxBytes = 4
	res, _ = f.Overlord().Targets("m1.test").GetFileTo(context.Background(), src, files.Open)
	fmt.Println(errors.Is(res["m1.test"].Err, gofunc.ErrTooLarge))
	// Output:
	// m1.test motd: "welcome\n"
	// m2.test motd: "welcome\n"
	// true
}
