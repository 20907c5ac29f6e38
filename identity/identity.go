package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/pki"
)

// Errors about identities and peers.
var (
	// ErrUnverified: the connection has no verified peer certificate.
	ErrUnverified = errors.New("identity: peer certificate not verified")
	// ErrNoRole: a verified certificate carries no gofunc role.
	ErrNoRole = errors.New("identity: certificate has no gofunc role")
	// ErrKeyMismatch: a certificate and a private key do not belong together.
	ErrKeyMismatch = errors.New("identity: private key does not match certificate")
	// ErrNotIssuedByCA: a certificate is not signed by the identity's CA.
	ErrNotIssuedByCA = errors.New("identity: certificate not issued by this CA")
	// ErrCRLRollback: SetCRL was given a CRL older than the one it has.
	ErrCRLRollback = errors.New("identity: CRL is older than the current one")
	// ErrWrongServer: the server's certificate is valid but its common
	// name is not the host name that was dialled.
	ErrWrongServer = errors.New("identity: server certificate is for another host")
	// ErrRevoked is returned (wrapped) when a peer presents a revoked
	// certificate, and by operations on a revoked certificate.
	ErrRevoked = errors.New("identity: certificate revoked")
	// ErrBadPEM is matched by errors from PEM and DER parsing: not PEM,
	// the wrong block type, trailing data, or DER that does not parse.
	ErrBadPEM = pki.ErrBadPEM
	// ErrKeyPermissions: a private key file is readable by group or
	// others; it is refused rather than used.
	ErrKeyPermissions = pki.ErrKeyPermissions
)

// Identity is a certificate, its private key and the CA that issued it:
// everything one end of a gofunc connection needs. The certificate and key
// can be replaced while servers and clients use the identity (renewal):
// the TLS configs it makes fetch them per handshake, so connections pick
// up the new certificate without a restart. It also holds the current CRL
// and refuses revoked peers. An Identity is safe for concurrent use.
type Identity struct {
	ca    *x509.Certificate
	caPEM []byte
	roots *x509.CertPool

	cur atomic.Pointer[tls.Certificate] // Leaf is always set
	crl atomic.Pointer[crlState]

	mu  sync.Mutex // serializes Save and renewal
	dir string     // where Load or Save last put it; renewals are saved there
}

type crlState struct {
	number     *big.Int
	thisUpdate time.Time
	nextUpdate time.Time
	revoked    map[string]struct{} // serial hex
	der        []byte
}

// New returns the identity made of leaf, its key and the CA certificate
// that issued it. It checks that leaf was issued by caCert and matches
// key. The identity has no directory until Save.
func New(caCert, leaf *x509.Certificate, key *ecdsa.PrivateKey) (*Identity, error) {
	return newIdentity(caCert, leaf, key, nil)
}

// newIdentity is New with the CA certificate's PEM as read (nil: encode
// caCert).
func newIdentity(caCert, leaf *x509.Certificate, key *ecdsa.PrivateKey, caPEM []byte) (*Identity, error) {
	if err := leaf.CheckSignatureFrom(caCert); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotIssuedByCA, err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, ErrKeyMismatch
	}
	if caPEM == nil {
		caPEM = pki.Encode(pki.PEMCert, caCert.Raw)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	id := &Identity{ca: caCert, caPEM: caPEM, roots: roots}
	id.cur.Store(&tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf})
	return id, nil
}

// Load reads an identity directory: ca.pem, cert.pem, key.pem
// (which must not be readable by group or others) and, if present,
// crl.pem. It finishes a renewal that a crash interrupted (see Save).
func Load(dir string) (*Identity, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.FileCACert))
	if err != nil {
		return nil, fmt.Errorf("identity: load identity: %w", err)
	}
	caCert, err := ParseCertificatePEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, pki.FileCACert), err)
	}
	leaf, key, err := loadPair(dir)
	if err != nil {
		return nil, err
	}
	id, err := newIdentity(caCert, leaf, key, caPEM)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", dir, err)
	}
	id.dir = dir
	if crlPEM, err := os.ReadFile(filepath.Join(dir, pki.FileCRL)); err == nil {
		der, err := pki.DecodeOne(crlPEM, pki.PEMCRL, pki.MaxCRLBytes)
		if err == nil {
			err = id.SetCRL(der)
		}
		if err != nil {
			return nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, pki.FileCRL), err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("identity: %w", err)
	}
	return id, nil
}

