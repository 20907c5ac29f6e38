// Package identity is what every end of a gofunc connection holds and
// needs: an [Identity] (certificate, key, CA certificate and CRL), the
// mutual-TLS configs made from it, the peer a verified connection proves,
// and the clients of the certmaster ([Enroll], [Identity.Renew],
// [FetchCRL], [FetchMinions]). Overlords and minions import this package
// and never the certificate authority itself (package ca), so a program
// that only makes calls links no signing code, request store or
// certmaster service.
//
// # Identities and roles
//
// An identity directory holds ca.pem (the CA certificate), cert.pem and
// key.pem (0600) and, once fetched, crl.pem; [Load] reads it and
// [Identity.Save] writes it atomically. The CA writes a role into every
// certificate it signs (minion, overlord or certmaster; see [RoleOf]) and
// builds every subject itself from a name that passed [ValidateName].
// [Identity.ServerTLSConfig] and [Identity.ClientTLSConfig] give configs
// that trust only the CA, check the CRL, and pick up a renewed
// certificate without a restart; [PeerFromConnState] turns a verified
// connection into a [gofunc.Peer].
//
// # Revocation and renewal
//
// [Identity.SetCRL] installs a CRL signed by the CA (never an older one);
// from then on revoked peers are refused at the handshake, and servers
// that call [Identity.Revoked] per request cut off older connections
// too. An identity with no CRL refuses nobody, and a CRL past its
// NextUpdate stays in force (a certmaster outage must not stop the
// fleet). Certificates are renewed at two thirds of their lifetime
// ([RenewAt], [Identity.RenewIfDue]) over mutual TLS, with no admin
// action. A [Refresher] does both while a program runs: the minion
// server and the overlord client start one when they are given their
// certmaster's address.
//
// # Enrollment
//
// A new minion calls [Enroll]: it pins the CA by fingerprint (nothing is
// sent to a certmaster whose CA does not match), sends a request with its
// name and listen address, and polls until the admin signs it (or an
// enrollment [Token] or the certmaster's autosign glob does):
//
//	id, err := identity.Enroll(ctx, identity.EnrollRequest{
//		Certmaster:    "cm.example.org:51235",
//		CAFingerprint: "sha256:...", // what `certmaster fingerprint` prints
//		Name:          "web1.example.org",
//		Addr:          "web1.example.org:51234",
//		Dir:           "/var/lib/gofunc",
//	})
//	// ... blocks until `certmaster sign web1*`, then:
//	srv := &http.Server{TLSConfig: id.ServerTLSConfig()}
package identity
