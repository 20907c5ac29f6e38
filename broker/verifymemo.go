package broker

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"

	"github.com/gofunc/gofunc/internal/sigmemo"
)

// callMemo is the process's memo of call signatures that verified. A
// group's call (one signature for up to MaxAudience minions) reaches
// every minion of the group with the same certificate, signed bytes and
// signature; where several of those minions share a process the first
// verifies and the others find its success there. The memo cannot
// change a decision (see sigmemo), and every other check of a call
// (times, audience, reply subject, replay, chain, CRL, role, ACL) stays
// each minion's own.
var callMemo sigmemo.Memo

// SetCallVerifyMemo turns the process-wide memo of successful call
// signature verifications on (the default) or off. Off, every minion
// verifies every call's signature itself, as each does on its own
// machine: for benchmarks that run many minions in one process and want
// one machine's cost per minion.
func SetCallVerifyMemo(on bool) { callMemo.SetOn(on) }

// CallVerifyStats reports how many ECDSA verifications of call
// signatures this process made, and how many more the memo answered
// (see SetCallVerifyMemo).
func CallVerifyStats() (verified, memoised uint64) { return callMemo.Stats() }

// verifyCall is verify for a call's signature, through the memo.
func verifyCall(cert *x509.Certificate, msg, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return envErr(ErrSignature, "certificate key is not ECDSA")
	}
	sum := sha256.Sum256(msg)
	if !callMemo.Verify(pub, cert.RawSubjectPublicKeyInfo, sum[:], sig) {
		return envErr(ErrSignature, "by %s", cert.Subject.CommonName)
	}
	return nil
}