// loadPair reads cert.pem and key.pem. Save replaces them with a
// two-step commit (key.pem.new and cert.pem.new are written first, then
// renamed key first); if a crash left key.pem new and cert.pem old,
// cert.pem.new holds the matching certificate and the rename is finished
// here.
func loadPair(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	keyPEM, err := pki.ReadSecret(filepath.Join(dir, pki.FileKey))
	if err != nil {
		return nil, nil, err
	}
	key, err := pki.ParseKey(keyPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("identity: %s: %w", filepath.Join(dir, pki.FileKey), err)
	}
	leaf, err := readCert(filepath.Join(dir, pki.FileCert))
	if err != nil {
		return nil, nil, err
	}
	if key.PublicKey.Equal(leaf.PublicKey) {
		return leaf, key, nil
	}
	pending := filepath.Join(dir, pki.FileCert+".new")
	next, err := readCert(pending)
	if err != nil || !key.PublicKey.Equal(next.PublicKey) {
		return nil, nil, fmt.Errorf("identity: %s: %w", dir, ErrKeyMismatch)
	}
	if err := os.Rename(pending, filepath.Join(dir, pki.FileCert)); err != nil {
		return nil, nil, fmt.Errorf("identity: finish interrupted renewal: %w", err)
	}
	return next, key, fsutil.SyncDir(dir)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	c, err := ParseCertificatePEM(b)
	if err != nil {
		return nil, fmt.Errorf("identity: %s: %w", path, err)
	}
	return c, nil
}

// Save writes the identity into dir (created 0700 if missing): ca.pem,
// cert.pem, key.pem (0600) and crl.pem when a CRL is set. Every file is
// written atomically; cert.pem and key.pem are replaced as a pair (see
// Load), so a crash never leaves a certificate without its key.
// Later renewals are saved to the same directory.
func (id *Identity) Save(dir string) error {
	return id.saveTo(dir, true)
}

func (id *Identity) saveTo(dir string, withCRL bool) error {
	id.mu.Lock()
	defer id.mu.Unlock()
	if err := id.saveLocked(dir, id.cur.Load(), withCRL); err != nil {
		return err
	}
	id.dir = dir
	return nil
}

// saveLocked writes c (and the CA, and the CRL when withCRL and newer
// than the one in dir) into dir.
func (id *Identity) saveLocked(dir string, c *tls.Certificate, withCRL bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("identity: save identity: %w", err)
	}
	keyPEM, err := pki.MarshalKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return fmt.Errorf("identity: save identity: %w", err)
	}
	steps := []struct {
		name string
		data []byte
		perm fs.FileMode
	}{
		{pki.FileCACert, id.caPEM, 0o644},
		{pki.FileKey + ".new", keyPEM, 0o600},
		{pki.FileCert + ".new", pki.Encode(pki.PEMCert, c.Leaf.Raw), 0o644},
	}
	if s := id.crl.Load(); s != nil && withCRL && crlNewerThanFile(s, filepath.Join(dir, pki.FileCRL)) {
		steps = append(steps, struct {
			name string
			data []byte
			perm fs.FileMode
		}{pki.FileCRL, pki.Encode(pki.PEMCRL, s.der), 0o644})
	}
	for _, s := range steps {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, s.name), s.data, s.perm); err != nil {
			return fmt.Errorf("identity: save identity: %w", err)
		}
	}
	for _, f := range []string{pki.FileKey, pki.FileCert} {
		if err := os.Rename(filepath.Join(dir, f+".new"), filepath.Join(dir, f)); err != nil {
			return fmt.Errorf("identity: save identity: %w", err)
		}
	}
	return fsutil.SyncDir(dir)
}

// crlNewerThanFile reports whether s is newer than the CRL stored at
// path (or path holds none): Save must never replace a CRL with an older
// one, for instance in a CA directory.
func crlNewerThanFile(s *crlState, path string) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return true
	}
	der, err := pki.DecodeOne(b, pki.PEMCRL, pki.MaxCRLBytes)
	if err != nil {
		return true
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil || rl.Number == nil {
		return true
	}
	return s.number.Cmp(rl.Number) > 0
}

// Name returns the certificate's common name: the minion's host name or
// the overlord user's name.
func (id *Identity) Name() string { return id.Leaf().Subject.CommonName }

// Role returns the certificate's role.
func (id *Identity) Role() gofunc.Role { return pki.RoleOf(id.Leaf()) }

