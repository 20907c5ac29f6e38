package ca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/glob"
)

// Errors about certificate requests. Each is a *gofunc.Fault with the
// code a requester receives, so errors.Is(err, gofunc.ErrBadArgs) (or
// ErrConflict, ErrBusy) holds locally as it does over the wire.
var (
	// ErrBadCSR: the CSR does not parse, its signature does not verify, or
	// its key is not ECDSA P-256.
	ErrBadCSR = &gofunc.Fault{Code: gofunc.CodeBadArgs, Message: "ca: bad certificate request"}
	// ErrBadRequest: a request field other than the CSR is wrong (name,
	// address).
	ErrBadRequest = &gofunc.Fault{Code: gofunc.CodeBadArgs, Message: "ca: bad request"}
	// ErrConflict: the name already has a valid certificate (or a pending
	// request) with a different key.
	ErrConflict = &gofunc.Fault{Code: gofunc.CodeConflict, Message: "ca: conflicting request"}
	// ErrTooManyRequests: the request store holds Config.MaxStored
	// requests already; a new one is not stored.
	ErrTooManyRequests = &gofunc.Fault{Code: gofunc.CodeBusy, Message: "ca: the certmaster holds too many requests; try again later"}
)

// RequestStatus is where a certificate request stands.
type RequestStatus string

// Request statuses, as sent in the enroll call's answer.
const (
	StatusPending  RequestStatus = "pending"  // waiting for the admin
	StatusSigned   RequestStatus = "signed"   // the certificate is in the answer
	StatusRejected RequestStatus = "rejected" // the admin refused it
	StatusConflict RequestStatus = "conflict" // the name is taken by another key
)

// Request is a certificate request as the certmaster receives it.
type Request struct {
	// CSR is the PEM certificate request. Only its public key (ECDSA
	// P-256) is used; its CN is checked against Name.
	CSR []byte
	// Name is the minion's name; "" means the CSR's CN (the legacy
	// wait_for_cert form).
	Name string
	// Addr is the host:port the minion will listen on; "" means the
	// CSR's first IP SAN, else the name, with port 51234 (legacy form).
	// It is recorded in the index (list_minions serves it) but never
	// becomes a DNS SAN: the only DNS SAN of a requested certificate is
	// the validated Name, so a minion cannot obtain a certificate that
	// answers for another minion's name. An IP host (and the legacy
	// form's CSR IP SANs) becomes an IP SAN only when it equals Source's
	// address (autosign and token paths) or when the admin signs the
	// request with Sign, having seen it in the pending list.
	Addr string
	// Token, when valid, gets the request signed at once.
	Token identity.Token
	// Source is the requester's network address, for the admin and the
	// audit log.
	Source string
}

// Result is the CA's answer to a request.
type Result struct {
	Status RequestStatus
	// Reason explains a rejection or conflict.
	Reason string
	// CertPEM is the certificate when Status is StatusSigned.
	CertPEM []byte
}

// RequestInfo is a stored (pending or rejected) request, as the admin
// sees it.
type RequestInfo struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	// IPs are the IP addresses the request asks for (Addr's host, or the
	// legacy CSR's IP SANs). They become IP SANs when the admin signs;
	// autosign and tokens grant only the one equal to Source's address.
	IPs            []string      `json:"ips,omitempty"`
	Source         string        `json:"source"`
	Time           time.Time     `json:"time"`
	KeyFingerprint string        `json:"key_fingerprint"`
	Status         RequestStatus `json:"status"` // pending or rejected
	// Conflict is set when another key asked for the same name, or the
	// name holds a valid certificate for another key; ConflictReason says
	// which. Such a request is never signed silently.
	Conflict       bool   `json:"conflict,omitempty"`
	ConflictReason string `json:"conflict_reason,omitempty"`
}

type requestRecord struct {
	RequestInfo
	CSR string `json:"csr"`
}

// ParseCSR parses a PEM certificate request, checks its signature (the
// requester holds the key) and that its key is ECDSA P-256. Errors match
// ErrBadCSR.
func ParseCSR(pemData []byte) (*x509.CertificateRequest, error) {
	der, err := decodeOnePEM(pemData, pemCSR, maxPEMBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrBadCSR, err)
	}
	k, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: key must be ECDSA P-256", ErrBadCSR)
	}
	return csr, nil
}

