// Package ca is gofunc's certificate authority: the CA directory, the
// identities it issues, the certmaster network service and the Enroll
// client a minion uses to get its certificate.
//
// # Identities and roles
//
// Every party holds an [Identity]: a certificate, its ECDSA P-256 key and
// the CA certificate. The CA writes a role into every certificate it
// signs (minion, overlord or certmaster; see [RoleOf]) and builds every
// subject itself from a name that passed [ValidateName]: nothing but the
// public key is taken from a certificate request, so no requester can
// choose its role or copy another's subject. [Identity.ServerTLSConfig]
// and [Identity.ClientTLSConfig] give mutual-TLS configs that trust only
// the CA, check the CRL, and pick up a renewed certificate without a
// restart; [PeerFromConnState] turns a verified connection into a
// [gofunc.Peer].
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
//	  index.json         every issued certificate (serial, name, role, validity,
//	                     key fingerprint, minion address, revocation) and the
//	                     CRL number
//	  certs/SERIAL.pem   every issued certificate, by lower-case hex serial
//	  requests/NAME.json pending and rejected requests (CSR, source address,
//	                     time, requested address, key fingerprint)
//	  tokens.json        enrollment tokens, SHA-256 hashes only, 0600
//	  lock               flock(2) lock file
//	  audit.log          the certmaster's audit log (opened by the daemon and
//	                     the certmaster command, not by this package)
//	  gofunc.toml        optional command-line defaults
//
// Every file is written atomically (temporary file, fsync, rename, fsync
// of the directory). Every change runs under an exclusive lock: a
// sync.Mutex for the goroutines of one process and flock(2) on DIR/lock
// for other processes, so the certmaster daemon and an admin's
// certmaster command can sign at the same moment without duplicate
// serials or lost updates; each change re-reads the state inside the
// lock. Serial numbers are random 128-bit integers, checked against the
// index before use.
//
// # Validity, renewal, revocation
//
// Certificates last Config.Validity (one year by default) and never
// outlive the CA. A holder renews over mutual TLS with its current,
// unrevoked certificate ([Identity.RenewIfDue], [RenewLoop], at two
// thirds of the lifetime) and gets a new certificate for the same name
// and role with no admin action. [Authority.Revoke] takes RFC 5280 reason
// codes and publishes a new CRL (DIR/crl.pem and the get_crl call);
// identities load it with [Identity.SetCRL] or [CRLLoop] and refuse
// revoked peers at the handshake. Connections made before a revocation
// are cut off by servers that call [Identity.Revoked] per request. An
// identity with no CRL loaded refuses nobody, and a CRL past its
// NextUpdate stays in force (a certmaster outage must not stop the
// fleet); [CRLLoop] keeps it fresh.
//
// # Enrollment
//
// The certmaster ([Service]) serves XML-RPC over TLS on port 51235. A
// minion calls [Enroll]: it pins the CA by fingerprint, sends a CSR with
// its name and listen address, and polls until the admin signs (or an
// enrollment token or the autosign glob signs at once). A second key
// asking for a name that has a valid certificate is a conflict, shown to
// the admin and never signed silently.
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
//	id, err := ca.Enroll(ctx, ca.EnrollRequest{
//		Certmaster:    "127.0.0.1:51235",
//		CAFingerprint: authority.Fingerprint(),
//		Name:          "web1.example.com",
//		Addr:          "web1.example.com:51234",
//		Dir:           "/var/lib/gofunc/minion",
//	})
//	// ... blocks until `certmaster sign web1*`, then:
//	srv := &http.Server{TLSConfig: id.ServerTLSConfig()}
package ca