// Leaf returns the current certificate.
func (id *Identity) Leaf() *x509.Certificate { return id.cur.Load().Leaf }

// CACert returns the CA certificate.
func (id *Identity) CACert() *x509.Certificate { return id.ca }

// CAFingerprint returns "sha256:<hex>" of the CA certificate.
func (id *Identity) CAFingerprint() string { return CertFingerprint(id.ca) }

// Certificate returns the current certificate and key for crypto/tls.
// The value must not be modified.
func (id *Identity) Certificate() *tls.Certificate { return id.cur.Load() }

// Dir returns the directory the identity was loaded from or last saved
// to, "" if none.
func (id *Identity) Dir() string {
	id.mu.Lock()
	defer id.mu.Unlock()
	return id.dir
}

// Roots returns a pool holding only the CA certificate.
func (id *Identity) Roots() *x509.CertPool { return id.roots.Clone() }

// replace swaps in a new certificate and key, checking they belong to
// the same CA and name and role.
func (id *Identity) replace(leaf *x509.Certificate, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	if err := leaf.CheckSignatureFrom(id.ca); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotIssuedByCA, err)
	}
	if !key.PublicKey.Equal(leaf.PublicKey) {
		return nil, ErrKeyMismatch
	}
	old := id.Leaf()
	if leaf.Subject.CommonName != old.Subject.CommonName || RoleOf(leaf) != RoleOf(old) {
		return nil, fmt.Errorf("identity: renewed certificate is for %s/%s, want %s/%s",
			leaf.Subject.CommonName, RoleOf(leaf), old.Subject.CommonName, RoleOf(old))
	}
	c := &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}
	return c, nil
}

// SetCRL installs a CRL (DER) issued by the identity's CA. From then on
// peers whose certificate it lists are refused, by new handshakes and by
// Revoked. A CRL whose number is lower than the current one's is refused
// with ErrCRLRollback (an attacker replaying an old CRL must not
// un-revoke anyone); the same number again is accepted and ignored.
func (id *Identity) SetCRL(der []byte) error {
	if len(der) > pki.MaxCRLBytes {
		return fmt.Errorf("%w: CRL of %d bytes", ErrBadPEM, len(der))
	}
	rl, err := x509.ParseRevocationList(der)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	if err := rl.CheckSignatureFrom(id.ca); err != nil {
		return fmt.Errorf("%w: CRL: %w", ErrNotIssuedByCA, err)
	}
	if rl.Number == nil {
		return fmt.Errorf("%w: CRL has no number", ErrBadPEM)
	}
	st := &crlState{
		number:     rl.Number,
		thisUpdate: rl.ThisUpdate,
		nextUpdate: rl.NextUpdate,
		revoked:    make(map[string]struct{}, len(rl.RevokedCertificateEntries)),
		der:        append([]byte(nil), der...),
	}
	for _, e := range rl.RevokedCertificateEntries {
		st.revoked[pki.SerialHex(e.SerialNumber)] = struct{}{}
	}
	for {
		old := id.crl.Load()
		if old != nil {
			switch old.number.Cmp(st.number) {
			case 1:
				return fmt.Errorf("%w: have number %v, got %v", ErrCRLRollback, old.number, st.number)
			case 0:
				return nil
			}
		}
		if id.crl.CompareAndSwap(old, st) {
			return nil
		}
	}
}

// CRLStatus describes the installed CRL.
type CRLStatus struct {
	// Installed is false when the identity has no CRL: it then refuses
	// no peer at all.
	Installed  bool      `json:"installed"`
	Number     int64     `json:"number,omitempty"`
	ThisUpdate time.Time `json:"this_update,omitzero"`
	NextUpdate time.Time `json:"next_update,omitzero"`
	// Age is how long ago the CA made it (now - ThisUpdate).
	Age time.Duration `json:"age_ns,omitempty"`
	// Stale is true past NextUpdate: the CA has made newer CRLs since,
	// and revocations in them are not enforced here. A stale CRL stays in
	// force (a certmaster outage must not stop the fleet), so callers
	// should warn loudly: funcd and func do.
	Stale bool `json:"stale"`
}

// CRLStatus returns the state of the installed CRL at the current time.
func (id *Identity) CRLStatus() CRLStatus {
	s := id.crl.Load()
	if s == nil {
		return CRLStatus{}
	}
	now := time.Now()
	return CRLStatus{Installed: true, Number: s.number.Int64(), ThisUpdate: s.thisUpdate, NextUpdate: s.nextUpdate,
		Age: now.Sub(s.thisUpdate), Stale: !s.nextUpdate.IsZero() && now.After(s.nextUpdate)}
}

