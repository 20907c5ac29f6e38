// Package pki holds what both the identity package and the CA need to
// read and write gofunc's certificates, keys and CRLs: strict PEM
// decoding, key generation, fingerprints, serial text, the role marks
// the CA writes into a certificate, and the file names of an identity
// directory. It is internal so that neither package has to export these
// helpers.
package pki

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
	"io"
	"math/big"
	"os"
)

// ErrBadPEM is matched by errors from PEM and DER parsing: not PEM, the
// wrong block type, trailing data, or DER that does not parse.
var ErrBadPEM = errors.New("identity: bad PEM")

// ErrKeyPermissions: a private key file is readable by group or others.
var ErrKeyPermissions = errors.New("identity: private key file is readable by group or others (want mode 0600)")

// PEM block types.
const (
	PEMCert = "CERTIFICATE"
	PEMKey  = "PRIVATE KEY"
	PEMCSR  = "CERTIFICATE REQUEST"
	PEMCRL  = "X509 CRL"
)

// MaxPEMBytes bounds a PEM certificate, key or request: ours are under
// 2 KiB. CRLs grow with the fleet (~40 bytes a revoked serial), so they
// have their own, larger bound.
const (
	MaxPEMBytes = 64 << 10
	MaxCRLBytes = 16 << 20
)

// Files of an identity directory (the CA directory is one too).
const (
	FileCACert = "ca.pem"
	FileCert   = "cert.pem"
	FileKey    = "key.pem"
	FileCRL    = "crl.pem"
)

// DecodeOne returns the DER of the single PEM block of type typ in
// data. Anything else in data (a second block, text after it) is an
// error: inputs come from the network and from files the CA wrote, and
// neither has a reason to carry extra bytes.
func DecodeOne(data []byte, typ string, limit int) ([]byte, error) {
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

// Encode returns der as one PEM block of type typ.
func Encode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// ParseCertificate parses one PEM "CERTIFICATE" block.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	der, err := DecodeOne(data, PEMCert, MaxPEMBytes)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	return c, nil
}

// ParseKey parses a PKCS#8 ECDSA key as MarshalKey writes it.
func ParseKey(data []byte) (*ecdsa.PrivateKey, error) {
	der, err := DecodeOne(data, PEMKey, MaxPEMBytes)
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

// MarshalKey returns k as a PKCS#8 PEM block.
func MarshalKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return Encode(PEMKey, der), nil
}

// NewKey makes an ECDSA P-256 key, the only key type the CA issues for.
func NewKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

// ReadSecret reads a private key file, refusing one that group or others
// can read: a key that leaked that way must not be used silently.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is %v", ErrKeyPermissions, path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("identity: read %s: %w", path, err)
	}
	return b, nil
}

// SerialHex is the canonical text of a serial: lower-case hex without
// leading zeros, as in gofunc.Peer.Serial.
func SerialHex(n *big.Int) string { return n.Text(16) }

// Fingerprint is "sha256:<hex>" of der.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// KeyFingerprint returns "sha256:<hex>" of the public key's DER
// SubjectPublicKeyInfo.
func KeyFingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("identity: key fingerprint: %w", err)
	}
	return Fingerprint(der), nil
}
