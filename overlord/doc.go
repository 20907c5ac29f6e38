// Package overlord is gofunc's fan-out client: it calls module.method on
// many minions at once, over mutual TLS, and returns each host's typed
// result or error.
//
//	res, err := overlord.New(overlord.WithIdentityDir(dir)).
//		Targets("web*;@db").Call(ctx, "service", "restart", "nginx")
//	for host, r := range res {
//		fmt.Println(host, r.Value, r.Err)
//	}
//
// New never fails; a bad option or missing identity is kept and returned
// by Call (and by Client.Err), so the chain above compiles as written.
// Call's error is non-nil when any targeted host failed, and every
// host's result is still in the map. With no options, New reads
// everything from DefaultDir() ($GOFUNC_DIR, else ~/.gofunc): ca.pem,
// cert.pem, key.pem, the minion list minions.json and the groups file
// groups.
//
// A Client keeps one TLS connection per minion and reuses it across
// calls (idle ones close after Config.IdleTimeout; reopening resumes the
// TLS session). Keep one Client for the life of the program and Close it.
//
// # Minions
//
// Config.Minions says where the list of minions comes from: File (the
// cached minions.json, the default), Certmaster (asks the certmaster
// over mutual TLS and refreshes the cache), CertDir (a directory of
// minion certificates), Static, or any SourceFunc. Config.Resolver maps
// a minion to the address to dial; the minion's certificate must name
// the minion whatever the address, or the call fails as an
// impersonation.
//
// # Targets
//
// A spec is Func's grammar: a ";"-separated union of case-insensitive
// globs over minion names ("web*;db1"), "@group" for a group's members
// and "@group:glob" for the members of a group that match glob. Groups
// come from the groups file (see ParseGroups; `func group` edits it) and
// from WithGroups. Selection.Exclude removes what another spec matches;
// Selection.Where and WhereFacts keep the minions whose facts match
// ("os=debian,cpu_count>=4"), fetched with one fan-out of facts.list
// and cached for Config.FactsTTL. A selection that matches nothing is an
// ErrNoMatch error that says what was tried.
//
// # Calls
//
// Call waits for every host; Stream yields each host's result as it
// arrives, and breaking out of its loop (or cancelling the context)
// stops the fan-out and abandons the calls in flight, which makes the
// minions cancel the work. Selection.Batch makes either go a batch of
// hosts at a time and stop after too many failures (rolling changes);
// hosts never called get ErrSkipped. Selection.Each runs a multi-call
// conversation per host, on which CopyFile, GetFile and Inventory are
// built. Every host's call is bounded by Config.HostTimeout, so a hung
// minion never holds up the rest, and at most Config.Forks hosts are
// called at once.
//
// # Transports
//
// Each call to one minion goes through a Transport: by default direct
// HTTPS to the minion's address over mutual TLS; WithTransport puts
// another in its place (a message broker). Targeting, fan-out, the
// audit log, decoding and the classification of failures stay the
// Client's, whatever carries the bytes. A transport that also implements
// BatchTransport gets the fan-out's hosts a group at a time (a broker
// signs one call for the group) with the same results.
//
// # Async jobs
//
// CallAsync starts a call as a job owned by the Client and returns at
// once; Submit only records it, for RunJob to carry out elsewhere (the
// func command's --async starts a detached `func jobs run`). Jobs, their
// state and every host's result live in the JobStore given with
// WithJobStore, where Job, WaitJob and Jobs find them from any process
// and after a restart: package overlord/sqlitejobs keeps them in SQLite
// (WAL mode, mode 0600), as the func command does. Without a store,
// async calls fail with ErrNoJobStore and no SQLite is linked. A job whose runner stops before it finishes (Close,
// crash, reboot: its heartbeat goes stale) is JobInterrupted: the
// results recorded are kept, the other hosts get ErrInterrupted, and
// nothing resumes it.
//
// # Errors
//
// A failed host's Result.Err is a *HostError wrapping ErrUnreachable,
// ErrTimeout, ErrImpersonation (the certificate does not name the host
// dialled), ErrUntrusted, ErrProtocol, ErrSkipped, ErrInterrupted, or
// the minion's *gofunc.Fault: test with errors.Is(err,
// gofunc.ErrDenied) and friends, or name it with ErrorKind. An answer
// over Config.MaxResultBytes is a CodeTooLarge fault. Call's own error is
// a *CallError whose Unwrap returns every host's error.
//
// # Audit
//
// With Config.Audit set, every call is recorded before any host is
// called (an "overlord.call" record: caller, method, summarized
// arguments, targets) and when it ends (KindCallEnd: each host's
// outcome, under the same CallID). If the first record cannot be
// written, nothing is called.
package overlord
