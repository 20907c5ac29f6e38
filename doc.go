// Package gofunc controls a fleet of machines securely from Go code.
//
// An overlord fans out typed calls, module.method(args), to minions; a
// certmaster (the CA) enrolls them. Everything travels as XML-RPC over
// mutual TLS, every call is authorized per caller, and every call is
// written to a tamper-evident audit log before it runs. gofunc succeeds
// Fedora's Func (2007): the same model and wire protocol family, none of
// its security holes.
//
// This root package holds only the vocabulary both ends share, so that
// the overlord and the minion never import each other: fault codes and
// the Fault error type, module documentation types, and the caller's
// identity. The work is done by the packages beside it:
//
//   - overlord: the fan-out client. New(opts...).Targets(spec).Call(ctx,
//     module, method, args...) returns every host's typed result or error.
//   - minion: the embeddable server, shaped like net/http.Server, with
//     mutual TLS, revocation checks, ACLs, limits and write-ahead audit.
//   - ca: the certificate authority, the certmaster service, enrollment
//     (pinned by fingerprint or token), revocation and renewal.
//   - audit: the append-only, hash-chained JSON-lines log and its verifier.
//   - modules: the built-in modules (test, command, copyfile, getfile,
//     service, process, hardware and facts, sysctl, mount, disk, users,
//     packages, networktest, filetracker, nagios).
//   - fleettest: a CA, minions and an overlord in one call, for tests.
//
// # A complete program
//
// This program starts a two-minion fleet on loopback and adds numbers on
// both; against a real fleet, replace fleettest with
// overlord.New(overlord.WithIdentityDir(dir)).
//
//	package main
//
//	import (
//		"context"
//		"fmt"
//		"log"
//
//		"github.com/gofunc/gofunc/fleettest"
//	)
//
//	func main() {
//		f, err := fleettest.New(fleettest.Config{Minions: 2})
//		if err != nil {
//			log.Fatal(err)
//		}
//		defer f.Close()
//		res, err := f.Overlord().Targets("*").Call(context.Background(), "test", "add", 2, 3)
//		if err != nil {
//			log.Fatal(err) // non-nil when any host failed; res still holds every host
//		}
//		for _, host := range res.Hosts() {
//			fmt.Println(host, res[host].Value)
//		}
//	}
//
// # Faults
//
// Errors that cross the wire are *Fault values with a Code. Codes are
// part of the protocol and never renumbered; errors.Is(err, ErrDenied)
// matches any fault with the denied code, local or remote.
package gofunc
