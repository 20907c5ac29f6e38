// Command funcweb is gofunc's web dashboard: the fleet, enrollment,
// jobs with live per-host results, the audit logs, the minions' events
// and a Run form, over
// mutual TLS with the same certificates and roles as the rest of gofunc.
//
//	funcweb --dir DIR [--listen 127.0.0.1:51236] [--certmaster HOST:PORT] [--ca-dir CADIR]
//
// DIR holds the dashboard's own credentials (a delegate certificate:
// certmaster issue --role delegate --dns HOST --out DIR funcweb), its job
// store (jobs.db), its audit log (audit.log) and optionally its ACL
// (web.acl). People use it with viewer, operator or admin certificates
// (certmaster issue --role viewer --out DIR NAME writes NAME.p12 to
// import into a browser).
//
// It logs to stderr, stops on SIGTERM and reloads its certificate and
// CRL on SIGHUP.
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
