// Package minion is gofunc's embeddable server: it runs the calls an
// overlord sends.
//
// A Server is shaped like net/http.Server. It serves XML-RPC over HTTPS
// and requires every caller to present a certificate signed by the CA
// (and not revoked). For each request it takes the caller's identity
// from that request's own connection, decodes the call with bounded
// limits, checks the ACL, writes an audit record (and fsyncs it) before
// the method runs, runs it with the caller's deadline, writes an end
// record, and answers with the result or a fault.
//
//	srv := &minion.Server{Addr: ":51234", Identity: id, Audit: trail, JobDir: "/var/lib/gofunc/jobs"}
//	if err := srv.Register("test", &test.Module{}); err != nil {
//		return err
//	}
//	go srv.ListenAndServe()
//	defer srv.Shutdown(ctx)
//
// # Modules
//
// Any Go value can be a module. Its exported methods (except Doc and
// Close) become "module.method_name" on the wire, the method name in
// snake_case unless the module's gofunc.ModuleDoc gives another. A
// method may take a context.Context first, which carries the caller's
// deadline and identity (gofunc.PeerFromContext) and is cancelled when
// the caller disconnects, the deadline passes or the server shuts down;
// modules pass it on (command.run kills its process group with it). A
// method returns a value, a value and an error, or just an error (then
// the answer is true). Arguments arrive as XML-RPC values and are
// converted to the method's parameter types (64-bit integers, base64 to
// []byte, dateTime to time.Time, structs to Go structs and maps, arrays
// to slices, nil to nil pointers, maps, slices and interfaces); a wrong
// count or type is a CodeBadArgs fault naming the argument. An error of
// type *gofunc.Fault reaches the caller with its code; any other error
// becomes a CodeModule fault. A panic becomes a CodeInternal fault and
// is logged.
//
// Every module also answers Func's introspection methods: list_methods,
// module_description, module_version and get_method_args; the system
// module answers list_modules, list_methods, listMethods and inventory.
//
// # Authorization
//
// The ACL (Server.ACL, DefaultACL when nil) grants method globs to
// identities by certificate name and role; deny rules win over grants,
// and a Dangerous method is granted only by a rule naming it exactly.
// Denials are CodeDenied faults saying which rule denied, and are
// audited. ParseACL and LoadACLDir read the acl file format; SetACL
// replaces the rules while the server runs, SetIdentity the
// certificate and CRL. The CRL is checked on every request, so a
// revocation also cuts off connections made before it.
//
// Given its certmaster's address (Server.Certmaster), the server keeps
// its identity fresh itself while it serves: it fetches the CRL every
// CRLInterval (30 s by default) and renews its certificate at two
// thirds of its lifetime, saving both in the identity's directory;
// Shutdown and Close stop that. A revoked overlord is therefore refused
// at most one refresh interval plus one CRL fetch after `certmaster
// revoke`: on its next call over a connection it already has, and at
// the handshake of new ones. A minion with no certmaster keeps the CRL
// it has until SetIdentity brings a new one, and its certificate
// expires.
//
// # Limits
//
// Every resource a caller can make the minion spend is bounded:
// connections in their TLS handshake (MaxHandshakes, HandshakeTimeout;
// when they are all taken the oldest handshake of the busiest address
// is closed to make room), authenticated connections in all and per
// remote address (MaxConns, MaxConnsPerIP), the headers
// (ReadHeaderTimeout), the request (ReadTimeout, MaxBodyBytes, a
// nesting depth of 32), calls in flight (MaxConcurrent; beyond it,
// CodeBusy at once and no audit write), the call's duration (the
// caller's Gofunc-Timeout header, capped by MaxCallTimeout), the result
// (MaxResultBytes) and the writing of the answer (WriteTimeout). A slow
// or abusive caller is cut off or refused without holding up the
// others. Stats counts what was refused.
//
// # Async jobs
//
// A call to async.module.method is authorized like module.method and
// answered at once with a job id (128 random bits, hex); the method runs
// in the background with MaxCallTimeout as its deadline. jobs.job_status
// answers Func's [code, result] pair: [0, -1] while it runs (JobRunning),
// [1, result] when it finished (JobFinished; a failure's result is a
// struct {faultCode, faultString}), [2, 0] for an id the caller does not
// own or that has expired, and [2, fault] for a job cut off by a restart
// (JobLostInSpace). jobs.list lists the caller's jobs and jobs.cancel
// cancels one. Only the identity (certificate name and role) that
// started a job sees or cancels it. With Server.JobDir set, job state
// and results are kept on disk (files 0600, atomic writes) and survive a
// restart; finished jobs are purged after JobRetention. The start and
// end records of a job carry its id in Details["job"].
//
// # Audit
//
// No audit, no execution: the start record of every call is written and
// fsynced before the method runs, and if it cannot be written the call
// is refused with CodeAuditFailed. Arguments are recorded as
// audit.SummarizeArgs makes them: Secret arguments redacted, Content
// arguments as their size and SHA-256. End records carry the outcome,
// the duration and the SHA-256 of the response. Denials and rejected
// requests have their own records; busy refusals are only counted.
//
// A request is taken in stages, each paid for only once the one before
// has passed: the caller's certificate, the method name (read from the
// first bytes of the body, at most xmlrpc.MaxHeadBytes), the ACL and a
// MaxConcurrent slot, and only then the parameters. A caller that may
// not make a call, or that finds the minion busy, costs it no more than
// the method name.
//
// The record of a refused request is bounded whatever was sent: when
// the parameters were not decoded (the ACL refused the call by its
// name) and the body is small (16 KiB), they are decoded for the record
// and summarized like a call's; otherwise the rest of the body is read
// without being decoded and the record holds its parameter count, size
// and SHA-256 (no digest for methods with secret arguments). Refusal
// records (call.denied, call.rejected) are rate limited per caller
// certificate: a burst of 20, then one a second; the refusals beyond
// it are counted, and a call.suppressed record per caller says how many
// and of which methods, within ten seconds and when the server stops.
//
// # Other transports
//
// The HTTPS listener is one door into the minion. Another transport (a
// message broker, say) hands each call to Server.Handle with the
// caller's certificate, the transport's name, the call's id, its
// deadline and the XML-RPC body: Handle verifies the certificate
// against the CA and the CRL and then runs the same dispatcher as the
// listener (ACL, limits, audit before and after, the method), so a new
// transport adds no check of its own and skips none. The audit log
// records the transport of every such call (Details "via").
//
// # Faults
//
// The fault codes are gofunc.Code values: CodeParse, CodeInvalid and
// CodeTooLarge for requests that cannot be decoded, CodeNoSuchMethod,
// CodeBadArgs, CodeDenied (ACL, revoked certificate), CodeBusy
// (MaxConcurrent or MaxJobs reached), CodeAuditFailed (nothing ran
// because the audit record could not be written), CodeTimeout,
// CodeCanceled, CodeNotFound (jobs.cancel of an unknown job),
// CodeInternal, and CodeModule for a module's own errors.
package minion
