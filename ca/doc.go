// Package ca is gofunc's certificate authority: the CA directory and the
// certificates, requests, tokens and CRLs it keeps ([Authority]), and the
// certmaster network service ([Service]). What the holders of its
// certificates need (identities, TLS configs, enrollment, renewal and
// CRL clients) is package identity, which overlords and minions import
// instead of this one.
//
// # Roles and names
//
// The CA writes a role into every certificate it signs (minion,
// overlord or certmaster; see identity.RoleOf) and builds every subject
// itself from a name that passed identity.ValidateName: nothing but the
// public key is taken from a certificate request, so no requester can
// choose its role or copy another's subject.
//
// # Errors
//
// Every error a certmaster client may receive is a *gofunc.Fault
// ([ErrBadCSR], [ErrBadRequest], [ErrConflict], [ErrNotFound],
// [ErrTooManyRequests], [ErrBadToken]), so errors.Is(err,
// gofunc.ErrConflict) gives the same answer on the certmaster as in the
// client that got the fault. Other errors reach clients as
// CodeInternal, their detail in the log.
//
// # CA directory layout
//
//	DIR/                 0700
//	  ca.pem             the CA certificate (what minions pin: sha256 of its DER)
//	  ca-key.pem         the CA private key, PKCS#8 PEM, 0600; never leaves DIR
//	  cert.pem, key.pem  the certmaster's own server identity (key 0600), made by
//	                     the Service on first start; DIR is thus an identity
//	                     directory too
//	  crl.pem            the current CRL, remade on every revocation
//	  index.jsonl        the index: an append-only journal of JSON lines,
//	                     one per change (a certificate issued, with its
//	                     serial, name, role, validity, key fingerprint,
//	                     minion address and DER; a revocation; a new CRL
//	                     number); see index.go for why a journal
//	  requests/NAME.json pending and rejected requests (CSR, source address,
//	                     time, requested address, key fingerprint)
//	  tokens.json        enrollment tokens, SHA-256 hashes only, 0600
//	  reserve            disk space set aside so that a revocation can be
//	                     written when the disk is full (see reserve.go)
//	  lock               flock(2) lock file
//	  audit.log          the certmaster's audit log (opened by the daemon and
//	                     the certmaster command, not by this package)
//	  gofunc.toml        optional command-line defaults
//
// Every file is written atomically (temporary file, fsync, rename, fsync
// of the directory), except the journal, which is appended to (write,
// fsync; a torn last line left by a crash is ignored by readers and cut
// off by the next writer). Every change runs under an exclusive lock: a
// sync.Mutex for the goroutines of one process and flock(2) on DIR/lock
// for other processes, so the certmaster daemon and an admin's
// certmaster command can sign at the same moment without duplicate
// serials or lost updates; each change first reads the journal lines
// appended since this process last looked. Serial numbers are random
// 128-bit integers, checked against the index before use. A directory
// of the first version (index.json and certs/) is migrated when opened.
//
// Enrollment requests that arrive together are committed together: one
// lock, one audit write and one journal append for the group, with the
// certificates signed beforehand on every core. A fleet enrolling at
// once therefore costs a few fsyncs per group, and a signature costs the
// same with 50,000 certificates in the index as with ten.
//
// # Validity, renewal, revocation
//
// Certificates last Config.Validity (one year by default) and never
// outlive the CA. A holder renews over mutual TLS with its current,
// unrevoked certificate (identity's Identity.RenewIfDue, at two thirds of
// the lifetime) and [Authority.Renew] gives it a new certificate for the
// same name and role with no admin action: once per certificate, not
// before it is due, within Config.MaxLive valid certificates per name
// ([Authority.AllowRekey] lifts the first two once, and the re-keyed
// certificate supersedes the others). [Authority.Revoke] takes RFC 5280
// reason codes, revokes the renewals descended from what it revokes,
// and publishes a new CRL (DIR/crl.pem and the get_crl call), which
// identities load and enforce; it works on a full disk too (see
// reserve.go).
//
// # Names and roles
//
// A name belongs to one role across every certificate the CA ever
// issued (ErrNameTaken): a minion cannot enroll under an overlord's name,
// in any case, nor an overlord take a minion's. The certmaster's own
// server certificate is outside the rule.
//
// # Unauthenticated callers
//
// Refusals of requests without a certificate are audited in bounded
// records, rate-limited per source (an IPv4 address or an IPv6 /64) and
// in all, with the ones left out counted; the Service caps connections
// per source and in all.
//
// # Enrollment
//
// The certmaster ([Service]) serves XML-RPC over TLS on port 51235. A
// minion calls identity.Enroll: it pins the CA by fingerprint, sends a
// CSR with its name and listen address, and polls until the admin signs
// (or an enrollment token or the autosign glob signs at once). A second
// key asking for a name that has a valid certificate is a conflict,
// shown to the admin and never signed silently.
//
// A complete certmaster and minion in one program:
//
//	authority, err := ca.Init(ca.Config{Dir: "/var/lib/gofunc/ca"})
//	if err != nil {
//		log.Fatal(err)
//	}
//	svc := &ca.Service{Authority: authority, Addr: "127.0.0.1:51235"}
//	go svc.ListenAndServe()
//	defer svc.Close()
//
//	// On the minion (here: the same program), with the fingerprint
//	// that `certmaster fingerprint` prints:
//	id, err := identity.Enroll(ctx, identity.EnrollRequest{
//		Certmaster:    "127.0.0.1:51235",
//		CAFingerprint: authority.Fingerprint(),
//		Name:          "web1.example.com",
//		Addr:          "web1.example.com:51234",
//		Dir:           "/var/lib/gofunc/minion",
//	})
//	// ... blocks until `certmaster sign web1*`, then:
//	srv := &http.Server{TLSConfig: id.ServerTLSConfig()}
package ca
