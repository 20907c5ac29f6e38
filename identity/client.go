package identity

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/pki"
	"github.com/gofunc/gofunc/internal/xmlrpc"
)

// ErrFingerprintMismatch: the certmaster presented a CA whose SHA-256
// fingerprint is not the pinned one. Enroll stops before sending
// anything.
var ErrFingerprintMismatch = errors.New("identity: certmaster's CA does not match the pinned fingerprint")

// ErrNotCertmaster: the server's certificate is valid for the CA but not
// issued to the certmaster (a minion posing as the certmaster).
var ErrNotCertmaster = errors.New("identity: server is not the certmaster")

// maxResponseBytes bounds a certmaster answer (a CRL can be large).
const maxResponseBytes = pki.MaxCRLBytes + 64<<10

// certmasterURL turns "host:port" or "host" into the certmaster's URL.
func certmasterURL(certmaster string) (string, error) {
	if certmaster == "" {
		return "", errors.New("identity: certmaster address is empty")
	}
	host, port, err := net.SplitHostPort(certmaster)
	if err != nil {
		host, port = certmaster, strconv.Itoa(gofunc.DefaultCertmasterPort)
		if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			host = strings.Trim(host, "[]")
		}
	}
	if host == "" {
		return "", fmt.Errorf("identity: certmaster address %q has no host", certmaster)
	}
	return "https://" + net.JoinHostPort(host, port) + "/", nil
}

// rpcClient calls the certmaster over its own http.Client (for mutual
// TLS, contexts and fault codes), taking the client side's three steps
// of internal/xmlrpc: kolo/xmlrpc encodes, the bounded decoder decodes,
// Unmarshal converts.
type rpcClient struct {
	url string
	tr  *http.Transport
	hc  *http.Client
}

func newRPCClient(certmaster string, cfg *tls.Config) (*rpcClient, error) {
	u, err := certmasterURL(certmaster)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig:       cfg,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       time.Minute,
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
	}
	return &rpcClient{url: u, tr: tr, hc: &http.Client{Transport: tr}}, nil
}

func (c *rpcClient) close() { c.tr.CloseIdleConnections() }

