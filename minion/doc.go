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
//	srv := &minion.Server{Addr: ":51234", Identity: id, Audit: trail}
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
// the caller disconnects or the server shuts down. It returns a value,
// a value and an error, or just an error (then the answer is true).
// Arguments arrive as XML-RPC values and are converted to the method's
// parameter types; a wrong count or type is a CodeBadArgs fault naming
// the argument. An error of type *gofunc.Fault reaches the caller with
// its code; any other error becomes a CodeModule fault. A panic becomes
// a CodeInternal fault and is logged.
//
// Every module also answers Func's introspection methods: list_methods,
// module_description, module_version and get_method_args; the system
// module answers list_modules, list_methods, listMethods and inventory.
//
// # Faults
//
// The fault codes are gofunc.Code values: CodeParse, CodeInvalid and
// CodeTooLarge for requests that cannot be decoded, CodeNoSuchMethod,
// CodeBadArgs, CodeDenied (ACL), CodeBusy (MaxConcurrent reached),
// CodeAuditFailed (nothing ran because the audit record could not be
// written), CodeTimeout, CodeCanceled, CodeInternal, and CodeModule for
// a module's own errors.
package minion
