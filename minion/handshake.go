package minion

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/pki"
)

// serverTLSConfig is the identity's server config, with callers whose
// certificate carries no gofunc role refused at the handshake too: such
// a certificate can never be allowed anything, so it gets no HTTP
// connection to hold.
func serverTLSConfig(id *identity.Identity) *tls.Config {
	cfg := id.ServerTLSConfig()
	notRevoked := cfg.VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := notRevoked(cs); err != nil {
			return err
		}
		_, err := identity.PeerFromConnState(cs)
		return err
	}
	return cfg
}

// Reasons a handshake was refused, in tls.refused records and logs.
const (
	reasonRevoked      = "revoked"
	reasonNoRole       = "no gofunc role"
	reasonUnknownCA    = "unknown CA"
	reasonExpired      = "expired or not yet valid"
	reasonBadCert      = "invalid certificate"
	reasonNoCert       = "no client certificate"
	reasonTimeout      = "timeout"
	reasonNotTLS       = "not TLS"
	reasonClosed       = "closed by the client"
	reasonOtherFailure = "handshake failed"
)

// handshakeReason names why a handshake failed, and whether it was the
// client's certificate that was refused (worth an audit record) rather
// than a connection that never got that far (scanners, timeouts).
func handshakeReason(err error) (reason string, certificate bool) {
	var unknownCA x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var header tls.RecordHeaderError
	switch {
	case errors.Is(err, identity.ErrRevoked):
		return reasonRevoked, true
	case errors.Is(err, identity.ErrNoRole):
		return reasonNoRole, true
	case errors.As(err, &unknownCA):
		return reasonUnknownCA, true
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return reasonExpired, true
	case errors.As(err, &invalid), errors.As(err, new(*tls.CertificateVerificationError)):
		return reasonBadCert, true
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		// crypto/tls has no typed error for this one.
		return reasonNoCert, true
	case errors.Is(err, os.ErrDeadlineExceeded):
		return reasonTimeout, false
	case errors.As(err, &header):
		return reasonNotTLS, false
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return reasonClosed, false
	}
	return reasonOtherFailure, false
}

// presented is the certificate a refused client showed, if any. Its
// name is the client's claim: the certificate was not accepted.
func presented(c *tls.Conn, err error) *x509.Certificate {
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) && len(cve.UnverifiedCertificates) > 0 {
		return cve.UnverifiedCertificates[0]
	}
	if certs := c.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0]
	}
	return nil
}

// gateEvents connects the listener's reports to the server's counters,
// logs and audit log.
func (s *Server) gateEvents() gateEvents {
	return gateEvents{
		evicted:   func() { s.stats.handshakesEvicted.Add(1) },
		refused:   func() { s.stats.connsRefused.Add(1) },
		handshake: s.handshakeFailed,
		acceptError: func(err error) {
			s.logger().Error("accept failed; retrying", "error", err)
		},
	}
}

// handshakeFailed counts a failed handshake. One that refused the
// client's certificate is logged and audited (tls.refused), rate
// limited per address like call refusals; the rest (timeouts, port
// scanners, clients that hang up) are only counted and logged at debug
// level.
func (s *Server) handshakeFailed(remote net.Addr, c *tls.Conn, err error) {
	s.stats.handshakesFailed.Add(1)
	reason, certificate := handshakeReason(err)
	log := s.logger().With("remote", remote.String(), "reason", reason)
	if !certificate {
		log.Debug("tls handshake failed", "error", err)
		return
	}
	peer := gofunc.Peer{Addr: remote.String()}
	if !s.refusals.admit(time.Now(), peer, audit.KindTLSRefused, "") {
		return
	}
	rec := audit.Record{
		Kind:    audit.KindTLSRefused,
		Remote:  remote.String(),
		Outcome: audit.OutcomeDenied,
		Code:    int(gofunc.CodeDenied),
		Error:   truncate(err.Error(), 512),
		Details: map[string]string{"reason": reason},
	}
	if cert := presented(c, err); cert != nil {
		rec.Details["claimed_name"] = truncate(cert.Subject.CommonName, 256)
		rec.Details["claimed_serial"] = pki.SerialHex(cert.SerialNumber)
		rec.Details["issuer"] = truncate(cert.Issuer.String(), 256)
		log = log.With("claimed_name", rec.Details["claimed_name"], "claimed_serial", rec.Details["claimed_serial"])
	}
	log.Warn("tls handshake refused", "error", err)
	if _, err := s.Audit.Append(rec); err != nil {
		s.logger().Error("audit write failed", "kind", rec.Kind, "error", err)
	}
}
