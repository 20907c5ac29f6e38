// Command funcbroker is gofunc's NATS broker: minions that cannot be
// reached (behind NAT, firewalls, on laptops) dial out to it, and
// overlords reach them through it. It is nats-server, embedded, with
// gofunc's certificates as the only way in and subject permissions by
// role and name (package broker/brokerd).
//
//	funcbroker --dir DIR [--listen ADDR:4222] [--cluster ADDR:6222 --routes URL,...]
//	           [--leaf-listen ADDR:7422] [--leaf-remotes URL,...] [--certmaster HOST:PORT]
//
// DIR holds the broker's credentials (a broker certificate: certmaster
// issue --role broker --dns HOST --out DIR NAME). Every flag can also
// come from DIR/gofunc.toml, /etc/gofunc/funcbroker.toml or
// GOFUNC_<FLAG>.
//
// It logs to stderr, stops on SIGTERM and reloads its certificate and
// CRL on SIGHUP (dropping connections whose certificate is now revoked).
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
