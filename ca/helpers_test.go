package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type ecdsaKey = ecdsa.PrivateKey

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func hclogTo(w io.Writer) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: w, Level: hclog.Trace})
}

func parseCRL(der []byte) (*x509.RevocationList, error) { return x509.ParseRevocationList(der) }

func x509CreateCSR(key *ecdsa.PrivateKey, cn string, ips []net.IP) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, IPAddresses: ips}, key)
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCSR, der), nil
}

// makeCSR makes a PEM CSR for name, as identity.Enroll does.
func makeCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: name},
		DNSNames: []string{name},
	}, key)
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCSR, der), nil
}

// testWait bounds every wait of a test in this package: generous for a
// loaded machine, far short of the go test timeout, so that a wait that
// would never end fails its test with a message instead of hanging the
// whole package (TestConflict once polled for a signature for 15
// minutes).
const testWait = 2 * time.Minute

// testCtx is t.Context() bounded by testWait.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), testWait)
	t.Cleanup(cancel)
	return ctx
}
