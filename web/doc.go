// Package web is gofunc's web dashboard (the funcweb command), usable as
// an http.Handler inside any Go program. It has the same identity and
// authorization as the func command line:
//
//   - People are identified by mutual TLS, with certificates the
//     certmaster issued for the roles viewer, operator and admin
//     (certmaster issue --role viewer --out DIR NAME writes NAME.p12 for
//     a browser). No passwords. Each request is checked against the CA
//     and its CRL, whatever TLS server it came through.
//   - Every route names the least role it needs (the route table is the
//     mux: a route cannot exist without a policy). Viewers look,
//     operators also run calls, admins also sign, reject and revoke.
//   - What a person may see and run is further bounded by the
//     dashboard's ACL (Config.ACL, minion ACL syntax), pages and streams
//     alike: a viewer's job stream carries nothing of a job the ACL
//     hides.
//   - The dashboard calls minions with its own certificate (role
//     delegate) and names the person it acts for; minions bound that
//     certificate with their own ACLs.
//   - Mutations are POST only, behind http.CrossOriginProtection; every
//     response carries a strict Content-Security-Policy
//     (default-src 'self'; frame-ancestors 'none'): no inline script, no
//     framing.
//
// Every page has a JSON twin: send Accept: application/json. Pages:
// Attention (/), Fleet (/fleet, /fleet/NAME), Enrollment (/enrollment),
// Jobs (/jobs: the job store's jobs and every call in the audit logs;
// /jobs/ID and its live stream), Audit (/audit, JSON-lines export at
// /audit/export), Events (/events and its live stream) and Run (/run).
//
// Live streams are server-sent events whose ids are cursors: a job's
// result numbers in the job store, the minions' event cursors. A stream
// resumes after Last-Event-ID (or ?after=N, ?since=CURSORS), and a page
// and its stream share one cursor, so nothing recorded in between is
// lost or sent twice.
//
// The pages are html/template files and htmx (vendored, see
// static/VENDOR.md) embedded in the binary; there is no JavaScript build
// step.
//
//	dash, err := web.New(web.Config{Overlord: client, Jobs: store, CA: web.LocalCA(authority),
//		AuditLogs: []web.AuditLog{{Name: "overlord", Path: "/var/lib/gofunc/audit.log"}}})
//	if err != nil {
//		return err
//	}
//	defer dash.Close()
//	srv := &http.Server{Addr: "127.0.0.1:51236", Handler: dash, TLSConfig: id.ServerTLSConfig()}
//	return srv.ListenAndServeTLS("", "")
package web
