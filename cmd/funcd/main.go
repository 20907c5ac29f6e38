// Command funcd is the gofunc minion daemon: it enrolls with the
// certmaster on first start (waiting while the request is pending), then
// serves module calls over mutual TLS.
//
//	funcd --dir DIR --certmaster HOST:PORT --ca-fingerprint sha256:<hex> [--name NAME] [--listen ADDR:51234]
//	funcd --dir DIR --info
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
