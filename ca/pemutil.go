package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// ErrBadPEM is matched by errors from PEM and DER parsing: not PEM, the
// wrong block type, trailing data, or DER that does not parse.
var ErrBadPEM = errors.New("ca: bad PEM")

// PEM block types.
const (
	pemCert = "CERTIFICATE"
	pemKey  = "PRIVATE KEY"
	pemCSR  = "CERTIFICATE REQUEST"
	pemCRL  = "X509 CRL"
)

// maxPEMBytes bounds a PEM certificate, key or request: ours are under
// 2 KiB. CRLs grow with the fleet (~40 bytes a revoked serial), so they
// have their own, larger bound.
const (
	maxPEMBytes = 64 << 10
	maxCRLBytes = 16 << 20
)

// decodeOnePEM returns the DER of the single PEM block of type typ in
// data. Anything else in data (a second block, text after it) is an
// error: inputs come from the network and from files the CA wrote, and
// neither has a reason to carry extra bytes.
func decodeOnePEM(data []byte, typ string, limit int) ([]byte, error) {
	if len(data) > limit {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrBadPEM, len(data), limit)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no %s block", ErrBadPEM, typ)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("%w: got a %q block, want %q", ErrBadPEM, block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%w: %s block has headers", ErrBadPEM, typ)
	}
	for _, c := range rest {
		if c != '\n' && c != '\r' && c != ' ' && c != '\t' {
			return nil, fmt.Errorf("%w: data after the %s block", ErrBadPEM, typ)
		}
	}
	return block.Bytes, nil
}

func encodePEM(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// ParseCertificatePEM parses one PEM "CERTIFICATE" block.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	der, err := decodeOnePEM(data, pemCert, maxPEMBytes)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	return c, nil
}

// parseKeyPEM parses a PKCS#8 ECDSA key as written by this package.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	der, err := decodeOnePEM(data, pemKey, maxPEMBytes)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is %T, want ECDSA", ErrBadPEM, k)
	}
	return ek, nil
}

func marshalKeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return encodePEM(pemKey, der), nil
}

// newKey makes an ECDSA P-256 key, the only key type the CA issues for.
func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// randomSerial returns a random positive 128-bit serial number. 128 bits
// of randomness make a collision negligible; the CA still checks its
// index under the lock so a duplicate can never be issued.
func randomSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(b)
	if n.Sign() == 0 {
		return randomSerial()
	}
	return n, nil
}

// serialHex is the canonical text of a serial: lower-case hex without
// leading zeros, as in gofunc.Peer.Serial.
func serialHex(n *big.Int) string { return n.Text(16) }

// fingerprint is "sha256:<hex>" of der.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// KeyFingerprint returns "sha256:<hex>" of the public key's DER
// SubjectPublicKeyInfo: the fingerprint the admin compares when approving
// a request.
func KeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("ca: key fingerprint: %w", err)
	}
	return fingerprint(der), nil
}

// CertFingerprint returns "sha256:<hex>" of the certificate's DER; for the
// CA certificate this is what minions pin.
func CertFingerprint(c *x509.Certificate) string { return fingerprint(c.Raw) }
