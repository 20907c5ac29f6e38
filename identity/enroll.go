package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/fsutil"
	"github.com/gofunc/gofunc/internal/pki"
)

// Enrollment errors.
var (
	// ErrRejected: the admin rejected the request.
	ErrRejected = errors.New("identity: certificate request rejected")
	// ErrNoPin: EnrollRequest has neither CAFingerprint nor InsecureTOFU.
	ErrNoPin = errors.New("identity: no CA fingerprint to pin (set CAFingerprint, or InsecureTOFU to trust on first use)")
	// ErrBadFingerprint: CAFingerprint is not "sha256:" and 64 hex digits.
	ErrBadFingerprint = errors.New(`identity: CA fingerprint must be "sha256:" followed by 64 hex digits`)
)

// Defaults of EnrollRequest's polling.
const (
	DefaultMinPoll = time.Second
	DefaultMaxPoll = time.Minute
)

// EnrollRequest describes one enrollment.
type EnrollRequest struct {
	// Certmaster is the certmaster's host:port (port default 51235).
	Certmaster string
	// CAFingerprint pins the CA: "sha256:<hex>" of its certificate's DER,
	// as `certmaster fingerprint` prints it. Required unless InsecureTOFU.
	CAFingerprint string
	// InsecureTOFU trusts whatever CA the certmaster presents (trust on
	// first use) and logs a warning. Off by default.
	InsecureTOFU bool
	// Name is the minion's name (an RFC 1123 host name). Required.
	Name string
	// Addr is the host:port the minion will listen on; it goes into the
	// certmaster's list of minions. It never adds a DNS SAN (the
	// certificate names Name alone); an IP host becomes an IP SAN when
	// the request comes from that address (Enroll connects from it when
	// the host has it), or when the admin signs. Default "NAME:51234".
	Addr string
	// Token is an enrollment token from `certmaster token create`; with a
	// valid one the request is signed at once.
	Token Token
	// Dir receives key.pem (generated and written 0600 before the request
	// is sent, and reused by a later Enroll while the request is
	// pending), then ca.pem, cert.pem and crl.pem. Required.
	Dir string
	// Logger receives progress; nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// MinPoll and MaxPoll bound the wait between polls while the request
	// is pending: it starts at MinPoll, doubles up to MaxPoll, and is
	// jittered. Defaults 1s and 1m.
	MinPoll, MaxPoll time.Duration
}

var fingerprintRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// NormalizeFingerprint lower-cases a "sha256:<hex>" fingerprint, dropping
// colons between hex pairs, and checks its form.
func NormalizeFingerprint(fp string) (string, error) {
	fp = strings.ToLower(strings.TrimSpace(fp))
	if rest, ok := strings.CutPrefix(fp, "sha256:"); ok {
		fp = "sha256:" + strings.ReplaceAll(rest, ":", "")
	}
	if !fingerprintRE.MatchString(fp) {
		return "", ErrBadFingerprint
	}
	return fp, nil
}

// Enroll gets a minion certificate from the certmaster and returns the
// identity, saved in req.Dir. It connects over TLS without a client
// certificate, checks the certmaster's CA against the pinned fingerprint
// (a mismatch is ErrFingerprintMismatch, before anything is sent) and
// its certificate's certmaster role, then sends the enroll call and
// polls, with capped, jittered backoff, until the request is signed, or
// rejected (ErrRejected), or in conflict with another key (ErrConflict),
// or ctx is done. A busy or unreachable certmaster is retried; other
// faults are returned as *gofunc.Fault.
func Enroll(ctx context.Context, req EnrollRequest) (*Identity, error) {
	logger := req.Logger
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	name, err := ValidateName(req.Name)
	if err != nil {
		return nil, err
	}
	if req.Dir == "" {
		return nil, errors.New("identity: EnrollRequest.Dir is empty")
	}
	v := &certmasterVerifier{tofu: req.InsecureTOFU, logger: logger}
	switch {
	case req.CAFingerprint != "":
		if v.pin, err = NormalizeFingerprint(req.CAFingerprint); err != nil {
			return nil, err
		}
	case !req.InsecureTOFU:
		return nil, ErrNoPin
	}
	key, err := loadOrCreateKey(req.Dir)
	if err != nil {
		return nil, err
	}
	csrPEM, err := makeCSR(key, name)
	if err != nil {
		return nil, err
	}
	c, err := newRPCClient(req.Certmaster, v.tlsConfig(nil))
	if err != nil {
		return nil, err
	}
	defer c.close()
	if ip := listenIP(req.Addr); ip != nil {
		c.tr.DialContext = dialFrom(ip, c.tr.DialContext)
	}
	args := map[string]any{"csr": string(csrPEM), "name": name}
	if req.Addr != "" {
		args["addr"] = req.Addr
	}
	if req.Token != "" {
		args["token"] = req.Token.Reveal()
	}
	keyFP, err := KeyFingerprint(key.Public())
	if err != nil {
		return nil, err
	}
	logger = logger.With("certmaster", req.Certmaster, "name", name)
	bo := backoff{min: req.MinPoll, max: req.MaxPoll}
	for {
		var ans enrollAnswer
		err := c.call(ctx, "enroll", &ans, args)
		switch {
		case err == nil:
		case errors.Is(err, ErrFingerprintMismatch), errors.Is(err, ErrNotCertmaster):
			return nil, err
		case errors.Is(err, gofunc.ErrBusy):
			logger.Debug("certmaster busy; backing off")
		case isFault(err):
			return nil, err
		case ctx.Err() != nil:
			return nil, fmt.Errorf("identity: enroll: %w", ctx.Err())
		default:
			logger.Warn("certmaster unreachable; retrying", "error", err)
		}
		if err == nil {
			switch ans.Status { // the certmaster's request statuses
			case "signed":
				return finishEnroll(ans, key, name, v.ca(), req.Dir)
			case "rejected":
				return nil, fmt.Errorf("%w: %s", ErrRejected, ans.Reason)
			case "conflict":
				return nil, gofunc.Errorf(gofunc.CodeConflict, "certificate request conflicts: %s", ans.Reason)
			case "pending":
				// The admin compares this with `certmaster list` before
				// signing, as with salt-key -f.
				logger.Info("certificate request pending; waiting for the admin to sign it (certmaster list shows the same key fingerprint)",
					"key_fingerprint", keyFP)
			default:
				return nil, fmt.Errorf("identity: enroll: unknown status %q", ans.Status)
			}
		}
		if err := bo.wait(ctx); err != nil {
			return nil, fmt.Errorf("identity: enroll: %w", err)
		}
	}
}

