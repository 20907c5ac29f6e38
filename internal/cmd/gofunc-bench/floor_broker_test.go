package main

import (
	"bytes"
	"errors"
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
