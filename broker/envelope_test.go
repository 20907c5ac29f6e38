package broker

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// testCert is a self-signed P-256 certificate for name: the envelope
// checks signatures only; chains are the minion's business.
func testCert(t testing.TB, name string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

var (
	goldenTime = time.Date(2026, 12, 7, 17, 0, 0, 123e6, time.UTC)
	goldenCall = Call{ID: "00112233445566778899aabbccddeeff", Issued: goldenTime, Deadline: goldenTime.Add(30 * time.Second),
		Method: "test.ping", Audience: []string{"web1.example.com", "web2.example.com"},
		ReplyTo:    "gf.v1.rpl.0123456789abcdef0123456789abcdef.00112233445566778899aabbccddeeff",
		OnBehalfOf: "alice@operator",
		BodySum:    sha256.Sum256([]byte("<methodCall/>"))}
	goldenReply = Reply{ID: goldenCall.ID, Request: sha256.Sum256(goldenCall.SignedBytes()), Minion: "web1.example.com",
		Seq: 3, Final: true, AuditHead: "42:abcdef", CallID: goldenCall.ID, BodySum: sha256.Sum256([]byte("<methodResponse/>"))}
	goldenRefusal = Refusal{ID: goldenCall.ID, ReplyTo: goldenCall.ReplyTo + ".0", Minion: "web1.example.com", Class: "version",
		Reason: `envelope version "2" not supported; this minion speaks envelope version 1`}
)

// The signed bytes are a wire format: other implementations sign and
// check the same bytes, so they are pinned by golden files.
func TestSignedBytesGolden(t *testing.T) {
	for name, got := range map[string][]byte{"call-v1.golden": goldenCall.SignedBytes(), "reply-v1.golden": goldenReply.SignedBytes(),
		"refusal-v1.golden": goldenRefusal.SignedBytes()} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\ngot  %q\nwant %q", name, got, want)
		}
	}
}