// listenIP returns the host of addr when it is a specific IP address
// (not 0.0.0.0 or ::), else nil.
func listenIP(addr string) net.IP {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsUnspecified() {
		return nil
	}
	return ip
}

// dialFrom dials from ip when the host has that address, else with
// fallback. The certmaster grants an IP SAN without the admin only to
// the address a request comes from, so a minion that will listen on ip
// asks from ip: that proves the address is its own.
func dialFrom(ip net.IP, fallback func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 15 * time.Second, LocalAddr: &net.TCPAddr{IP: ip}}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if conn, err := d.DialContext(ctx, network, addr); err == nil {
			return conn, nil
		}
		return fallback(ctx, network, addr)
	}
}

func isFault(err error) bool {
	var f *gofunc.Fault
	return errors.As(err, &f)
}

type enrollAnswer struct {
	Status string `xmlrpc:"status"`
	Reason string `xmlrpc:"reason"`
	Cert   string `xmlrpc:"cert"`
	CA     string `xmlrpc:"ca"`
	CRL    string `xmlrpc:"crl"`
}

// finishEnroll checks the signed certificate (issued by the CA the TLS
// handshake proved, for our key, name and role) and saves the identity.
func finishEnroll(ans enrollAnswer, key *ecdsa.PrivateKey, name string, seenCA *x509.Certificate, dir string) (*Identity, error) {
	caCert, err := ParseCertificatePEM([]byte(ans.CA))
	if err != nil {
		return nil, fmt.Errorf("identity: enroll answer: CA: %w", err)
	}
	if seenCA == nil || !caCert.Equal(seenCA) {
		return nil, fmt.Errorf("%w: the answer's CA is not the one the connection was verified with", ErrFingerprintMismatch)
	}
	leaf, err := ParseCertificatePEM([]byte(ans.Cert))
	if err != nil {
		return nil, fmt.Errorf("identity: enroll answer: certificate: %w", err)
	}
	id, err := newIdentity(caCert, leaf, key, []byte(ans.CA))
	if err != nil {
		return nil, err
	}
	if id.Name() != name || id.Role() != gofunc.RoleMinion {
		return nil, fmt.Errorf("identity: enroll answer: certificate is for %s/%s, want %s/minion", id.Name(), id.Role(), name)
	}
	if ans.CRL != "" {
		der, err := pki.DecodeOne([]byte(ans.CRL), pki.PEMCRL, pki.MaxCRLBytes)
		if err == nil {
			err = id.SetCRL(der)
		}
		if err != nil {
			return nil, fmt.Errorf("identity: enroll answer: CRL: %w", err)
		}
	}
	if err := id.Save(dir); err != nil {
		return nil, err
	}
	return id, nil
}

// loadOrCreateKey returns dir/key.pem, creating it (0600, dir 0700)
// first if missing. Reusing it matters: a minion restarted while its
// request is pending must ask with the same key, or it would conflict
// with itself.
func loadOrCreateKey(dir string) (*ecdsa.PrivateKey, error) {
	path := filepath.Join(dir, pki.FileKey)
	b, err := pki.ReadSecret(path)
	if err == nil {
		k, err := pki.ParseKey(b)
		if err != nil {
			return nil, fmt.Errorf("identity: %s: %w", path, err)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	k, err := pki.NewKey()
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	keyPEM, err := pki.MarshalKey(k)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("identity: write key: %w", err)
	}
	return k, nil
}

// makeCSR makes a PEM CSR for name. The CA reads only its key and checks
// its CN; it carries a DNS SAN too so that other CAs' tools show the
// request sensibly.
func makeCSR(key *ecdsa.PrivateKey, name string) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: name},
		DNSNames: []string{name},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("identity: make CSR: %w", err)
	}
	return pki.Encode(pki.PEMCSR, der), nil
}

// backoff is a capped exponential wait with jitter: each wait is random
// in [d/2, d], d doubling from min to max, so a fleet restarted at once
// does not poll in lockstep.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

func (b *backoff) next() time.Duration {
	if b.min <= 0 {
		b.min = DefaultMinPoll
	}
	if b.max < b.min {
		b.max = max(DefaultMaxPoll, b.min)
	}
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	half := b.cur / 2
	return half + mrand.N(b.cur-half+1)
}

func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.next())
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
