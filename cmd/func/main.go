// Command func is gofunc's command line: it calls module methods on
// many minions at once.
//
//	func --dir DIR "<spec>" ping
//	func --dir DIR "<spec>" call MODULE METHOD [ARG...]
//	func --dir DIR list_minions [--refresh]
//	func audit verify FILE...
//
// It exits 0 when every targeted host succeeded, 1 when any failed, 2 on
// a usage error and 3 when the spec matched nothing.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
