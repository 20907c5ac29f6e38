package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestFloorRequestRoundTrip: a request parses back to the hash its
// signature covers and its deadline; every truncation is
// errFloorFrame, never a panic.
func TestFloorRequestRoundTrip(t *testing.T) {
	id := [16]byte{1, 2, 3}
	deadline := time.Unix(0, time.Now().Add(time.Minute).UnixNano())
	head := floorRequestHead(id, deadline)
	sig := bytes.Repeat([]byte{7}, 71)
	b := encodeFloorRequest(head, sig, floorRequest)
	r, err := parseFloorRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if r.hash != floorHash(head, floorRequest) || !r.deadline.Equal(deadline) || !bytes.Equal(r.sig, sig) {
		t.Fatalf("parsed %+v", r)
	}
	for n := range floorHeadSize + 1 + len(sig) {
		if _, err := parseFloorRequest(b[:n]); !errors.Is(err, errFloorFrame) {
			t.Fatalf("request cut to %d bytes: %v, want errFloorFrame", n, err)
		}
	}
	if _, _, err := splitFloorAnswer([]byte{5, 1, 2}); !errors.Is(err, errFloorFrame) {
		t.Fatalf("short answer: %v", err)
	}
}

// TestFloorMemo: a good signature is verified once however many check
// it, at once or later; a bad one is verified by every check (never
// kept, never shared); off, every check verifies.
func TestFloorMemo(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("call"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	var m floorMemo
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if !m.verify(&key.PublicKey, digest[:], sig) {
				t.Error("good signature refused")
			}
		})
	}
	wg.Wait()
	if !m.verify(&key.PublicKey, digest[:], sig) {
		t.Fatal("good signature refused")
	}
	if v, h := m.verified.Load(), m.hits.Load(); v != 1 || h != 32 {
		t.Fatalf("verified %d, hits %d; want 1 and 32", v, h)
	}
	other := sha256.Sum256([]byte("another call"))
	for range 3 {
		if m.verify(&key.PublicKey, other[:], sig) {
			t.Fatal("signature of another digest accepted")
		}
	}
	if v := m.verified.Load(); v != 4 {
		t.Fatalf("verified %d, want 4 (each failure checked anew)", v)
	}
	m.off.Store(true)
	m.verify(&key.PublicKey, digest[:], sig)
	if v := m.verified.Load(); v != 5 {
		t.Fatalf("off: verified %d, want 5", v)
	}
}

func FuzzFloorFrames(f *testing.F) {
	f.Add(encodeFloorRequest(floorRequestHead([16]byte{}, time.Unix(1, 0)), []byte{1, 2}, floorRequest))
	f.Add([]byte{3, 1, 2, 3, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseFloorRequest(b); err == nil && len(r.sig) == 0 {
			t.Fatal("request with an empty signature parsed")
		}
		if sig, body, err := splitFloorAnswer(b); err == nil && len(sig)+len(body)+1 != len(b) {
			t.Fatal("answer split loses bytes")
		}
	})
}
