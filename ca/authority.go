package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/pki"
)

// Errors returned by Init, Open and the Authority's methods. An Open
// that finds the CA key readable by others fails with
// identity.ErrKeyPermissions.
var (
	// ErrExists: Init found a CA in the directory already.
	ErrExists = errors.New("ca: a CA already exists in this directory")
	// ErrNoCA: Open found no CA in the directory.
	ErrNoCA = errors.New("ca: no CA in this directory (run certmaster init)")
	// ErrNotFound: no certificate or request matches a name, glob or
	// serial. A CodeNotFound fault, so errors.Is(err, gofunc.ErrNotFound)
	// holds here as on the wire.
	ErrNotFound = &gofunc.Fault{Code: gofunc.CodeNotFound, Message: "ca: not found"}
)

// Default values of Config fields.
const (
	DefaultName        = "gofunc CA"
	DefaultValidity    = 365 * 24 * time.Hour
	DefaultCAValidity  = 10 * 365 * 24 * time.Hour
	DefaultCRLValidity = 7 * 24 * time.Hour
	DefaultMaxStored   = 10000
	DefaultMaxLive     = 4
)

// clockSkew backdates NotBefore so that a peer whose clock is a little
// behind still accepts a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// Config configures an Authority. Zero fields mean the defaults noted.
type Config struct {
	// Dir is the CA directory (see the package documentation for its
	// layout). Required.
	Dir string
	// Name is the CA certificate's common name; Init only. Default
	// "gofunc CA".
	Name string
	// Validity is the lifetime of the certificates the CA issues; default
	// one year (365*24h). Certificates never outlive the CA certificate.
	Validity time.Duration
	// CAValidity is the CA certificate's lifetime; Init only. Default ten
	// years.
	CAValidity time.Duration
	// CRLValidity is how far ahead each CRL's NextUpdate lies; default
	// seven days. A fresh CRL is made on every revocation and whenever the
	// current one is past half of this.
	CRLValidity time.Duration
	// Audit receives a record of every request, signature, rejection,
	// revocation and token use: an *audit.Log, or an *audit.Shared when
	// the daemon and the admin's commands share DIR/audit.log. Nil means no audit, which is only meant for
	// library use such as tests; the certmaster daemon always opens
	// DIR/audit.log. When set, an audit write that fails stops the
	// operation it describes.
	Audit audit.Appender
	// Logger receives operational logs; nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// MaxStored caps the requests kept in DIR/requests (pending,
	// rejected or conflicting) so that a flood of requests from many
	// addresses cannot fill the disk; default 10000. A new request over
	// the cap is refused with ErrTooManyRequests (CodeBusy on the wire)
	// and nothing is stored; requests already stored are still answered.
	// `certmaster clean` makes room.
	MaxStored int
	// MaxLive caps the valid (unexpired, unrevoked) certificates one name
	// may hold in its role at once; default 4 (a renewal overlaps its
	// parent, and an overlord user may have a certificate per device).
	// Renew refuses one more with ErrTooManyCertificates (the admin's
	// Issue is not capped, and a request for a name with a valid
	// certificate is a conflict anyway).
	MaxLive int
	// ReserveBytes is the size of DIR/reserve, disk space set aside so
	// that a revocation can still be written when the disk is full (see
	// reserve.go); default 8 MiB, negative for none.
	ReserveBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Validity <= 0 {
		c.Validity = DefaultValidity
	}
	if c.CAValidity <= 0 {
		c.CAValidity = DefaultCAValidity
	}
	if c.CRLValidity <= 0 {
		c.CRLValidity = DefaultCRLValidity
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.MaxStored <= 0 {
		c.MaxStored = DefaultMaxStored
	}
	if c.MaxLive <= 0 {
		c.MaxLive = DefaultMaxLive
	}
	if c.ReserveBytes == 0 {
		c.ReserveBytes = DefaultReserveBytes
	}
	return c
}

// Authority is an open CA directory. It is safe for concurrent use by
// many goroutines, and several processes may open the same directory: all
// changes happen under an exclusive lock (see the package documentation).
type Authority struct {
	cfg    Config
	dir    string
	cert   *x509.Certificate
	certPE []byte
	key    *ecdsa.PrivateKey
	lock   *dirLock
	st     store // the cached index; used under lock only

	crlCache atomic.Pointer[crlFile]
	submits  submitQueue
	refusals refusalLimiter

	reserveMu    sync.Mutex
	reserveOK    bool      // DIR/reserve is in place
	reserveTried time.Time // last attempt to make it

	fullMu      sync.Mutex
	fullAudited time.Time // last audit record of a refusal for a full request store
}

// Files and directories of a CA directory.
const (
	fileCACert    = "ca.pem"
	fileCAKey     = "ca-key.pem"
	fileCert      = "cert.pem"
	fileKey       = "key.pem"
	fileCRL       = "crl.pem"
	fileTokens    = "tokens.json"
	fileLock      = "lock"
	dirRequests   = "requests"
	fileAuditName = "audit.log"
)

// Init creates a new CA in cfg.Dir (made 0700 if missing): an ECDSA P-256
// key (ca-key.pem, 0600), a self-signed CA certificate (ca.pem), an empty
// index and a first CRL. It returns ErrExists if the directory already
// holds a CA.
func Init(cfg Config) (*Authority, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("ca: Config.Dir is empty")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, dirRequests), 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	a := newAuthority(cfg)
	unlock, err := a.lock.lock(context.Background(), lockExclusive)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for _, f := range []string{fileCACert, fileCAKey} {
		if _, err := os.Lstat(a.path(f)); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrExists, a.path(f))
		}
	}
	if err := a.create(); err != nil {
		return nil, err
	}
	cfg.Logger.Info("ca created", "dir", cfg.Dir, "fingerprint", a.Fingerprint())
	return a, nil
}