// maxRequestIPs bounds the IP SANs a legacy request can ask for.
const maxRequestIPs = 4

// validated is a request after every check: what a certificate may hold.
// It has no extra DNS names on purpose: a requester must never get a
// certificate naming a host other than its own validated name.
type validated struct {
	name   string
	addr   string
	ips    []net.IP // requested; see certIPs for which are granted
	keyFP  string
	source string // requester's address, host:port
	csr    *x509.CertificateRequest
	pem    []byte
}

// certIPs returns the IP SANs the certificate gets. The admin, signing by
// hand, grants every requested address (the pending list shows them);
// autosign and tokens grant only the requester's own source address, so
// a minion cannot claim another host's IP.
func (v *validated) certIPs(byAdmin bool) (granted []net.IP, dropped []string) {
	if byAdmin {
		return v.ips, nil
	}
	src := sourceIP(v.source)
	for _, ip := range v.ips {
		if src != nil && ip.Equal(src) {
			granted = append(granted, ip)
		} else {
			dropped = append(dropped, ip.String())
		}
	}
	return granted, dropped
}

// sourceIP parses a "host:port" or bare IP source address; nil if it is
// neither.
func sourceIP(source string) net.IP {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	return net.ParseIP(host)
}

func validateRequest(req Request) (*validated, error) {
	csr, err := ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	v := &validated{csr: csr, pem: req.CSR, source: req.Source}
	switch {
	case req.Name != "":
		if v.name, err = identity.ValidateName(req.Name); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if cn := csr.Subject.CommonName; cn != "" {
			if c, err := identity.ValidateName(cn); err != nil || c != v.name {
				return nil, fmt.Errorf("%w: CSR common name %q is not the requested name %q", ErrBadRequest, cn, v.name)
			}
		}
	default:
		if v.name, err = identity.ValidateName(csr.Subject.CommonName); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
	}
	if v.keyFP, err = identity.KeyFingerprint(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if req.Addr != "" {
		err = v.setAddr(req.Addr)
	} else {
		err = v.setLegacyAddr(csr)
	}
	return v, err
}

func (v *validated) setAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrBadRequest, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != port {
		return fmt.Errorf("%w: address %q: bad port", ErrBadRequest, addr)
	}
	if ip := net.ParseIP(host); ip != nil {
		if err := checkIP(ip); err != nil {
			return err
		}
		v.ips = []net.IP{ip}
		v.addr = net.JoinHostPort(ip.String(), port)
		return nil
	}
	h, err := identity.ValidateName(host)
	if err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrBadRequest, addr, err)
	}
	// Recorded for list_minions only, never a SAN: the host may well be
	// another minion's name.
	v.addr = net.JoinHostPort(h, port)
	return nil
}

func (v *validated) setLegacyAddr(csr *x509.CertificateRequest) error {
	if len(csr.IPAddresses) > maxRequestIPs {
		return fmt.Errorf("%w: more than %d IP addresses", ErrBadRequest, maxRequestIPs)
	}
	for _, ip := range csr.IPAddresses {
		if err := checkIP(ip); err != nil {
			return err
		}
		v.ips = append(v.ips, ip)
	}
	host := v.name
	if len(v.ips) > 0 {
		host = v.ips[0].String()
	}
	v.addr = net.JoinHostPort(host, DefaultMinionPort)
	return nil
}

func checkIP(ip net.IP) error {
	if ip.IsUnspecified() || ip.IsMulticast() {
		return fmt.Errorf("%w: address %v cannot be listened on", ErrBadRequest, ip)
	}
	return nil
}

func (v *validated) info(source string, now time.Time) RequestInfo {
	ri := RequestInfo{
		Name: v.name, Addr: v.addr, Source: source, Time: now.UTC(),
		KeyFingerprint: v.keyFP, Status: StatusPending,
	}
	for _, ip := range v.ips {
		ri.IPs = append(ri.IPs, ip.String())
	}
	return ri
}

