package ca

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kolo/xmlrpc"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	gxmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

func seedCSRs(f *testing.F) [][]byte {
	key, err := newKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := makeCSR(key, "m1.example")
	if err != nil {
		f.Fatal(err)
	}
	der, _ := decodeOnePEM(good, pemCSR, maxPEMBytes)
	bad := bytes.Clone(der)
	bad[len(bad)-3] ^= 0x80
	return [][]byte{
		good,
		encodePEM(pemCSR, bad),
		encodePEM(pemCSR, der[:len(der)/2]),
		encodePEM(pemCert, der),
		[]byte("-----BEGIN CERTIFICATE REQUEST-----\n!!!\n-----END CERTIFICATE REQUEST-----\n"),
		append(bytes.Clone(good), good...),
		{},
	}
}

// FuzzParseCSR: any bytes; never a panic, and an accepted CSR is one the
// CA can fingerprint and sign from.
func FuzzParseCSR(f *testing.F) {
	for _, s := range seedCSRs(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSR(data)
		if err != nil {
			if csr != nil {
				t.Fatal("error with a CSR")
			}
			return
		}
		if err := csr.CheckSignature(); err != nil {
			t.Fatalf("accepted a CSR whose signature fails: %v", err)
		}
		if _, err := identity.KeyFingerprint(csr.PublicKey); err != nil {
			t.Fatalf("accepted CSR has no fingerprint: %v", err)
		}
		_, _ = validateRequest(Request{CSR: data})
	})
}

// FuzzSmallParsers covers the other text parsers: serials and reasons.
func FuzzSmallParsers(f *testing.F) {
	for _, s := range []string{"0x1A:2b", "deadbeef", "0", "-1", "keyCompromise", "KEY_COMPROMISE", "7", "sha256:" + strings.Repeat("AB", 32),
		"sha256:" + strings.Repeat("ab:", 31) + "ab", "md5:00", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, ok := normalizeSerial(s); ok {
			if again, ok := normalizeSerial(n); !ok || again != n {
				t.Fatalf("serial %q -> %q -> %q", s, n, again)
			}
		}
		if r, err := ParseReason(s); err == nil {
			if back, err := ParseReason(r.String()); err != nil || back != r {
				t.Fatalf("reason %q -> %v -> %v", s, r, back)
			}
		}
	})
}

// FuzzSetCRL: identities accept only CRLs their CA signed.
func FuzzSetCRL(f *testing.F) {
	a, err := Init(Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	id, err := a.Issue(gofunc.RoleMinion, "m1", IssueOptions{})
	if err != nil {
		f.Fatal(err)
	}
	der, _ := a.CRL()
	f.Add(der)
	f.Add(der[:len(der)-1])
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = id.SetCRL(data)
		_ = id.Revoked(id.Leaf())
	})
}

// FuzzServeHTTP sends arbitrary bodies to the certmaster handler: the
// answer is always a well-formed XML-RPC response or fault, never a
// panic or a 500, and invalid requests never create a certificate.
func FuzzServeHTTP(f *testing.F) {
	a, err := Init(Config{Dir: f.TempDir()})
	if err != nil {
		f.Fatal(err)
	}
	s := &Service{Authority: a, Autosign: "*", RateLimit: 1e9, RateBurst: 1 << 30, MaxBodyBytes: 16 << 10}
	if err := s.init(); err != nil {
		f.Fatal(err)
	}
	csrs := seedCSRs(f)
	for _, c := range csrs {
		f.Add(mustEncode(f, "wait_for_cert", string(c)))
		f.Add(mustEncode(f, "enroll", map[string]any{"csr": string(c), "name": "m1.example", "addr": "10.0.0.1:51234"}))
	}
	f.Add(mustEncode(f, "enroll", map[string]any{"csr": string(csrs[0]), "name": "m1.example", "token": "gft_x"}))
	f.Add(mustEncode(f, "get_crl"))
	f.Add(mustEncode(f, "list_minions"))
	f.Add(mustEncode(f, "renew", "x"))
	f.Add([]byte("<?xml version='1.0'?><methodCall><methodName>enroll</methodName><params><param><value><struct></struct></value></param></params></methodCall>"))
	f.Add([]byte("<methodCall><methodName>get_ca</methodName></methodCall>"))
	f.Add([]byte("<!DOCTYPE x [<!ENTITY a 'b'>]><methodCall/>"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.1:4321"
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("HTTP %d", rec.Code)
		}
		v, err := gxmlrpc.DecodeResponse(bytes.NewReader(rec.Body.Bytes()), gxmlrpc.DefaultLimits)
		var fault *gofunc.Fault
		if err != nil && !asFault(err, &fault) {
			t.Fatalf("answer is not XML-RPC: %v\n%s", err, rec.Body.Bytes())
		}
		if fault != nil && fault.Code == gofunc.CodeInternal {
			t.Fatalf("internal error for %q", body)
		}
		_ = v
	})
}

func asFault(err error, f **gofunc.Fault) bool {
	var x *gofunc.Fault
	ok := errors.As(err, &x)
	*f = x
	return ok
}

func mustEncode(f *testing.F, method string, args ...any) []byte {
	b, err := xmlrpc.EncodeMethodCall(method, args...)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