func (a *Authority) create() error {
	key, err := newKey()
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	now := a.cfg.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: a.cfg.Name, Organization: []string{"gofunc"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(a.cfg.CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("ca: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	keyPEM, err := marshalKeyPEM(key)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	a.cert, a.certPE, a.key = cert, encodePEM(pemCert, der), key
	// The key first and the certificate last: ca.pem is what marks a
	// finished CA, so a crash in between leaves a directory that Init
	// reports as existing and Open refuses, never a CA without its key.
	if err := writeFileAtomic(a.path(fileCAKey), keyPEM, 0o600); err != nil {
		return fmt.Errorf("ca: write CA key: %w", err)
	}
	der, number, err := a.signCRL(newIndex())
	if err != nil {
		return err
	}
	if err := a.writeCRL(der); err != nil {
		return err
	}
	if err := createJournal(a.path(fileJournal), []entry{{Op: opCRL, Number: number, At: a.cfg.Now()}}); err != nil {
		return err
	}
	if err := writeFileAtomic(a.path(fileCACert), a.certPE, 0o644); err != nil {
		return fmt.Errorf("ca: write CA certificate: %w", err)
	}
	return nil
}

// Open opens an existing CA directory. It returns ErrNoCA when there is
// none, and identity.ErrKeyPermissions when the CA key is readable by others.
func Open(cfg Config) (*Authority, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("ca: Config.Dir is empty")
	}
	a := newAuthority(cfg)
	certPEM, err := os.ReadFile(a.path(fileCACert))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNoCA, cfg.Dir)
	}
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	cert, err := identity.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", a.path(fileCACert), err)
	}
	keyPEM, err := readSecret(a.path(fileCAKey))
	if err != nil {
		return nil, err
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca: %s: %w", a.path(fileCAKey), err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match %s", fileCAKey, fileCACert)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, dirRequests), 0o700); err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	a.cert, a.certPE, a.key = cert, certPEM, key
	unlock, err := a.lock.lock(context.Background(), lockExclusive)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := a.migrate(); err != nil {
		return nil, err
	}
	return a, nil
}

func newAuthority(cfg Config) *Authority {
	return &Authority{
		cfg: cfg, dir: cfg.Dir,
		lock: newDirLock(filepath.Join(cfg.Dir, fileLock)),
		st:   store{path: filepath.Join(cfg.Dir, fileJournal)},
	}
}

func (a *Authority) path(name string) string { return filepath.Join(a.dir, name) }

// Dir returns the CA directory.
func (a *Authority) Dir() string { return a.dir }

// Fingerprint returns "sha256:<hex>" of the CA certificate's DER: the
// value minions pin when they enroll.
func (a *Authority) Fingerprint() string { return identity.CertFingerprint(a.cert) }

// Certificate returns the CA certificate.
func (a *Authority) Certificate() *x509.Certificate { return a.cert }

// CertificatePEM returns the CA certificate in PEM form.
func (a *Authority) CertificatePEM() []byte { return slices.Clone(a.certPE) }

func (a *Authority) logger() hclog.Logger { return a.cfg.Logger }

// IssueOptions adjusts a certificate made by Issue.
type IssueOptions struct {
	// IPs become IP SANs (minion and certmaster certificates only).
	IPs []net.IP
	// DNSNames are extra DNS SANs besides the name (minion and
	// certmaster only); each must pass ValidateName.
	DNSNames []string
	// Validity overrides Config.Validity when positive.
	Validity time.Duration
	// Addr is the host:port a minion listens on, recorded in the index
	// and served by list_minions; default "NAME:51234".
	Addr string
}