func signedCall(t *testing.T, cert *tls.Certificate, body []byte) (Header, Call) {
	t.Helper()
	c := goldenCall
	c.Issued, c.Deadline = time.Now(), time.Now().Add(time.Minute)
	h, err := SignCall(cert, &c, body)
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func TestCallRoundTrip(t *testing.T) {
	t.Parallel()
	cert := testCert(t, "admin")
	body := []byte("<methodCall><methodName>test.ping</methodName></methodCall>")
	h, c := signedCall(t, cert, body)
	sc, err := ParseCall(h, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.CheckTimes(time.Now(), 30*time.Second, 5*time.Minute); err != nil {
		t.Error(err)
	}
	if err := sc.CheckAudience("WEB2.example.com"); err != nil {
		t.Error(err)
	}
	if err := sc.VerifySignature(); err != nil {
		t.Error(err)
	}
	if sc.RequestSum() != sha256.Sum256(c.SignedBytes()) || sc.Cert.Subject.CommonName != "admin" {
		t.Error("request digest or certificate differ from what was signed")
	}
}

// Every field the signature covers is bound: changing any one of them
// in the headers breaks the signature (or the syntax), and the errors
// are typed.
func TestCallTampering(t *testing.T) {
	t.Parallel()
	cert, other := testCert(t, "admin"), testCert(t, "admin")
	body := []byte("<methodCall><methodName>test.ping</methodName></methodCall>")
	cases := []struct {
		name string
		edit func(h Header, body *[]byte)
		want error
	}{
		{"version", func(h Header, _ *[]byte) { h.set(HeaderVersion, "2") }, ErrVersion},
		{"id", func(h Header, _ *[]byte) { h.set(HeaderID, NewID()) }, ErrSignature},
		{"id syntax", func(h Header, _ *[]byte) { h.set(HeaderID, "x") }, ErrMalformed},
		{"issued", func(h Header, _ *[]byte) { h.set(HeaderIssued, time.Now().UTC().Add(-time.Second).Format(TimeLayout)) }, ErrSignature},
		{"issued spelling", func(h Header, _ *[]byte) { h.set(HeaderIssued, time.Now().Format(time.RFC3339)) }, ErrMalformed},
		{"deadline", func(h Header, _ *[]byte) { h.set(HeaderDeadline, time.Now().UTC().Add(time.Hour).Format(TimeLayout)) }, ErrSignature},
		{"method", func(h Header, _ *[]byte) { h.set(HeaderMethod, "command.run") }, ErrSignature},
		{"audience", func(h Header, _ *[]byte) { h.set(HeaderAudience, "web3.example.com") }, ErrSignature},
		{"audience size", func(h Header, _ *[]byte) { h.set(HeaderAudience, string(bytes.Repeat([]byte("a,"), MaxAudience))+"a") }, ErrMalformed},
		{"reply", func(h Header, _ *[]byte) { h.set(HeaderReplyTo, ReplyPrefix+"evil.1") }, ErrSignature},
		{"reply outside", func(h Header, _ *[]byte) { h.set(HeaderReplyTo, "gf.v1.call.x") }, ErrMalformed},
		{"body", func(_ Header, b *[]byte) {
			*b = []byte("<methodCall><methodName>command.run</methodName></methodCall>")
		}, ErrBodyDigest},
		{"cert", func(h Header, _ *[]byte) { h.set(HeaderCert, encodeB64(other.Leaf.Raw)) }, ErrSignature},
		{"cert garbage", func(h Header, _ *[]byte) { h.set(HeaderCert, "!!") }, ErrMalformed},
		{"sig", func(h Header, _ *[]byte) { h.set(HeaderSig, encodeB64([]byte("not a signature"))) }, ErrSignature},
		{"no sig", func(h Header, _ *[]byte) { delete(h, HeaderSig) }, ErrMalformed},
		{"behalf", func(h Header, _ *[]byte) { h.set(HeaderBehalf, "bob@admin") }, ErrSignature},
		{"no behalf", func(h Header, _ *[]byte) { delete(h, HeaderBehalf) }, ErrSignature},
		{"newline", func(h Header, _ *[]byte) { h.set(HeaderMethod, "test.ping\nx") }, ErrMalformed},
	}
	for _, tc := range cases {
		h, _ := signedCall(t, cert, body)
		b := body
		tc.edit(h, &b)
		sc, err := ParseCall(h, b)
		if err == nil {
			err = sc.VerifySignature()
		}
		var ee *EnvelopeError
		if !errors.Is(err, tc.want) || !errors.As(err, &ee) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestCallTimes(t *testing.T) {
	t.Parallel()
	now := time.Now()
	mk := func(issued, deadline time.Time) *SignedCall {
		return &SignedCall{Call: Call{Issued: issued, Deadline: deadline}}
	}
	for _, tc := range []struct {
		sc   *SignedCall
		want error
	}{
		{mk(now, now.Add(time.Minute)), nil},
		{mk(now.Add(20*time.Second), now.Add(time.Minute)), nil}, // within the skew
		{mk(now.Add(time.Minute), now.Add(2*time.Minute)), ErrNotYet},
		{mk(now.Add(-time.Minute), now.Add(-time.Second)), ErrExpired},
		{mk(now, now.Add(time.Hour)), ErrValidity},
	} {
		if err := tc.sc.CheckTimes(now, 30*time.Second, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%v..%v: %v, want %v", tc.sc.Issued, tc.sc.Deadline, err, tc.want)
		}
	}
	if err := mk(now, now).CheckAudience("web1"); !errors.Is(err, ErrAudience) {
		t.Errorf("empty audience: %v", err)
	}
}

func TestReplyRoundTrip(t *testing.T) {
	t.Parallel()
	cert := testCert(t, "web1.example.com")
	body := []byte("<methodResponse/>")
	r := goldenReply
	h, err := SignReply(cert, &r, body)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := ParseReply(h, r.Request)
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.CheckBody(body); err != nil {
		t.Error(err)
	}
	if err := sr.VerifySignature(); err != nil {
		t.Error(err)
	}
	// Bound to the request: the same frame for another call fails.
	sr, err = ParseReply(h, sha256.Sum256([]byte("another call")))
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.VerifySignature(); !errors.Is(err, ErrSignature) {
		t.Errorf("reply to another request: %v", err)
	}
	if err := sr.CheckBody([]byte("<methodResponse>forged</methodResponse>")); !errors.Is(err, ErrBodyDigest) {
		t.Errorf("other body: %v", err)
	}
	// A minion name changed in the headers.
	h.set(HeaderMinion, "web2.example.com")
	if sr, err := ParseReply(h, r.Request); err != nil || !errors.Is(sr.VerifySignature(), ErrSignature) {
		t.Errorf("renamed reply: %v", err)
	}
}

// TestParsedCertificatesAreCached: the same certificate text is parsed
// once; text that does not parse, or a certificate over the size bound,
// is never remembered; the cache starts over past its byte bound.
func TestParsedCertificatesAreCached(t *testing.T) {
	var c certCache
	text := base64.StdEncoding.EncodeToString(testCert(t, "m1.example").Leaf.Raw)
	first, err := c.parse(text)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.parse(strings.Clone(text))
	if err != nil || again != first {
		t.Fatalf("second parse: %p %v, want the cached %p", again, err, first)
	}
	for _, junk := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("not a certificate")), ""} {
		if _, err := c.parse(junk); !errors.Is(err, ErrMalformed) {
			t.Fatalf("junk %q: %v, want ErrMalformed", junk, err)
		}
	}
	if len(c.m) != 1 || c.bytes != len(text) {
		t.Fatalf("cache holds %d certificates, %d bytes; want 1, %d", len(c.m), c.bytes, len(text))
	}
	c.bytes = maxParsedCertText // as if full
	other := base64.StdEncoding.EncodeToString(testCert(t, "m2.example").Leaf.Raw)
	if _, err := c.parse(other); err != nil {
		t.Fatal(err)
	}
	if len(c.m) != 1 || c.bytes != len(other) {
		t.Fatalf("full cache did not start over: %d certificates, %d bytes", len(c.m), c.bytes)
	}
}

// A broadcast (audience "*") is for every minion, and for discovery
// methods only; its answers all go to the signed reply subject.
func TestBroadcastAudience(t *testing.T) {
	sc := &SignedCall{Call: Call{Method: "test.ping", Audience: []string{AudienceAll}, ReplyTo: ReplyPrefix + "abc.id"}}
	if !sc.Broadcast() {
		t.Fatal("not a broadcast")
	}
	if err := sc.CheckAudience("any.example.org"); err != nil {
		t.Errorf("ping broadcast: %v", err)
	}
	if s, ok := sc.ReplySubject("any.example.org"); !ok || s != sc.ReplyTo {
		t.Errorf("reply subject %q %v", s, ok)
	}
	sc.Method = "command.run"
	if err := sc.CheckAudience("any.example.org"); !errors.Is(err, ErrAudience) {
		t.Errorf("command.run broadcast: %v", err)
	}
	sc.Method, sc.Audience = "test.ping", []string{AudienceAll, "web1"}
	if sc.Broadcast() || !errors.Is(sc.CheckAudience("other"), ErrAudience) {
		t.Error("\"*\" beside a name is not a broadcast")
	}
}

// A refusal verifies with its minion's key for its reply subject only.
func TestRefusalRoundTrip(t *testing.T) {
	cert := testCert(t, "web1.example.com")
	r := goldenRefusal
	h, err := SignRefusal(cert, &r)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := ParseRefusal(h, r.ReplyTo, []byte(r.Reason))
	if err != nil || sr.VerifySignature() != nil || sr.Class != "version" || sr.Minion != "web1.example.com" {
		t.Fatalf("%+v %v", sr, err)
	}
	for name, tamper := range map[string]func() (*SignedRefusal, error){
		"another slot":   func() (*SignedRefusal, error) { return ParseRefusal(h, goldenCall.ReplyTo+".1", []byte(r.Reason)) },
		"another reason": func() (*SignedRefusal, error) { return ParseRefusal(h, r.ReplyTo, []byte("made up")) },
	} {
		sr, err := tamper()
		if err == nil {
			err = sr.VerifySignature()
		}
		if !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
