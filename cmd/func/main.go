// Command func is gofunc's command line: it calls module methods on
// many minions at once.
//
//	func [flags] "<spec>" ping
//	func [flags] "<spec>" call MODULE METHOD [ARG...] [--strings]
//	func [flags] "<spec>" run [--passthrough] [--] ARGV...
//	func [flags] "<spec>" doc MODULE[.METHOD]
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
// `func --help` lists the flags; each can also be set in DIR/gofunc.toml
// or as GOFUNC_<FLAG>; the flag wins.
//
// Arguments that are JSON literals (numbers, booleans, lists, maps) are
// sent as those values, anything else as strings; --strings sends every
// argument as a string.
//
// It exits 0 when every targeted host succeeded, 1 when any failed, 2 on
// a usage error, 3 when the spec matched nothing, and 130 when Ctrl-C
// interrupted it (the calls in flight are cancelled on the minions).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		// A second Ctrl-C kills func at once: only the first one is
		// caught and turned into a cancellation.
		signal.Stop(sigs)
		cancel(signalCause{s})
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	cancel(nil)
	os.Exit(code)
}