// call sends method(args...) and decodes the answer into out. A fault
// comes back as a *gofunc.Fault; an answer that is not XML-RPC, or is
// over maxResponseBytes, is a plain error (the certmaster, or whatever
// answered, is broken: Enroll retries).
func (c *rpcClient) call(ctx context.Context, method string, out any, args ...any) error {
	body, err := xmlrpc.EncodeRequest(method, args...)
	if err != nil {
		return fmt.Errorf("identity: encode %s: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("identity: %s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("identity: %s: HTTP %s", method, resp.Status)
	}
	v, err := xmlrpc.DecodeResponse(resp.Body, xmlrpc.Limits{MaxBytes: maxResponseBytes})
	var respErr *xmlrpc.ResponseError
	switch {
	case errors.As(err, &respErr):
		return fmt.Errorf("identity: %s: bad answer: %v", method, respErr) // %v: not a fault the certmaster sent
	case err != nil:
		return err // the certmaster's *gofunc.Fault
	}
	if err := xmlrpc.Unmarshal(v, out); err != nil {
		return fmt.Errorf("identity: %s: bad answer: %v", method, err) // %v: our decoding, not a fault the certmaster sent
	}
	return nil
}

// certmasterVerifier checks the certmaster's certificate. Go's default
// verification cannot be used: an enrolling minion has no CA certificate
// yet, only its fingerprint, and the certmaster's host name need not be
// in its certificate (minions dial whatever address the admin gave). So
// the tls.Config sets InsecureSkipVerify and this VerifyConnection hook
// does the whole check itself, on every handshake (resumed ones too):
//   - find the CA in the presented chain by the pinned fingerprint (or,
//     with trust on first use, take the chain's CA and log a warning);
//   - verify the leaf against that CA alone, for server auth, now;
//   - require the certmaster role, which only the CA can grant, so a
//     minion's certificate from the same CA cannot pose as the
//     certmaster;
//   - refuse a revoked leaf when an identity with a CRL is at hand.
type certmasterVerifier struct {
	pin    string         // "sha256:<hex>"; "" with tofu
	tofu   bool           // trust whatever CA is presented (logged)
	roots  *x509.CertPool // when the CA is known already (identities)
	id     *Identity      // for the CRL, when known
	logger hclog.Logger   // for the TOFU warning

	mu     sync.Mutex
	seenCA *x509.Certificate // the CA of the last good handshake
}

// ca returns the CA certificate the last good handshake was verified
// against.
func (v *certmasterVerifier) ca() *x509.Certificate {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.seenCA
}

func (v *certmasterVerifier) verify(cs tls.ConnectionState) error {
	certs := cs.PeerCertificates
	if len(certs) == 0 {
		return fmt.Errorf("%w: no certificate presented", ErrNotCertmaster)
	}
	leaf, roots := certs[0], v.roots
	var ca *x509.Certificate
	if roots == nil {
		var seen []string
		for _, c := range certs[1:] {
			fp := CertFingerprint(c)
			seen = append(seen, fp)
			if (v.pin != "" && fp == v.pin) || (v.pin == "" && v.tofu && c.IsCA) {
				ca = c
			}
		}
		if ca == nil {
			if v.pin == "" {
				return fmt.Errorf("%w: the certmaster sent no CA certificate", ErrFingerprintMismatch)
			}
			return fmt.Errorf("%w: want %s, the certmaster sent %v", ErrFingerprintMismatch, v.pin, seen)
		}
		if v.pin == "" {
			v.logger.Warn("trusting the certmaster's CA on first use; pin it with its fingerprint instead",
				"ca_fingerprint", CertFingerprint(ca))
		}
		roots = x509.NewCertPool()
		roots.AddCert(ca)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return fmt.Errorf("identity: certmaster certificate: %w", err)
	}
	if RoleOf(leaf) != gofunc.RoleCertmaster {
		return fmt.Errorf("%w: %s has role %q", ErrNotCertmaster, leaf.Subject.CommonName, RoleOf(leaf))
	}
	if v.id != nil && v.id.Revoked(leaf) {
		return fmt.Errorf("%w: certmaster %s", ErrRevoked, leaf.Subject.CommonName)
	}
	v.mu.Lock()
	v.seenCA = chains[0][len(chains[0])-1]
	v.mu.Unlock()
	return nil
}

// tlsConfig returns the client config for the certmaster; with id, the
// identity's certificate is offered as the client certificate.
func (v *certmasterVerifier) tlsConfig(id *Identity) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         pki.TLSMinVersion,
		CipherSuites:       pki.TLSCipherSuites,
		InsecureSkipVerify: true, // verify does the full check; see certmasterVerifier
		VerifyConnection:   v.verify,
	}
	if id != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return id.cur.Load(), nil
		}
	}
	return cfg
}

// identityClient is an RPC client that authenticates with id and
// trusts only id's CA.
func identityClient(id *Identity, certmaster string) (*rpcClient, error) {
	v := &certmasterVerifier{roots: id.roots, id: id, logger: hclog.NewNullLogger()}
	return newRPCClient(certmaster, v.tlsConfig(id))
}

// MinionInfo is one enrolled minion, as the certmaster's list_minions
// serves it.
type MinionInfo struct {
	Name string `json:"name" xmlrpc:"name"`
	// Addr is the host:port to dial: as FetchMinions returns it, one the
	// CA vouches for (see VouchedAddr).
	Addr     string    `json:"addr" xmlrpc:"addr"`
	Serial   string    `json:"serial" xmlrpc:"serial"`
	NotAfter time.Time `json:"not_after" xmlrpc:"not_after"`
	// IPs are the IP addresses the minion's certificate carries.
	IPs []string `json:"ips,omitempty" xmlrpc:"ips"`
	// Seen is the IP address the certmaster saw the minion's request
	// come from; empty for a certificate the admin issued directly.
	Seen string `json:"seen,omitempty" xmlrpc:"seen"`
	// Claimed is the address the minion asked to be listed with, when
	// FetchMinions replaced it in Addr because the CA does not vouch
	// for it; empty otherwise.
	Claimed string `json:"claimed,omitempty" xmlrpc:"-"`
}