// Submit handles a certificate request from a minion: the enroll and
// wait_for_cert calls. In order:
//   - the CSR and every field are validated (errors: ErrBadCSR,
//     identity.ErrBadName, ErrBadRequest; nothing is stored);
//   - a name with a valid certificate for the same key gets that
//     certificate back; for another key the answer is StatusConflict and
//     the request is stored, marked, for the admin;
//   - a request stored as rejected stays rejected;
//   - a valid token signs at once (a bad one is ErrBadToken, and nothing
//     is stored), and so does a name matching the autosign glob ("" means
//     no autosign);
//   - anything else is stored as pending, with its source address, time,
//     address and key fingerprint, for `certmaster sign`.
//
// Concurrent Submits are committed together: one lock, one audit write
// and one journal write for the whole group (see txn), so a fleet
// enrolling at once costs a few fsyncs per group rather than per minion.
//
// ctx bounds the wait for the group's turn and for the directory lock
// (another process, such as an admin's certmaster command, may hold
// it); when it ends first, Submit returns its error. A request already
// being committed when ctx ends may still be stored or signed: a retry
// finds it.
func (a *Authority) Submit(ctx context.Context, req Request, autosign string) (Result, error) {
	v, err := validateRequest(req)
	if err != nil {
		a.auditRefusal(req, err)
		return Result{}, err
	}
	it := &submitItem{v: v, req: req, autosign: autosign}
	if req.Token != "" || (autosign != "" && glob.Match(autosign, v.name)) {
		// Most likely signed: sign now, in parallel with the others. The
		// txn decides, and signs anew if anything differs.
		if is, err := a.sign(v.spec(false)); err == nil {
			it.pre = is
		}
	}
	return a.submits.do(ctx, it, a.submitBatch)
}

// auditRefusal records a request refused before it reached the state,
// within the bounds of refusalLimiter. The audit error is dropped: the
// request is refused either way.
func (a *Authority) auditRefusal(req Request, cause error) {
	if ev, ok := a.refusal(req.Source, req.Name, cause); ok {
		_ = a.audit(ev)
	}
}

// refuseLocked records, within the bounds of refusalLimiter, a request
// refused in a txn.
func (a *Authority) refuseLocked(tx *txn, v *validated, req Request, cause error) {
	if ev, ok := a.refusal(req.Source, v.name, cause); ok {
		ev.Role = string(gofunc.RoleMinion)
		ev.Details = withDetail(ev.Details, "key_fingerprint", v.keyFP)
		tx.refusal(ev)
	}
}

// submitBatch runs the submits of one group in one txn. A submit that is
// refused (a conflict, a bad token) leaves the others alone; an error
// after the state changed (an I/O error) fails the whole group.
func (a *Authority) submitBatch(items []*submitItem) {
	ctx, cancel := groupContext(items)
	defer cancel()
	err := a.update(ctx, func(tx *txn) error {
		for _, it := range items {
			sp := tx.savepoint()
			it.res, it.err = a.submitLocked(tx, it)
			if it.err != nil && !tx.rollback(sp) {
				return it.err
			}
		}
		return nil
	})
	if err != nil {
		for _, it := range items {
			if it.err != nil {
				continue
			}
			it.res, it.err = Result{}, err
			if ctx.Err() != nil && it.ctx.Err() != nil {
				// The group gave up because every caller did: each
				// learns its own context's reason.
				it.err = fmt.Errorf("ca: submit: %w", it.ctx.Err())
			}
		}
	}
}

