// Package sigmemo remembers ECDSA signatures that verified, so that
// many verifiers of the same signature in one process (a test fleet, a
// CI harness, the bench's minions' processes) verify it once. The
// broker's minions use it for a group call's one signature
// (broker.SetCallVerifyMemo); gofunc-bench's signed floor uses one of
// its own so that both are measured alike.
package sigmemo

import (
	"cmp"
	"crypto/ecdsa"
	"sync"
	"sync/atomic"
)

// Memo remembers the signatures that verified. A broker group's call (one signature for up to MaxAudience minions) reaches
// every minion of the group with the same certificate, signed bytes and
// signature; where several of those minions share a process (a test
// fleet, a CI harness, the bench's minions' processes) the first
// verifies and the others find its success here. Verification is a
// pure function of (public key, digest, signature), and the key is
// those exact bytes, so the memo cannot change a decision: a different
// key, digest or signature is another entry, and a failed verification
// is never remembered (nor shared with a concurrent check of the same
// bytes, which verifies on its own). Every other check of a call (times,
// audience, reply subject, replay, chain, CRL, role, ACL) stays each
// minion's own. Checks of the same bytes at the same time wait for the
// first one's verification rather than each doing it.
type Memo struct {
	mu  sync.Mutex
	m   map[string]*memoEntry
	max int         // entries held at most; 0 means maxEntries
	off atomic.Bool // SetOn(false)
	// verified counts the ECDSA verifications made; hits those the
	// memo spared.
	verified, hits atomic.Uint64
}

// memoEntry is one verification, done (done closed) or under way.
type memoEntry struct {
	done chan struct{}
	ok   bool
}

// maxEntries bounds the memo (an entry is ~250 bytes: ~1 MiB);
// past it, it starts over. A fan-out to 5000 minions in groups of 64
// is ~80 entries.
const maxEntries = 4096

// SetOn turns the memo on (the zero Memo's state) or off: off, every
// call verifies.
func (v *Memo) SetOn(on bool) { v.off.Store(!on) }

// Stats reports the ECDSA verifications made and those the memo spared.
func (v *Memo) Stats() (verified, hits uint64) { return v.verified.Load(), v.hits.Load() }

// Verify reports whether sig is pub's signature of digest; spki is
// pub's DER encoding (the certificate's SubjectPublicKeyInfo).
func (v *Memo) Verify(pub *ecdsa.PublicKey, spki, digest, sig []byte) bool {
	if v.off.Load() || len(spki) > 1024 || len(sig) > 256 {
		v.verified.Add(1)
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	// SPKI is DER (it says its own length) and the digest is 32 bytes,
	// so the concatenation names the three parts unambiguously.
	key := string(spki) + string(digest) + string(sig)
	v.mu.Lock()
	if e, ok := v.m[key]; ok {
		v.mu.Unlock()
		<-e.done
		if e.ok {
			v.hits.Add(1)
			return true
		}
		v.verified.Add(1)
		return ecdsa.VerifyASN1(pub, digest, sig)
	}
	if v.m == nil || len(v.m) >= cmp.Or(v.max, maxEntries) {
		v.m = make(map[string]*memoEntry)
	}
	e := &memoEntry{done: make(chan struct{})}
	v.m[key] = e
	v.mu.Unlock()
	v.verified.Add(1)
	e.ok = ecdsa.VerifyASN1(pub, digest, sig)
	if !e.ok {
		v.mu.Lock()
		if v.m[key] == e {
			delete(v.m, key)
		}
		v.mu.Unlock()
	}
	close(e.done)
	return e.ok
}

// len is how many verifications the memo holds or runs.
func (v *Memo) len() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.m)
}