// VouchedAddr is the address an overlord may dial for m. The address a
// minion asks to be listed with is its own claim, and an overlord that
// dialled whatever a minion claims would connect wherever any enrolled
// minion liked (another host's service, a name only an attacker's DNS
// answers). So its host must be one the CA vouches for:
//
//   - an IP address in the minion's certificate (granted only when the
//     request came from it, or when an admin signed the request having
//     seen it);
//   - the IP address the certmaster saw the minion's request come from
//     (Seen), which lets a minion whose certificate has no IP address
//     be reached where it enrolled from;
//   - the minion's own name, which the overlord's resolver turns into
//     addresses, and which the certificate must name anyway.
//
// A claimed address on any other host keeps its port, on Seen if the
// certmaster saw the request, else on the certificate's first IP
// address, else on the name; ok is false then.
func (m MinionInfo) VouchedAddr() (addr string, ok bool) {
	host, port, err := net.SplitHostPort(m.Addr)
	if err != nil {
		return net.JoinHostPort(m.Name, strconv.Itoa(gofunc.DefaultMinionPort)), false
	}
	if strings.EqualFold(host, m.Name) {
		return m.Addr, true
	}
	if ip := net.ParseIP(host); ip != nil {
		for _, s := range append(slices.Clip(m.IPs), m.Seen) {
			if ip.Equal(net.ParseIP(s)) {
				return net.JoinHostPort(ip.String(), port), true
			}
		}
	}
	for _, s := range append([]string{m.Seen}, m.IPs...) {
		if ip := net.ParseIP(s); ip != nil {
			return net.JoinHostPort(ip.String(), port), false
		}
	}
	return net.JoinHostPort(m.Name, port), false
}

// FetchMinions asks the certmaster (over mutual TLS, with an overlord
// identity) which minions are enrolled and where they listen. Each
// Addr is the minion's VouchedAddr (its claim, if different, is kept in
// Claimed): dial it and verify the minion by Name
// (ClientTLSConfig(Name)).
func FetchMinions(ctx context.Context, id *Identity, certmaster string) ([]MinionInfo, error) {
	c, err := identityClient(id, certmaster)
	if err != nil {
		return nil, err
	}
	defer c.close()
	var out []MinionInfo
	if err := c.call(ctx, "list_minions", &out); err != nil {
		return nil, err
	}
	for _, m := range out {
		if _, err := ValidateName(m.Name); err != nil {
			return nil, fmt.Errorf("identity: list_minions: %w", err)
		}
		if _, _, err := net.SplitHostPort(m.Addr); err != nil {
			return nil, fmt.Errorf("identity: list_minions: %s: address %q: %w", m.Name, m.Addr, err)
		}
	}
	for i, m := range out {
		if addr, ok := m.VouchedAddr(); !ok {
			out[i].Addr, out[i].Claimed = addr, m.Addr
		}
	}
	return out, nil
}

// FetchCRL fetches the certmaster's CRL once and installs it in id
// (SetCRL: signed by id's CA, never older than the current one). It
// needs no client certificate but sends id's; when the certmaster
// refuses that certificate (revoked, expired), it asks again without
// one, so that a revoked holder still learns it is
// revoked: id.Revoked(id.Leaf()) is then true.
//
// A CRL newer than the one id held is also saved in id's directory
// (see Dir), where the next Load finds it; a failure to save is
// returned, the CRL being installed all the same.
func FetchCRL(ctx context.Context, id *Identity, certmaster string) error {
	before := id.CRLNumber()
	err := fetchCRL(ctx, id, certmaster, id)
	// A refused client certificate does not always read as a TLS alert:
	// with TLS 1.3 the server checks it after the handshake, and the
	// client may see the connection closed instead. Any failure that is
	// not the certmaster's answer (a fault) is worth one try without the
	// certificate: the CRL is public, and SetCRL checks its signature.
	var f *gofunc.Fault
	if err != nil && !errors.As(err, &f) && ctx.Err() == nil {
		if err2 := fetchCRL(ctx, id, certmaster, nil); err2 == nil {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	if dir := id.Dir(); dir != "" && id.CRLNumber() != before {
		if err := id.Save(dir); err != nil {
			return fmt.Errorf("identity: save the new CRL: %w", err)
		}
	}
	return nil
}

// fetchCRL fetches the CRL into id, authenticating with as (nil: no
// client certificate); the certmaster is verified against id's CA.
func fetchCRL(ctx context.Context, id *Identity, certmaster string, as *Identity) error {
	v := &certmasterVerifier{roots: id.roots, id: id, logger: hclog.NewNullLogger()}
	c, err := newRPCClient(certmaster, v.tlsConfig(as))
	if err != nil {
		return err
	}
	defer c.close()
	var crlPEM string
	if err := c.call(ctx, "get_crl", &crlPEM); err != nil {
		return err
	}
	der, err := pki.DecodeOne([]byte(crlPEM), pki.PEMCRL, pki.MaxCRLBytes)
	if err != nil {
		return fmt.Errorf("identity: get_crl: %w", err)
	}
	return id.SetCRL(der)
}