func (a *Authority) submitLocked(tx *txn, it *submitItem) (Result, error) {
	v, req, autosign := it.v, it.req, it.autosign
	now := a.cfg.Now()
	ev := event{Kind: KindRequest, Caller: v.name, Role: string(gofunc.RoleMinion), Remote: req.Source,
		Details: map[string]string{"addr": v.addr, "key_fingerprint": v.keyFP}}
	if err := tx.ix.checkNameRole(v.name, gofunc.RoleMinion); err != nil {
		// Refused, not resolved: "ALICE" must not become a minion named
		// like the overlord alice, nor wait in the pending list as one.
		a.refuseLocked(tx, v, req, err)
		return Result{}, err
	}
	if cur := tx.ix.current(v.name, gofunc.RoleMinion, now); cur != nil {
		if cur.KeyFP == v.keyFP {
			der, err := a.st.certDER(cur)
			if err != nil {
				return Result{}, err
			}
			return Result{Status: StatusSigned, CertPEM: encodePEM(pemCert, der)}, nil
		}
		reason := fmt.Sprintf("%s already has a valid certificate (serial %s) for another key", v.name, cur.Serial)
		return a.conflictLocked(tx, v, req, now, reason, nil)
	}
	stored, err := tx.readRequest(v.name)
	if err != nil {
		return Result{}, err
	}
	if stored != nil {
		switch {
		case stored.KeyFingerprint != v.keyFP && stored.Status == StatusPending:
			reason := fmt.Sprintf("%s has a pending request for another key (%s)", v.name, stored.KeyFingerprint)
			return a.conflictLocked(tx, v, req, now, reason, stored)
		case stored.KeyFingerprint == v.keyFP && stored.Status == StatusRejected:
			return Result{Status: StatusRejected, Reason: "the request was rejected"}, nil
		case stored.KeyFingerprint != v.keyFP:
			stored = nil // a new key after a rejection: a new request
		}
	}
	if req.Token != "" {
		return a.signWithToken(tx, it, ev)
	}
	if autosign != "" && glob.Match(autosign, v.name) {
		ev.Outcome, ev.Details["via"] = "signed", "autosign"
		return a.signRequestLocked(tx, v, it.pre, ev, false)
	}
	if stored != nil {
		return Result{Status: StatusPending}, nil
	}
	if err := a.checkRoomLocked(tx, req.Source, v.name); err != nil {
		return Result{}, err
	}
	ev.Outcome = string(StatusPending)
	tx.audit(ev)
	tx.writeRequest(requestRecord{RequestInfo: v.info(req.Source, now), CSR: string(v.pem)})
	a.logger().Info("certificate request pending", "name", v.name, "addr", v.addr, "source", req.Source, "key", v.keyFP)
	return Result{Status: StatusPending}, nil
}

// conflictLocked stores and audits a conflict. stored is the pending
// request the new one collides with, if that is the conflict.
func (a *Authority) conflictLocked(tx *txn, v *validated, req Request, now time.Time, reason string, stored *requestRecord) (Result, error) {
	if stored == nil {
		if err := a.checkRoomLocked(tx, req.Source, v.name); err != nil {
			return Result{}, err
		}
	}
	tx.audit(event{Kind: KindConflict, Caller: v.name, Role: string(gofunc.RoleMinion), Remote: req.Source,
		Outcome: string(StatusConflict), Error: reason,
		Details: map[string]string{"addr": v.addr, "key_fingerprint": v.keyFP}})
	if stored == nil {
		rr := requestRecord{RequestInfo: v.info(req.Source, now), CSR: string(v.pem)}
		rr.Conflict, rr.ConflictReason = true, reason
		tx.writeRequest(rr)
	} else if !stored.Conflict {
		stored.Conflict = true
		stored.ConflictReason = fmt.Sprintf("another key (%s) asked for this name from %s", v.keyFP, req.Source)
		tx.writeRequest(*stored)
	}
	a.logger().Warn("conflicting certificate request", "name", v.name, "source", req.Source, "key", v.keyFP, "reason", reason)
	return Result{Status: StatusConflict, Reason: reason}, nil
}

func (a *Authority) signWithToken(tx *txn, it *submitItem, ev event) (Result, error) {
	v, req := it.v, it.req
	tf, err := tx.tokenFile()
	if err != nil {
		return Result{}, err
	}
	tr, err := checkToken(tf, req.Token, v.name, a.cfg.Now())
	if err != nil {
		a.refuseLocked(tx, v, req, err)
		return Result{}, err
	}
	tx.audit(event{Kind: KindTokenUse, Caller: v.name, Remote: req.Source,
		Details: map[string]string{"token_id": tr.ID, "use": fmt.Sprintf("%d/%d", tr.Used+1, tr.MaxUses)}})
	// The use is spent before the certificate exists (tokens are written
	// before the journal): if signing then fails, a use is lost, never
	// gained.
	tr.Used++
	tx.tokensChanged()
	ev.Outcome, ev.Details["via"], ev.Details["token_id"] = "signed", "token", tr.ID
	return a.signRequestLocked(tx, v, it.pre, ev, false)
}

