// Command certmaster is gofunc's certificate authority: it creates the
// CA, serves enrollment and renewal over TLS, and gives the admin the
// commands to list, sign, reject, clean and revoke certificates, issue
// overlord credentials and manage enrollment tokens.
//
//	certmaster init   --dir DIR [--name "gofunc CA"]      create a CA; print its fingerprint
//	certmaster fingerprint --dir DIR                       print sha256:<hex> of the CA certificate
//	certmaster serve  --dir DIR [--listen :51235] [--autosign GLOB]
//	certmaster list   --dir DIR                            pending requests
//	certmaster list-signed --dir DIR                       signed certificates with expiry
//	certmaster sign|reject|clean --dir DIR GLOB...
//	certmaster revoke --dir DIR NAME|SERIAL [--reason R]
//	certmaster issue-overlord --dir DIR --out OUTDIR NAME
//	certmaster token create|list|revoke --dir DIR ...
//	certmaster crl    --dir DIR [--out FILE]
//
// Every flag can also be set in DIR/gofunc.toml or as GOFUNC_<FLAG>; the
// flag wins. --json prints machine-readable output. The exit status is 0
// on success, 1 on failure and 2 on a usage error. serve logs to stderr,
// stops gracefully on SIGTERM and reloads its certificate on SIGHUP.
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
