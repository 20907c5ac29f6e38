package ca

import (
	"crypto/rand"
	"math/big"

	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/pki"
)

// writeFileAtomic is the project's one atomic-write discipline
// (temporary file, fsync, rename, fsync of the directory), named here
// for the CA's many call sites, like the PEM and key helpers it shares
// with package identity.
var (
	writeFileAtomic = fsutil.WriteFileAtomic
	decodeOnePEM    = pki.DecodeOne
	encodePEM       = pki.Encode
	parseKeyPEM     = pki.ParseKey
	marshalKeyPEM   = pki.MarshalKey
	newKey          = pki.NewKey
	serialHex       = pki.SerialHex
	readSecret      = pki.ReadSecret
)

// PEM block types and size limits, shared with package identity.
const (
	pemCert     = pki.PEMCert
	pemCSR      = pki.PEMCSR
	pemCRL      = pki.PEMCRL
	maxPEMBytes = pki.MaxPEMBytes
	maxCRLBytes = pki.MaxCRLBytes
)

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