// CRLNumber returns the number of the installed CRL, or -1 when none is.
func (id *Identity) CRLNumber() int64 {
	if s := id.crl.Load(); s != nil {
		return s.number.Int64()
	}
	return -1
}

// Revoked reports whether cert is listed in the installed CRL. The TLS
// configs check it at every handshake; a server that keeps connections
// alive calls it again on every request (the minion does), so a
// revocation also cuts off connections made before it, within one CRL
// refresh.
func (id *Identity) Revoked(cert *x509.Certificate) bool {
	s := id.crl.Load()
	if s == nil || cert == nil {
		return false
	}
	_, ok := s.revoked[pki.SerialHex(cert.SerialNumber)]
	return ok
}

// verifyPeerNotRevoked is the VerifyConnection hook of both TLS configs:
// crypto/tls verifies the chain but knows nothing of CRLs.
func (id *Identity) verifyPeerNotRevoked(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil // the handshake's own rules decide whether one is required
	}
	if leaf := cs.PeerCertificates[0]; id.Revoked(leaf) {
		return fmt.Errorf("%w: %s serial %s", ErrRevoked, leaf.Subject.CommonName, pki.SerialHex(leaf.SerialNumber))
	}
	return nil
}

// ServerTLSConfig returns a config for a server using this identity: TLS
// 1.3, or TLS 1.2 with ECDHE and AEAD suites only (no CBC, no SHA-1, no
// RSA key exchange; 1.3 is negotiated whenever the client has it), a client
// certificate required and verified against the CA alone (never the
// system roots), revoked clients refused at the handshake, and the
// current certificate fetched per handshake so renewals apply at once.
// Each call returns a new config the caller may adjust.
func (id *Identity) ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   pki.TLSMinVersion,
		CipherSuites: pki.TLSCipherSuites,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    id.roots,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return id.cur.Load(), nil
		},
		VerifyConnection: id.verifyPeerNotRevoked,
	}
}

// ClientTLSConfig returns a config for dialling serverName with this
// identity: the server's chain is verified against the CA alone and its
// certificate must name serverName (a DNS SAN, or an IP SAN when
// serverName is an address), so an overlord knows which minion answered;
// revoked servers are refused; the client certificate is fetched per
// handshake so renewals apply at once.
//
// When the name dialled is a DNS name, the certificate's common name
// must also equal it (ASCII case-insensitively), or the handshake fails
// with ErrWrongServer: a SAN alone never makes a certificate answer for
// another host. The name checked is the one the handshake used, so a
// config with serverName "" works under net/http, whose Transport sets
// ServerName from each URL's host on a clone of the config. Dialling by
// IP address relies on the IP SAN alone (the CA grants one only to the
// address a request came from, or by the admin's hand). The certmaster
// is not dialled with this config: Enroll, FetchCRL and Renew check its
// role instead, since its names are the admin's choice.
func (id *Identity) ClientTLSConfig(serverName string) *tls.Config {
	return &tls.Config{
		MinVersion:   pki.TLSMinVersion,
		CipherSuites: pki.TLSCipherSuites,
		RootCAs:      id.roots,
		ServerName:   serverName,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.cur.Load(), nil
		},
		VerifyConnection: id.verifyServer,
	}
}

// verifyServer is the client side's VerifyConnection: the server is not
// revoked and, when a DNS name was dialled, its certificate's CN is that
// name. crypto/tls has already checked the chain and the SANs.
func (id *Identity) verifyServer(cs tls.ConnectionState) error {
	if err := id.verifyPeerNotRevoked(cs); err != nil {
		return err
	}
	return checkServerCN(cs)
}

// checkServerCN compares the leaf's CN with cs.ServerName, which
// crypto/tls leaves empty when an IP address was dialled (no SNI).
func checkServerCN(cs tls.ConnectionState) error {
	name := strings.TrimSuffix(cs.ServerName, ".")
	if name == "" || net.ParseIP(name) != nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	if cn := cs.PeerCertificates[0].Subject.CommonName; !asciiEqualFold(cn, name) {
		return fmt.Errorf("%w: dialled %s, certificate is for %s", ErrWrongServer, name, cn)
	}
	return nil
}

