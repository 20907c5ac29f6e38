package ca

import (
	"crypto/ecdsa"
	"net/url"
)

type ecdsaKey = ecdsa.PrivateKey

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