// DefaultMinionPort is the minion's XML-RPC port, used for a minion's
// address when its request names none.
const DefaultMinionPort = "51234"

// Issue makes a key pair and a certificate for name in role, records it
// and returns the identity (with the private key, which is not kept by
// the CA). It is the admin's direct path: no request, no approval; for
// example `certmaster issue-overlord` and test harnesses.
func (a *Authority) Issue(role gofunc.Role, name string, opts IssueOptions) (*identity.Identity, error) {
	key, err := newKey()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	spec, err := a.specFor(role, name, opts)
	if err != nil {
		return nil, err
	}
	spec.pub = key.Public()
	var cert *x509.Certificate
	err = a.update(context.Background(), func(tx *txn) error {
		if role != gofunc.RoleMinion && role != gofunc.RoleCertmaster {
			if rr, err := tx.readRequest(spec.name); err != nil {
				return err
			} else if rr != nil {
				return fmt.Errorf("%w: a minion request for %s is stored; certmaster clean it first", ErrNameTaken, spec.name)
			}
		}
		c, err := a.issueLocked(tx, spec, event{Kind: KindSign, Details: map[string]string{"via": "issue"}})
		cert = c
		return err
	})
	if err != nil {
		return nil, err
	}
	return identity.New(a.cert, cert, key)
}

// specFor validates role, name and options into what issueLocked needs.
func (a *Authority) specFor(role gofunc.Role, name string, opts IssueOptions) (signSpec, error) {
	if !pki.ValidRole(role) {
		return signSpec{}, fmt.Errorf("ca: unknown role %q", role)
	}
	canon, err := identity.ValidateName(name)
	if err != nil {
		return signSpec{}, err
	}
	spec := signSpec{role: role, name: canon, validity: opts.Validity, ips: opts.IPs, addr: opts.Addr}
	if !role.Serves() {
		if len(opts.IPs) > 0 || len(opts.DNSNames) > 0 {
			return signSpec{}, fmt.Errorf("ca: a %s certificate carries no DNS or IP names (only the roles that serve do: minion, certmaster, broker, delegate)", role)
		}
		return spec, nil
	}
	spec.dns = []string{canon}
	for _, d := range opts.DNSNames {
		c, err := identity.ValidateName(d)
		if err != nil {
			return signSpec{}, err
		}
		if !slices.Contains(spec.dns, c) {
			spec.dns = append(spec.dns, c)
		}
	}
	if role == gofunc.RoleMinion && spec.addr == "" {
		spec.addr = net.JoinHostPort(canon, DefaultMinionPort)
	}
	return spec, nil
}

// signSpec is everything that goes into a certificate. The subject and
// every extension are built from it alone.
type signSpec struct {
	role     gofunc.Role
	name     string // validated, canonical
	pub      crypto.PublicKey
	dns      []string
	ips      []net.IP
	validity time.Duration
	addr     string
	seen     string // the requester's IP address, if it made a request
	parent   string // the serial a renewal renews
}

// issueLocked signs spec and records the certificate in tx. The audit
// record ev is written before the journal: a signature the audit log
// does not know about is never handed out.
func (a *Authority) issueLocked(tx *txn, spec signSpec, ev event) (*x509.Certificate, error) {
	return a.recordIssued(tx, nil, spec, ev)
}

// issued is a certificate signed but not yet recorded: Submit signs
// ahead, outside the lock, when a request will most likely be signed
// (autosign, token), so that the signing work of a burst of requests
// runs on every core instead of one at a time under the lock.
type issued struct {
	spec signSpec
	cert *x509.Certificate
	rec  certRecord
}

// sign makes the certificate for spec with a fresh random serial. It
// touches no state.
func (a *Authority) sign(spec signSpec) (*issued, error) {
	if _, ok := spec.pub.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("ca: public key is %T, want ECDSA", spec.pub)
	}
	keyFP, err := identity.KeyFingerprint(spec.pub)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	validity := spec.validity
	if validity <= 0 {
		validity = a.cfg.Validity
	}
	now := a.cfg.Now()
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         spec.name,
			OrganizationalUnit: []string{pki.RoleOU(spec.role)},
			Organization:       []string{"gofunc"},
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           pki.RoleEKU(spec.role),
		BasicConstraintsValid: true,
		DNSNames:              spec.dns,
		IPAddresses:           spec.ips,
		URIs:                  []*url.URL{pki.RoleURI(spec.role)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, spec.pub, a.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return &issued{spec: spec, cert: cert, rec: certRecord{
		Serial:    serialHex(serial),
		Name:      spec.name,
		Role:      spec.role,
		NotBefore: cert.NotBefore.UTC(),
		NotAfter:  cert.NotAfter.UTC(),
		KeyFP:     keyFP,
		Addr:      spec.addr,
		IPs:       ipStrings(spec.ips),
		Seen:      spec.seen,
	}}, nil
}