// asciiEqualFold is strings.EqualFold for ASCII letters only: Unicode
// folding would match the Kelvin sign with "k", and host names are ASCII.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// PeerFromConnState returns the identity the peer proved on a connection:
// its verified certificate's common name, role and serial. Addr is left
// empty for the caller (the connection's remote address). It returns
// ErrUnverified when the handshake verified no peer certificate and
// ErrNoRole when the certificate carries no gofunc role.
func PeerFromConnState(cs tls.ConnectionState) (gofunc.Peer, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return gofunc.Peer{}, ErrUnverified
	}
	return PeerOf(cs.VerifiedChains[0][0])
}

// PeerOf returns the identity a verified certificate proves: its common
// name, role and serial (Addr is left empty). It returns ErrNoRole when
// the certificate carries no gofunc role. It verifies nothing: use it on
// a certificate a handshake or VerifyPeer has verified.
func PeerOf(cert *x509.Certificate) (gofunc.Peer, error) {
	role := RoleOf(cert)
	if role == "" {
		return gofunc.Peer{}, fmt.Errorf("%w: %s", ErrNoRole, cert.Subject.CommonName)
	}
	return gofunc.Peer{Name: cert.Subject.CommonName, Role: role, Serial: pki.SerialHex(cert.SerialNumber)}, nil
}

// VerifyPeer checks a caller's certificate that reached us without a
// TLS handshake with this identity (through a message broker, say):
// issued by this identity's CA, valid now for client authentication,
// carrying a gofunc role, and not revoked by the CRL held. It returns
// the peer the certificate proves. Proof that the caller holds the
// certificate's key (a signature over the call) is the transport's to
// check. Errors match ErrUnverified, ErrNoRole or ErrRevoked.
func (id *Identity) VerifyPeer(cert *x509.Certificate) (gofunc.Peer, error) {
	if cert == nil {
		return gofunc.Peer{}, ErrUnverified
	}
	opts := x509.VerifyOptions{Roots: id.roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		return gofunc.Peer{}, fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	p, err := PeerOf(cert)
	if err != nil {
		return p, err
	}
	if id.Revoked(cert) {
		return p, fmt.Errorf("%w: %s serial %s", ErrRevoked, p.Name, p.Serial)
	}
	return p, nil
}

// Reload re-reads cert.pem, key.pem and crl.pem from the identity's
// directory (SIGHUP) and swaps them in: for example after another
// process renewed the certificate or an admin dropped in a new CRL. The
// certificate must be from the same CA and for the same name and role;
// an older CRL than the installed one is ignored. It fails when the
// identity has no directory (see Dir).
func (id *Identity) Reload() error {
	dir := id.Dir()
	if dir == "" {
		return errors.New("identity: identity has no directory to reload from")
	}
	leaf, key, err := loadPair(dir)
	if err != nil {
		return err
	}
	next, err := id.replace(leaf, key)
	if err != nil {
		return err
	}
	if crlPEM, err := os.ReadFile(filepath.Join(dir, pki.FileCRL)); err == nil {
		der, err := pki.DecodeOne(crlPEM, pki.PEMCRL, pki.MaxCRLBytes)
		if err == nil {
			err = id.SetCRL(der)
		}
		if err != nil && !errors.Is(err, ErrCRLRollback) {
			return fmt.Errorf("identity: %s: %w", filepath.Join(dir, pki.FileCRL), err)
		}
	}
	id.cur.Store(next)
	return nil
}

// RoleOf returns the role the CA wrote into cert, or "" when the
// certificate carries no consistent gofunc role (its subject OU, its
// role URI SAN and its extended key usages must all agree). RoleOf does
// not verify the signature: use it on certificates from a verified chain
// (PeerFromConnState does).
func RoleOf(cert *x509.Certificate) gofunc.Role { return pki.RoleOf(cert) }

// ParseCertificatePEM parses one PEM "CERTIFICATE" block; errors match
// ErrBadPEM.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) { return pki.ParseCertificate(data) }

// CertFingerprint returns "sha256:<hex>" of the certificate's DER; for
// the CA certificate this is what minions pin.
func CertFingerprint(c *x509.Certificate) string { return pki.Fingerprint(c.Raw) }

// KeyFingerprint returns "sha256:<hex>" of the public key's DER
// SubjectPublicKeyInfo: the fingerprint the admin compares when
// approving a request.
func KeyFingerprint(pub crypto.PublicKey) (string, error) { return pki.KeyFingerprint(pub) }