// signRequestLocked audits the request, signs it and drops any stored
// request for the name. The certificate's only DNS SAN is the name; its
// IP SANs are those certIPs grants (byAdmin: the admin signed by hand).
func (a *Authority) signRequestLocked(tx *txn, v *validated, pre *issued, ev event, byAdmin bool) (Result, error) {
	if _, dropped := v.certIPs(byAdmin); len(dropped) > 0 {
		ev.Details = withDetail(ev.Details, "ips_not_granted", strings.Join(dropped, ","))
		a.logger().Warn("requested IP addresses not put in the certificate: not the request's source",
			"name", v.name, "source", v.source, "ips", dropped)
	}
	tx.audit(ev)
	cert, err := a.recordIssued(tx, pre, v.spec(byAdmin), event{Kind: KindSign, Remote: ev.Remote,
		Details: map[string]string{"via": ev.Details["via"]}})
	if err != nil {
		return Result{}, err
	}
	tx.removeRequest(v.name)
	return Result{Status: StatusSigned, CertPEM: encodePEM(pemCert, cert.Raw)}, nil
}

// spec is what the certificate for v holds: the name as its only DNS
// SAN, and the IP SANs certIPs grants.
func (v *validated) spec(byAdmin bool) signSpec {
	ips, _ := v.certIPs(byAdmin)
	var seen string
	if ip := sourceIP(v.source); ip != nil {
		seen = ip.String()
	}
	return signSpec{role: gofunc.RoleMinion, name: v.name, pub: v.csr.PublicKey, dns: []string{v.name}, ips: ips, addr: v.addr, seen: seen}
}

// validated rebuilds a stored request's validated form, checking that
// the file still agrees with itself.
func (rr *requestRecord) validated() (*validated, error) {
	csr, err := ParseCSR([]byte(rr.CSR))
	if err != nil {
		return nil, err
	}
	// Extra DNS names stored by older versions (dns_names) are not even
	// read: they were the host of the requested address, never a name
	// the requester was entitled to.
	v := &validated{name: rr.Name, addr: rr.Addr, keyFP: rr.KeyFingerprint, source: rr.Source, csr: csr, pem: []byte(rr.CSR)}
	if fp, err := identity.KeyFingerprint(csr.PublicKey); err != nil || fp != rr.KeyFingerprint {
		return nil, fmt.Errorf("%w: stored key fingerprint does not match the CSR", ErrBadCSR)
	}
	if _, err := identity.ValidateName(rr.Name); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	for _, s := range rr.IPs {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%w: stored address %q", ErrBadRequest, s)
		}
		v.ips = append(v.ips, ip)
	}
	return v, nil
}

// fullAuditEvery bounds the audit records of refusals for a full
// request store: a flood must not turn into a flood of audit records.
const fullAuditEvery = time.Minute

// checkRoomLocked returns ErrTooManyRequests when the request store
// holds Config.MaxStored requests. The refusal is audited at most once
// per fullAuditEvery (with the first refused source and name) and
// logged likewise.
func (a *Authority) checkRoomLocked(tx *txn, source, name string) error {
	n, err := a.countRequests()
	if err != nil {
		return err
	}
	for name, rr := range tx.reqs {
		if _, err := os.Lstat(a.requestPath(name)); errors.Is(err, fs.ErrNotExist) && rr != nil {
			n++ // stored by this txn, not on disk yet
		}
	}
	if n < a.cfg.MaxStored {
		return nil
	}
	// The requester learns only that the store is full; the numbers go
	// to the log and the audit record.
	detail := fmt.Sprintf("%d requests stored, the limit is %d; clean some with certmaster clean", n, a.cfg.MaxStored)
	now := a.cfg.Now()
	a.fullMu.Lock()
	due := a.fullAudited.IsZero() || now.Sub(a.fullAudited) >= fullAuditEvery
	if due {
		a.fullAudited = now
	}
	a.fullMu.Unlock()
	if due {
		a.logger().Warn("certificate request store full; refusing new requests", "stored", n, "max", a.cfg.MaxStored, "source", source)
		tx.refusal(event{Kind: KindRequest, Caller: name, Role: string(gofunc.RoleMinion), Remote: source,
			Outcome: audit.OutcomeDenied, Error: "ca: request store full: " + detail,
			Details: map[string]string{"stored": strconv.Itoa(n), "max_stored": strconv.Itoa(a.cfg.MaxStored)}})
	}
	return ErrTooManyRequests
}

