// Command func is gofunc's command line: it calls module methods on
// many minions at once.
//
//	func [flags] "<spec>" ping
//	func [flags] "<spec>" call MODULE METHOD [ARG...] [--strings]
//	func [flags] "<spec>" copyfile LOCAL REMOTE [--mode 0644] [--backup]
//	func [flags] "<spec>" getfile REMOTE [LOCALDIR]
//	func [flags] "<spec>" show hardware
//	func [flags] "<spec>" inventory
//	func [flags] list_minions [--refresh]
//	func [flags] group list | add NAME SPEC... | remove NAME [SPEC...] | show NAME
//	func [flags] jobs list | status ID | wait ID | delete ID
//	func [flags] transmit            (one JSON request on stdin, JSON on stdout)
//	func audit verify FILE... | query [--kind K] [--method M] ... FILE...
//
// Flags: --dir DIR (the overlord's identity directory), --certmaster
// HOST:PORT, --json or --yaml, --forks N, --timeout DUR (per host),
// --exclude SPEC, --where FACTS, --batch N|N% [--max-failures N],
// --async, --log-level. Each can also be set in DIR/gofunc.toml or as
// GOFUNC_<FLAG>; the flag wins.
//
// Arguments that are JSON literals (numbers, booleans, lists, maps) are
// sent as those values, anything else as strings; --strings sends every
// argument as a string.
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
