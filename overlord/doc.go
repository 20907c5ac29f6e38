// Package overlord is gofunc's fan-out client: it calls module.method on
// many minions at once, over mutual TLS, and returns each host's typed
// result or error.
//
//	res, err := overlord.New(overlord.WithIdentity(dir)).
//		Targets("web*;@db").Call(ctx, "service", "restart", "nginx")
//	for host, r := range res {
//		fmt.Println(host, r.Value, r.Err)
//	}
//
// New never fails; a bad option or missing identity is kept and returned
// by Call (and by Client.Err), so the chain above compiles as written.
// Call's error is non-nil when any targeted host failed, and every
// host's result is still in the map.
//
// # Targets
//
// A spec is Func's grammar: a ";"-separated union of case-insensitive
// globs over minion names ("web*;db1"), "@group" for a group's members
// and "@group:glob" for the members of a group that match glob.
// Selection.Exclude removes what another spec matches. A spec that
// matches nothing is an ErrNoMatch error that says what was tried.
//
// # Errors
//
// A failed host's Result.Err is a *HostError wrapping ErrUnreachable,
// ErrTimeout, ErrImpersonation (the certificate does not name the host
// dialled), ErrUntrusted, ErrProtocol, or the minion's *gofunc.Fault:
// test with errors.Is(err, gofunc.ErrDenied) and friends. Call's own
// error is a *CallError whose Unwrap returns every host's error.
package overlord
