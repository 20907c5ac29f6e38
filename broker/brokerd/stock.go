package brokerd

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

// StockConfig describes a configuration file for a stock nats-server
// (Debian's 2.9 and later) that admits gofunc certificates with the same
// subject permissions funcbroker sets (Permissions), as far as such a
// server allows: it maps each client certificate to a user by its
// subject (tls verify_and_map), so every certificate it should admit is
// listed, and what it lists is fixed until the file is written again.
type StockConfig struct {
	// Listen is the client address, HOST:PORT. Required.
	Listen string
	// CertFile, KeyFile and CAFile are the broker's certificate, key and
	// the gofunc CA certificate, as paths nats-server opens. Required.
	CertFile, KeyFile, CAFile string
	// Certificates are the client certificates to admit. Revoked ones
	// must be left out by the caller (FromCA does); expired ones and
	// roles Permissions refuses are skipped.
	Certificates []*x509.Certificate
	// MaxPayload is the largest message in bytes; zero leaves
	// nats-server's default (1 MiB).
	MaxPayload int32
	// Now is the time certificates are judged valid at; zero means
	// time.Now().
	Now time.Time
}

// noClientUser is a user no certificate maps to: subjects are
// "CN=...,OU=...,O=...", never a bare word.
const noClientUser = "gofunc-placeholder-no-certificate-maps-here"

// stockUser is one authorization user: a certificate subject and the
// union of its certificates' permissions (a renewal has the subject of
// its parent and perhaps another key, so another reply inbox).
type stockUser struct {
	subject  string
	pub, sub []string
}

// Write renders the configuration. Errors match ErrConfig.
func (c StockConfig) Write() ([]byte, error) {
	if c.Listen == "" || c.CertFile == "" || c.KeyFile == "" || c.CAFile == "" {
		return nil, fmt.Errorf("%w: stock config needs a listen address and the broker's certificate, key and CA files", ErrConfig)
	}
	users, err := c.users()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# nats-server configuration for a gofunc fleet, written by funcbroker --stock-config.\n")
	fmt.Fprintf(&b, "# It admits the %d certificate subjects below and nothing else: write it again and\n", len(users))
	fmt.Fprintf(&b, "# reload nats-server (nats-server --signal reload) after every certmaster sign,\n")
	fmt.Fprintf(&b, "# renew or revoke. A stock nats-server reads no CRL.\n")
	for _, kv := range [][2]string{{"listen", c.Listen}} {
		if err := writeKV(&b, "", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	if c.MaxPayload > 0 {
		fmt.Fprintf(&b, "max_payload: %d\n", c.MaxPayload)
	}
	b.WriteString("tls {\n")
	for _, kv := range [][2]string{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"ca_file", c.CAFile}} {
		if err := writeKV(&b, "  ", kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	b.WriteString("  verify_and_map: true\n  timeout: 10\n")
	// TLS 1.2's AEAD suites with ECDHE for gofunc's P-256 keys; TLS 1.3 is
	// negotiated whenever the client has it.
	b.WriteString("  cipher_suites: [\"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\", \"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384\", \"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305\"]\n")
	b.WriteString("}\n")
	b.WriteString("authorization {\n  users: [\n")
	// With no user at all, nats-server would admit every certificate
	// the CA signed with every permission: this one keeps the list from
	// ever being empty, and no certificate's subject maps to it.
	b.WriteString("    {user: \"" + noClientUser + "\"\n      permissions: {\n")
	writePerm(&b, "publish", nil)
	writePerm(&b, "subscribe", nil)
	b.WriteString("      }\n    }\n")
	for _, u := range users {
		if err := writeKV(&b, "    {", "user", u.subject); err != nil {
			return nil, err
		}
		b.WriteString("      permissions: {\n")
		writePerm(&b, "publish", u.pub)
		writePerm(&b, "subscribe", u.sub)
		b.WriteString("      }\n    }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes(), nil
}

// users groups the certificates to admit by subject, in a stable order.
func (c StockConfig) users() ([]stockUser, error) {
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	bySubject := map[string]*stockUser{}
	var order []string
	for _, cert := range c.Certificates {
		if now.After(cert.NotAfter) || now.Before(cert.NotBefore) {
			continue
		}
		p, err := Permissions(cert)
		if errors.Is(err, ErrRoleRefused) || errors.Is(err, identity.ErrNoRole) {
			continue
		}
		if err != nil {
			return nil, err
		}
		subject := cert.Subject.ToRDNSequence().String()
		u := bySubject[subject]
		if u == nil {
			u = &stockUser{subject: subject}
			bySubject[subject] = u
			order = append(order, subject)
		}
		u.pub = union(u.pub, p.Publish.Allow)
		u.sub = union(u.sub, p.Subscribe.Allow)
	}
	slices.Sort(order)
	out := make([]stockUser, 0, len(order))
	for _, s := range order {
		out = append(out, *bySubject[s])
	}
	return out, nil
}

func union(a, b []string) []string {
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	return a
}

// writeKV writes `key: "value"` (closing a "{" prefix's line is left to
// the caller). Values are names, subjects and paths: a quote, a
// backslash or a control character in one is refused rather than
// escaped, since nats-server's parser escapes differently from Go.
func writeKV(b *bytes.Buffer, prefix, key, value string) error {
	if strings.ContainsAny(value, "\"\\$") || strings.ContainsFunc(value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%w: %s %q: quotes, backslashes, $ and control characters cannot go into a nats-server config", ErrConfig, key, value)
	}
	fmt.Fprintf(b, "%s%s: \"%s\"\n", prefix, key, value)
	return nil
}

// writePerm writes one direction: the allow list, or a deny of
// everything when it is empty.
func writePerm(b *bytes.Buffer, dir string, allow []string) {
	quoted := make([]string, len(allow))
	for i, s := range allow {
		quoted[i] = `"` + s + `"`
	}
	if len(allow) == 0 {
		fmt.Fprintf(b, "        %s: { deny: [\">\"] }\n", dir)
		return
	}
	fmt.Fprintf(b, "        %s: { allow: [%s] }\n", dir, strings.Join(quoted, ", "))
}

// FromCA lists the certificates a stock broker should admit: every
// certificate the CA issued that is neither revoked nor expired.
func FromCA(a *ca.Authority, now time.Time) ([]*x509.Certificate, error) {
	infos, err := a.Signed()
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, in := range infos {
		if in.Revoked || in.Expired(now) {
			continue
		}
		pemBytes, err := a.CertificatePEMBySerial(in.Serial)
		if err != nil {
			return nil, err
		}
		cert, err := identity.ParseCertificatePEM(pemBytes)
		if err != nil {
			return nil, err
		}
		out = append(out, cert)
	}
	return out, nil
}
