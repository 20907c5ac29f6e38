// Package broker carries gofunc calls through a NATS broker, so minions
// that cannot be reached (behind NAT, firewalls, on laptops) dial out to
// it instead. The broker is trusted for delivery only: every call is
// signed by its caller over its id, times, method, audience, reply
// subject and body, and every answer by its minion, so a broker that
// forges, replays, redirects or reads and resends a call gets a denial.
//
// This file fixes the subject layout that minions, overlords and the
// broker's permissions (package brokerd) share. It imports nothing from
// NATS, so the subject rules can be checked by programs that do not link
// a NATS client.
package broker

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/gofunc/gofunc/identity"
)

// Subject prefixes, version 1. A new major version of the envelope gets
// new subjects, so old and new minions can share a broker during an
// upgrade.
const (
	// SubjectRoot is the root every gofunc subject is under.
	SubjectRoot = "gf.v1"
	// CallPrefix + Token(minion): calls to one minion; overlords publish,
	// that minion alone subscribes.
	CallPrefix = SubjectRoot + ".call."
	// ReplyPrefix + CallerToken(cert) + "." + id: answers to one caller;
	// minions publish, that caller alone subscribes.
	ReplyPrefix = SubjectRoot + ".rpl."
	// EventPrefix + Token(minion) + ".>": a minion's hello, bye and
	// events; that minion publishes, overlords subscribe.
	EventPrefix = SubjectRoot + ".evt."
	// BroadcastAll: discovery calls to every minion; overlords publish,
	// minions subscribe.
	BroadcastAll = SubjectRoot + ".bcast.all"
)

// Token is the single subject token standing for a minion name: the name
// with "." replaced by "_". Names are RFC 1123 host names (the
// certmaster refuses "_", "*", ">" and white space in them), so the
// mapping is one to one and the token never splits into two.
func Token(name string) (string, error) {
	canon, err := identity.ValidateName(name)
	if err != nil {
		return "", err
	}
	return strings.ReplaceAll(canon, ".", "_"), nil
}

// NameOfToken reverses Token.
func NameOfToken(token string) (string, error) {
	return identity.ValidateName(strings.ReplaceAll(token, "_", "."))
}

// CallSubject is the subject a minion named name receives its calls on.
func CallSubject(name string) (string, error) {
	t, err := Token(name)
	if err != nil {
		return "", fmt.Errorf("broker: call subject: %w", err)
	}
	return CallPrefix + t, nil
}

// EventSubject is the subject tree a minion named name publishes its
// hello, bye and events under (EventSubject(name) + ".hello", ...).
func EventSubject(name string) (string, error) {
	t, err := Token(name)
	if err != nil {
		return "", fmt.Errorf("broker: event subject: %w", err)
	}
	return EventPrefix + t, nil
}

// CallerToken names a caller in reply subjects: the first 16 bytes of the
// SHA-256 of its certificate's public key, in hex. It is bound to the key
// rather than the name, so two certificates for one name (a renewal in
// flight) do not read each other's answers, and a permission on
// ReplyPrefix+CallerToken(cert)+".>" follows the key the broker saw.
func CallerToken(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:16])
}

// ReplyInbox is the subject tree a caller holding cert receives answers
// on; a call's reply subject is ReplyInbox(cert) + "." + call id.
func ReplyInbox(cert *x509.Certificate) string {
	return ReplyPrefix + CallerToken(cert)
}
