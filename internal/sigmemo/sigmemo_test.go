package sigmemo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
)

// signer is a P-256 key with its SubjectPublicKeyInfo.
type signer struct {
	key  *ecdsa.PrivateKey
	spki []byte
}

func newSigner(t *testing.T) signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return signer{k, spki}
}

func (s signer) sign(t *testing.T, msg string) (digest, sig []byte) {
	t.Helper()
	sum := sha256.Sum256([]byte(msg))
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return sum[:], sig
}

// The memo answers only the exact (key, digest, signature) that
// verified before: any other is verified anew, a failure is never
// remembered, and concurrent checks of the same bytes verify once.
func TestVerifyMemo(t *testing.T) {
	var v Memo
	alice, bob := newSigner(t), newSigner(t)
	digest, sig := alice.sign(t, "call one")
	counts := func(wantVerified, wantHits uint64) {
		t.Helper()
		if got, hits := v.verified.Load(), v.hits.Load(); got != wantVerified || hits != wantHits {
			t.Fatalf("%d verifications, %d memo hits; want %d, %d", got, hits, wantVerified, wantHits)
		}
	}
	if !v.Verify(&alice.key.PublicKey, alice.spki, digest, sig) {
		t.Fatal("genuine signature refused")
	}
	counts(1, 0)
	if !v.Verify(&alice.key.PublicKey, alice.spki, digest, sig) {
		t.Fatal("genuine signature refused the second time")
	}
	counts(1, 1)

	// Another key (its own SPKI), another digest, another signature of
	// the same digest, a signature one bit off: each a miss, verified
	// (and refused, except the fresh genuine signature).
	other := sha256.Sum256([]byte("call two"))
	_, sig2 := alice.sign(t, "call one")
	flipped := append([]byte(nil), sig...)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name        string
		pub         *ecdsa.PublicKey
		spki        []byte
		digest, sig []byte
		want        bool
	}{
		{"another key", &bob.key.PublicKey, bob.spki, digest, sig, false},
		{"another key claiming alice's SPKI bytes", &bob.key.PublicKey, alice.spki, digest, sig2, false},
		{"another digest", &alice.key.PublicKey, alice.spki, other[:], sig, false},
		{"another signature", &alice.key.PublicKey, alice.spki, digest, sig2, true},
		{"a flipped bit", &alice.key.PublicKey, alice.spki, digest, flipped, false},
	} {
		before := v.verified.Load()
		if got := v.Verify(tc.pub, tc.spki, tc.digest, tc.sig); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if v.verified.Load() != before+1 {
			t.Errorf("%s: answered from the memo", tc.name)
		}
	}

	// A failure is not remembered: the same bad bytes are verified
	// again, and refused again.
	before := v.verified.Load()
	for range 3 {
		if v.Verify(&alice.key.PublicKey, alice.spki, digest, flipped) {
			t.Fatal("bad signature accepted")
		}
	}
	if v.verified.Load() != before+3 {
		t.Error("a failed verification was remembered")
	}

	// Concurrent checks of one group's signature: one verification.
	d3, s3 := alice.sign(t, "a group's call")
	before, hits := v.verified.Load(), v.hits.Load()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			if !v.Verify(&alice.key.PublicKey, alice.spki, d3, s3) {
				t.Error("genuine signature refused")
			}
		})
	}
	wg.Wait()
	if v.verified.Load() != before+1 || v.hits.Load() != hits+63 {
		t.Errorf("64 concurrent checks: %d verifications, %d hits", v.verified.Load()-before, v.hits.Load()-hits)
	}

	// Off: every check verifies.
	v.SetOn(false)
	before = v.verified.Load()
	for range 2 {
		if !v.Verify(&alice.key.PublicKey, alice.spki, digest, sig) {
			t.Fatal("genuine signature refused with the memo off")
		}
	}
	if v.verified.Load() != before+2 {
		t.Error("the memo answered while off")
	}
}

// The memo holds at most its bound, then starts over.
func TestVerifyMemoBounded(t *testing.T) {
	const bound = 32
	v := Memo{max: bound}
	s := newSigner(t)
	digest, sig := s.sign(t, "x")
	for i := range bound + 10 {
		d, sg := digest, sig
		if i > 0 {
			d, sg = s.sign(t, fmt.Sprint(i))
		}
		if !v.Verify(&s.key.PublicKey, s.spki, d, sg) {
			t.Fatal("genuine signature refused")
		}
		if n := v.len(); n > bound {
			t.Fatalf("memo holds %d entries, over %d", n, bound)
		}
	}
	if n := v.len(); n != 10 {
		t.Errorf("memo holds %d entries after starting over, want 10", n)
	}
}
