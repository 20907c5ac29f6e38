package sysctl_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/gofunc/gofunc/modules/sysctl"
)

// A Module pointed at a scratch tree instead of the real /proc/sys.
func ExampleModule_Set() {
	root, err := os.MkdirTemp("", "procsys")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	if err := os.MkdirAll(filepath.Join(root, "net", "ipv4"), 0o755); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "net", "ipv4", "ip_forward"), []byte("0\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	m := &sysctl.Module{ProcSys: root}
	change, err := m.Set(context.Background(), "net.ipv4.ip_forward", "1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s -> %s\n", change.Name, change.Old, change.New)
	// Output:
	// net.ipv4.ip_forward: 0 -> 1
}