// countRequests counts the stored requests, skipping the temporary files
// of atomic writes.
func (a *Authority) countRequests() (int, error) {
	f, err := os.Open(a.path(dirRequests))
	if err != nil {
		return 0, fmt.Errorf("ca: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("ca: %w", err)
	}
	n := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".json") && !strings.HasPrefix(name, ".") {
			n++
		}
	}
	return n, nil
}

func (a *Authority) requestPath(name string) string {
	return a.path(filepath.Join(dirRequests, name+".json"))
}

// readRequest returns the stored request for a validated name, or nil.
func (a *Authority) readRequest(name string) (*requestRecord, error) {
	b, err := os.ReadFile(a.requestPath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	rr := new(requestRecord)
	if err := json.Unmarshal(b, rr); err != nil {
		return nil, fmt.Errorf("ca: %s: %w", a.requestPath(name), err)
	}
	return rr, nil
}

func (a *Authority) writeRequest(rr requestRecord) error {
	b, err := json.MarshalIndent(rr, "", "\t")
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeFileAtomic(a.requestPath(rr.Name), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("ca: write request: %w", err)
	}
	return nil
}

func (a *Authority) removeRequest(name string) error {
	err := os.Remove(a.requestPath(name))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// allRequests reads every stored request, sorted by name. Conflicts with
// certificates issued since the request arrived are marked here.
func (a *Authority) allRequests(ix *index) ([]requestRecord, error) {
	entries, err := os.ReadDir(a.path(dirRequests))
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	now := a.cfg.Now()
	var out []requestRecord
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue // temporary files of an atomic write
		}
		rr, err := a.readRequest(name)
		if err != nil {
			return nil, err
		}
		if rr == nil {
			continue
		}
		if cur := ix.current(rr.Name, gofunc.RoleMinion, now); cur != nil && cur.KeyFP != rr.KeyFingerprint && !rr.Conflict {
			rr.Conflict = true
			rr.ConflictReason = fmt.Sprintf("%s has a valid certificate (serial %s) for another key", rr.Name, cur.Serial)
		}
		out = append(out, *rr)
	}
	slices.SortFunc(out, func(x, y requestRecord) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// Requests lists the stored requests, pending and rejected, by name.
func (a *Authority) Requests() ([]RequestInfo, error) {
	var out []RequestInfo
	err := a.view(context.Background(), func(ix *index) error {
		rrs, err := a.allRequests(ix)
		for _, rr := range rrs {
			out = append(out, rr.RequestInfo)
		}
		return err
	})
	return out, err
}

// Pending lists the requests waiting for the admin, by name.
func (a *Authority) Pending() ([]RequestInfo, error) {
	all, err := a.Requests()
	return slices.DeleteFunc(all, func(r RequestInfo) bool { return r.Status != StatusPending }), err
}

func matchAny(globs []string, name string) bool {
	return slices.ContainsFunc(globs, func(g string) bool { return glob.Match(g, name) })
}

// Sign signs the pending requests whose names match any of the globs
// (fnmatch, case-insensitive) and returns the new certificates. Each
// certificate's DNS SAN is the request's name alone; every IP address
// the request lists (RequestInfo.IPs) becomes an IP SAN, the admin
// having seen them in the pending list. A
// request whose name already has a valid certificate for another key is
// not signed: revoke that certificate first; such requests make the
// error match ErrConflict, while the others are still signed. It returns
// ErrNotFound when no pending request matches.
func (a *Authority) Sign(globs ...string) ([]CertInfo, error) {
	return a.signWhere(func(rr requestRecord) bool { return matchAny(globs, rr.Name) }, nil,
		fmt.Sprintf("no pending request matches %q", globs))
}

// signWhere signs the pending requests match selects; extra details go
// into each audit record (who asked, through what).
func (a *Authority) signWhere(match func(requestRecord) bool, extra map[string]string, none string) ([]CertInfo, error) {
	var out []CertInfo
	var errs []error
	err := a.update(context.Background(), func(tx *txn) error {
		rrs, err := a.allRequests(tx.ix)
		if err != nil {
			return err
		}
		now := a.cfg.Now()
		var signed []*x509.Certificate
		for _, rr := range rrs {
			if rr.Status != StatusPending || !match(rr) {
				continue
			}
			if cur := tx.ix.current(rr.Name, gofunc.RoleMinion, now); cur != nil {
				if cur.KeyFP == rr.KeyFingerprint {
					tx.removeRequest(rr.Name) // left by a crash after its certificate was made
					continue
				}
				errs = append(errs, fmt.Errorf("%w: %s", ErrConflict, rr.ConflictReason))
				continue
			}
			v, err := rr.validated()
			if err != nil {
				errs = append(errs, fmt.Errorf("ca: stored request %s: %w", rr.Name, err))
				continue
			}
			ev := event{Kind: KindRequest, Caller: rr.Name, Role: string(gofunc.RoleMinion), Remote: rr.Source,
				Outcome: "signed", Details: withExtra(map[string]string{"via": "admin", "key_fingerprint": rr.KeyFingerprint}, extra)}
			res, err := a.signRequestLocked(tx, v, nil, ev, true)
			if err != nil {
				return err
			}
			c, err := identity.ParseCertificatePEM(res.CertPEM)
			if err != nil {
				return err
			}
			signed = append(signed, c)
		}
		if len(signed) == 0 && len(errs) == 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, none)
		}
		for _, c := range signed {
			out = append(out, tx.ix.find(serialHex(c.SerialNumber)).info())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, errors.Join(errs...)
}

// Reject marks the pending requests matching the globs as rejected: the
// minion that polls with that key is told so (ErrRejected). It returns
// ErrNotFound when no pending request matches.
func (a *Authority) Reject(globs ...string) ([]RequestInfo, error) {
	return a.rejectWhere(func(rr requestRecord) bool { return matchAny(globs, rr.Name) }, nil,
		fmt.Sprintf("no pending request matches %q", globs))
}

// rejectWhere rejects the pending requests match selects; extra details
// go into each audit record.
func (a *Authority) rejectWhere(match func(requestRecord) bool, extra map[string]string, none string) ([]RequestInfo, error) {
	var out []RequestInfo
	err := a.update(context.Background(), func(tx *txn) error {
		rrs, err := a.allRequests(tx.ix)
		if err != nil {
			return err
		}
		for _, rr := range rrs {
			if rr.Status != StatusPending || !match(rr) {
				continue
			}
			tx.audit(event{Kind: KindReject, Caller: rr.Name, Role: string(gofunc.RoleMinion), Remote: rr.Source,
				Outcome: string(StatusRejected), Details: withExtra(map[string]string{"key_fingerprint": rr.KeyFingerprint}, extra)})
			rr.Status = StatusRejected
			tx.writeRequest(rr)
			out = append(out, rr.RequestInfo)
		}
		if len(out) == 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, none)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Clean removes the stored requests (pending, rejected or conflicting)
// matching the globs, so the minions can ask again. Certificates are
// untouched: revoke them with Revoke. It returns ErrNotFound when no
// request matches.
func (a *Authority) Clean(globs ...string) ([]RequestInfo, error) {
	var out []RequestInfo
	err := a.update(context.Background(), func(tx *txn) error {
		rrs, err := a.allRequests(tx.ix)
		if err != nil {
			return err
		}
		for _, rr := range rrs {
			if !matchAny(globs, rr.Name) {
				continue
			}
			tx.audit(event{Kind: KindClean, Caller: rr.Name, Remote: rr.Source,
				Details: map[string]string{"status": string(rr.Status), "key_fingerprint": rr.KeyFingerprint}})
			tx.removeRequest(rr.Name)
			out = append(out, rr.RequestInfo)
		}
		if len(out) == 0 {
			return fmt.Errorf("%w: no request matches %q", ErrNotFound, globs)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
