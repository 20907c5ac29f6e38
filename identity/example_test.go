package identity_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

// A certmaster serves on loopback; a minion enrolls, pinning the CA by
// its fingerprint. Here the service signs "web*" at once; by default a
// request waits for `certmaster sign`.
func ExampleEnroll() {
	dir, err := os.MkdirTemp("", "ca")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	authority, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		log.Fatal(err)
	}
	svc := &ca.Service{Authority: authority, Autosign: "web*"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := identity.Enroll(ctx, identity.EnrollRequest{
		Certmaster:    ln.Addr().String(),
		CAFingerprint: authority.Fingerprint(),
		Name:          "web1.example",
		Addr:          "127.0.0.1:51234",
		Dir:           filepath.Join(dir, "minion"),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Name(), id.Role(), id.Leaf().IPAddresses)

	svc.Shutdown(ctx)
	fmt.Println(<-done)
	// Output:
	// web1.example minion [127.0.0.1]
	// http: Server closed
}
