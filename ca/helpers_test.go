package ca

import (
	"crypto/ecdsa"
	"crypto/x509"
	"io"
	"net/url"

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