// recordIssued records a certificate for spec in tx: pre, when it was
// signed ahead for this very spec with a serial still unused, else a new
// one signed here.
func (a *Authority) recordIssued(tx *txn, pre *issued, spec signSpec, ev event) (*x509.Certificate, error) {
	is := pre
	if is == nil || !is.spec.equal(spec) {
		is = nil
	}
	if spec.parent == "" {
		// A renewal keeps its parent's name and role; anything new must
		// not take a name another role holds.
		if err := tx.ix.checkNameRole(spec.name, spec.role); err != nil {
			return nil, err
		}
	}
	for is == nil || tx.ix.find(is.rec.Serial) != nil {
		var err error
		if is, err = a.sign(spec); err != nil {
			return nil, err
		}
	}
	rec := is.rec
	rec.Parent = spec.parent
	ev.Caller, ev.Role, ev.Serial = spec.name, string(spec.role), rec.Serial
	ev.Details = withDetail(ev.Details, "key_fingerprint", rec.KeyFP, "not_after", rec.NotAfter.Format(time.RFC3339))
	if spec.addr != "" {
		ev.Details["addr"] = spec.addr
	}
	tx.audit(ev)
	if err := tx.record(entry{Op: opCert, Cert: &rec, DER: is.cert.Raw}); err != nil {
		return nil, err
	}
	a.logger().Info("certificate issued", "name", spec.name, "role", spec.role, "serial", rec.Serial, "not_after", rec.NotAfter)
	return is.cert, nil
}

// equal reports whether two specs make the same certificate (apart from
// serial and validity dates).
func (s signSpec) equal(o signSpec) bool {
	pk, ok := s.pub.(*ecdsa.PublicKey)
	return ok && pk.Equal(o.pub) && s.role == o.role && s.name == o.name && s.validity == o.validity &&
		s.addr == o.addr && s.seen == o.seen && s.parent == o.parent && slices.Equal(s.dns, o.dns) && slices.EqualFunc(s.ips, o.ips, net.IP.Equal)
}

// ipStrings is ips in text form, nil for none.
func ipStrings(ips []net.IP) []string {
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	return out
}

func withDetail(m map[string]string, kv ...string) map[string]string {
	if m == nil {
		m = make(map[string]string, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// CertInfo describes an issued certificate, as listed by Signed.
type CertInfo struct {
	Serial         string      `json:"serial"` // lower-case hex
	Name           string      `json:"name"`
	Role           gofunc.Role `json:"role"`
	NotBefore      time.Time   `json:"not_before"`
	NotAfter       time.Time   `json:"not_after"`
	KeyFingerprint string      `json:"key_fingerprint"`
	Addr           string      `json:"addr,omitempty"` // minion listen address
	// Revoked certificates carry their revocation time and RFC 5280
	// reason.
	Revoked   bool             `json:"revoked"`
	RevokedAt time.Time        `json:"revoked_at,omitzero"`
	Reason    RevocationReason `json:"reason,omitempty"`
}

// Expired reports whether the certificate is past its NotAfter at t.
func (c CertInfo) Expired(t time.Time) bool { return !t.Before(c.NotAfter) }

// Signed lists every certificate the CA has issued, oldest first,
// including expired and revoked ones.
func (a *Authority) Signed() ([]CertInfo, error) {
	var out []CertInfo
	err := a.view(context.Background(), func(ix *index) error {
		for _, r := range ix.Certs {
			out = append(out, r.info())
		}
		return nil
	})
	return out, err
}

// CertificatePEMBySerial returns an issued certificate by its serial (hex).
func (a *Authority) CertificatePEMBySerial(serial string) ([]byte, error) {
	canon, ok := normalizeSerial(serial)
	if !ok {
		return nil, fmt.Errorf("%w: serial %q", ErrNotFound, serial)
	}
	var der []byte
	err := a.view(context.Background(), func(ix *index) error {
		r := ix.find(canon)
		if r == nil {
			return fmt.Errorf("%w: serial %s", ErrNotFound, canon)
		}
		d, err := a.st.certDER(r)
		der = d
		return err
	})
	if err != nil {
		return nil, err
	}
	return encodePEM(pemCert, der), nil
}
