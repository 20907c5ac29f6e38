package broker

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The envelope is a set of message headers around the unchanged XML-RPC
// body. Its header names follow NATS's (and HTTP's) canonical case.
const (
	HeaderVersion  = "Gf-Ver"          // envelope version: "1"
	HeaderID       = "Gf-Id"           // call id: 32 lower-case hex digits
	HeaderIssued   = "Gf-Issued"       // when the caller signed the call (TimeLayout)
	HeaderDeadline = "Gf-Deadline"     // when the call must be over (TimeLayout)
	HeaderMethod   = "Gf-Method"       // "module.method": the body's methodName
	HeaderAudience = "Gf-Aud"          // the minions the call is for, comma-separated
	HeaderReplyTo  = "Gf-Reply"        // the reply subject the caller signed
	HeaderBodySum  = "Gf-Body-Sha256"  // hex SHA-256 of the body
	HeaderCert     = "Gf-Cert"         // base64 DER of the signer's certificate
	HeaderSig      = "Gf-Sig"          // base64 ASN.1 ECDSA P-256 SHA-256 signature of the signed bytes
	HeaderMinion   = "Gf-Minion"       // reply: the minion answering
	HeaderSeq      = "Gf-Seq"          // reply: frame number; 0 is the acknowledgement
	HeaderFinal    = "Gf-Final"        // reply: "1" on the last frame, which is signed
	HeaderAudit    = "Gf-Audit"        // reply: the minion's audit head after the call ("seq:hash")
	HeaderCallID   = "Gf-Call-Id"      // reply: the call's id in the minion's audit log
	HeaderBehalf   = "Gf-On-Behalf-Of" // the person the caller calls for ("name@role"); signed, optional
	HeaderRefused  = "Gf-Refused"      // reply: the minion could not read the envelope ("version", "malformed"), the reason in the body; signed (SignRefusal)
)

// Version is the envelope version this package speaks.
const Version = "1"

// TimeLayout is how Gf-Issued and Gf-Deadline are written: RFC 3339 in
// UTC with milliseconds, one spelling per instant, so that the signed
// bytes are the headers' text.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// MaxAudience bounds the minions one signed call names.
const MaxAudience = 256

// Signed-bytes prefixes: a call's, a reply's or a refusal's signature
// can never pass for another kind's.
const (
	callPrefix    = "gofunc-call-v1\n"
	replyPrefix   = "gofunc-reply-v1\n"
	refusalPrefix = "gofunc-refusal-v1\n"
)

// Errors of envelopes, for errors.Is. Every error of ParseCall,
// ParseReply and the checks is an *EnvelopeError wrapping one of them.
var (
	ErrMalformed  = errors.New("malformed envelope")
	ErrVersion    = errors.New("unknown envelope version")
	ErrBodyDigest = errors.New("body does not match its digest")
	ErrMethod     = errors.New("envelope method does not match the body's")
	ErrNotYet     = errors.New("call issued in the future")
	ErrExpired    = errors.New("call past its deadline")
	ErrValidity   = errors.New("call valid for too long")
	ErrAudience   = errors.New("call not addressed to this minion")
	ErrReplyTo    = errors.New("reply subject is not the signed one")
	ErrSignature  = errors.New("signature does not verify")
	ErrReplayed   = errors.New("call id already seen")
)

// EnvelopeError says what is wrong with an envelope: Err is one of the
// sentinel errors above.
type EnvelopeError struct {
	Err    error
	Detail string
}

func (e *EnvelopeError) Error() string {
	if e.Detail == "" {
		return "broker: " + e.Err.Error()
	}
	return "broker: " + e.Err.Error() + ": " + e.Detail
}

func (e *EnvelopeError) Unwrap() error { return e.Err }

func envErr(err error, format string, args ...any) *EnvelopeError {
	return &EnvelopeError{Err: err, Detail: fmt.Sprintf(format, args...)}
}

// Header is a message's headers: the shape of nats.Header (and
// http.Header), without importing either. Keys are canonical.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h Header) set(key, value string) { h[key] = []string{value} }

// Call is what a caller signs about a call.
type Call struct {
	ID       string    // 32 lower-case hex digits (NewID)
	Issued   time.Time // truncated to the millisecond when signed
	Deadline time.Time // absolute; truncated to the millisecond
	Method   string    // "module.method"
	Audience []string  // the minions the call is for (1..MaxAudience names)
	ReplyTo  string    // the subject answers go to: a caller's inbox, or a job's ResultSubject
	// OnBehalfOf is the person the caller calls for ("name@role"), ""
	// when it calls for itself. Signed, so that no broker can change whom
	// the minion's audit log names.
	OnBehalfOf string
	BodySum    [32]byte // SHA-256 of the body
}

// NewID returns a random call id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SignedBytes is the fixed layout the caller's signature covers: a
// prefix and one field per line. No field may hold a newline (ParseCall
// refuses them), so the layout is unambiguous.
func (c *Call) SignedBytes() []byte {
	return lines(callPrefix, c.ID, c.Issued.UTC().Format(TimeLayout), c.Deadline.UTC().Format(TimeLayout),
		c.Method, strings.Join(c.Audience, ","), c.ReplyTo, c.OnBehalfOf, hex.EncodeToString(c.BodySum[:]))
}

// lines is prefix followed by each field and a newline, in one
// allocation (a group's audience makes a call's layout over 1 KiB, and
// it is built for each check and each answer).
func lines(prefix string, fields ...string) []byte {
	n := len(prefix)
	for _, f := range fields {
		n += len(f) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for _, f := range fields {
		b = append(b, f...)
		b = append(b, '\n')
	}
	return b
}

// Reply is what a minion signs about the final frame of its answer.
type Reply struct {
	ID        string   // the call's id
	Request   [32]byte // SHA-256 of the call's signed bytes: binds the answer to that call
	Minion    string   // the minion answering (its certificate's name)
	Seq       int      // the final frame's number
	Final     bool     // always true for a signed frame
	AuditHead string   // the minion's audit head after the call; may be ""
	CallID    string   // the call's id in the minion's audit log
	BodySum   [32]byte // SHA-256 of the whole answer (all frames' bodies in order)
}

// SignedBytes is the fixed layout the minion's signature covers.
func (r *Reply) SignedBytes() []byte {
	final := "0"
	if r.Final {
		final = "1"
	}
	return lines(replyPrefix, r.ID, hex.EncodeToString(r.Request[:]), r.Minion, strconv.Itoa(r.Seq), final,
		r.AuditHead, r.CallID, hex.EncodeToString(r.BodySum[:]))
}

// Refusal is what a minion signs when it cannot read a call's envelope
// (another version, malformed, too large): which call (the id and reply
// subject it came with, unverified), who, why. Nothing in it is trusted
// from the call, so it binds no request; the reply subject ties it to
// the one minion's slot, and the caller accepts it only from the
// certificate of the minion it addressed, so neither the broker nor
// another minion that saw the call id (a batch's) can fail a call with
// it. The layout is stable across envelope versions: a caller of any
// version must be able to read why an older minion refused it.
type Refusal struct {
	ID      string // the call id the envelope carried
	ReplyTo string // the subject the refusal is published on
	Minion  string // the minion refusing (its certificate's name)
	Class   string // "version" or "malformed"
	Reason  string // in words; the frame's body
}

// SignedBytes is the fixed layout the minion's signature covers.
func (r *Refusal) SignedBytes() []byte {
	var b bytes.Buffer
	b.WriteString(refusalPrefix)
	sum := sha256.Sum256([]byte(r.Reason))
	for _, f := range []string{r.ID, r.ReplyTo, r.Minion, r.Class, hex.EncodeToString(sum[:])} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// SignRefusal signs r with cert (the minion's certificate and key) and
// returns the frame's headers; its body is r.Reason.
func SignRefusal(cert *tls.Certificate, r *Refusal) (Header, error) {
	if cert == nil || cert.Leaf == nil {
		return nil, errors.New("broker: SignRefusal needs a certificate with its Leaf")
	}
	if !isID(r.ID) || !isToken(r.ReplyTo, 256) || !isToken(r.Minion, 253) || !isToken(r.Class, 32) {
		return nil, envErr(ErrMalformed, "refusal of %q", clip(r.ID))
	}
	sig, err := sign(cert, r.SignedBytes())
	if err != nil {
		return nil, err
	}
	h := newHeader(r.ID)
	h.set(HeaderMinion, r.Minion)
	h.set(HeaderRefused, r.Class)
	h.setSignature(cert, sig)
	return h, nil
}

// SignedRefusal is a refusal as the caller received it; whether its
// certificate is the addressed minion's is the caller's to check.
type SignedRefusal struct {
	Refusal
	Cert *x509.Certificate
	Sig  []byte
}

// ParseRefusal reads a refusal frame received on subject with body.
func ParseRefusal(h Header, subject string, body []byte) (*SignedRefusal, error) {
	sr := &SignedRefusal{Refusal: Refusal{ID: h.Get(HeaderID), ReplyTo: subject, Minion: h.Get(HeaderMinion),
		Class: h.Get(HeaderRefused), Reason: string(body)}}
	switch {
	case !isID(sr.ID):
		return nil, envErr(ErrMalformed, "call id %q", clip(sr.ID))
	case !isToken(sr.Minion, 253):
		return nil, envErr(ErrMalformed, "minion %q", clip(sr.Minion))
	case !isToken(sr.Class, 32):
		return nil, envErr(ErrMalformed, "refusal class %q", clip(sr.Class))
	}
	var err error
	if sr.Cert, sr.Sig, err = parseCertSig(h); err != nil {
		return nil, err
	}
	return sr, nil
}

// VerifySignature checks the signature with the key of the certificate
// the refusal came with.
func (sr *SignedRefusal) VerifySignature() error {
	return verify(sr.Cert, sr.SignedBytes(), sr.Sig)
}

// sign signs msg with the key of cert (an ECDSA P-256 key, as gofunc's
// CA issues).
func sign(cert *tls.Certificate, msg []byte) ([]byte, error) {
	signer, ok := cert.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, errors.New("broker: the identity's key cannot sign")
	}
	sum := sha256.Sum256(msg)
	return signer.Sign(rand.Reader, sum[:], crypto.SHA256)
}

// verify checks sig over msg with cert's ECDSA public key.
func verify(cert *x509.Certificate, msg, sig []byte) error {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return envErr(ErrSignature, "certificate key is not ECDSA")
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(pub, sum[:], sig) {
		return envErr(ErrSignature, "by %s", cert.Subject.CommonName)
	}
	return nil
}

// SignCall fills in c's body digest from body, signs c with cert (the
// caller's certificate and key) and returns the headers of the call.
// Issued and Deadline are truncated to the millisecond.
func SignCall(cert *tls.Certificate, c *Call, body []byte) (Header, error) {
	if cert == nil || cert.Leaf == nil {
		return nil, errors.New("broker: SignCall needs a certificate with its Leaf")
	}
	c.Issued, c.Deadline = c.Issued.UTC().Truncate(time.Millisecond), c.Deadline.UTC().Truncate(time.Millisecond)
	c.BodySum = sha256.Sum256(body)
	if err := c.validate(); err != nil {
		return nil, err
	}
	signed := c.SignedBytes()
	sig, err := sign(cert, signed)
	if err != nil {
		return nil, err
	}
	h := newHeader(c.ID)
	h.set(HeaderIssued, c.Issued.Format(TimeLayout))
	h.set(HeaderDeadline, c.Deadline.Format(TimeLayout))
	h.set(HeaderMethod, c.Method)
	h.set(HeaderAudience, strings.Join(c.Audience, ","))
	h.set(HeaderReplyTo, c.ReplyTo)
	if c.OnBehalfOf != "" {
		h.set(HeaderBehalf, c.OnBehalfOf)
	}
	h.set(HeaderBodySum, hex.EncodeToString(c.BodySum[:]))
	h.setSignature(cert, sig)
	return h, nil
}

// validate checks the fields' syntax: what SignCall refuses to sign and
// ParseCall refuses to read.
func (c *Call) validate() error {
	switch {
	case !isID(c.ID):
		return envErr(ErrMalformed, "call id %q is not 32 hex digits", clip(c.ID))
	case !isToken(c.Method, 256) || !strings.Contains(c.Method, "."):
		return envErr(ErrMalformed, "method %q", clip(c.Method))
	case len(c.Audience) == 0 || len(c.Audience) > MaxAudience:
		return envErr(ErrMalformed, "audience of %d names, want 1..%d", len(c.Audience), MaxAudience)
	case !isToken(c.ReplyTo, 256) || !(strings.HasPrefix(c.ReplyTo, ReplyPrefix) || strings.HasPrefix(c.ReplyTo, ResultPrefix)):
		return envErr(ErrMalformed, "reply subject %q", clip(c.ReplyTo))
	case c.Deadline.Before(c.Issued):
		return envErr(ErrMalformed, "deadline before issue time")
	case !isField(c.OnBehalfOf, 256):
		return envErr(ErrMalformed, "on behalf of %q", clip(c.OnBehalfOf))
	}
	for _, a := range c.Audience {
		if !isToken(a, 253) || strings.Contains(a, ",") {
			return envErr(ErrMalformed, "audience name %q", clip(a))
		}
	}
	return nil
}

// ReplySubject is where minion answers c: ReplyTo itself when c is for
// one minion; for a batch (several names in Audience), ReplyTo + "." +
// the minion's index in Audience, so that each minion's answers, and
// the broker's "no responders" for it, come apart on the caller's side
// while one signature covers them all. The suffix is fixed by the
// signed audience, so a broker cannot move one minion's answers to
// another's subject. ok is false when c is not for minion.
func (c *Call) ReplySubject(minion string) (subject string, ok bool) {
	if c.Broadcast() {
		return c.ReplyTo, true // every minion answers there; the caller tells them apart by their signed names
	}
	for i, a := range c.Audience {
		if strings.EqualFold(a, minion) {
			if len(c.Audience) == 1 {
				return c.ReplyTo, true
			}
			return c.ReplyTo + "." + strconv.Itoa(i), true
		}
	}
	return "", false
}

// SignedCall is a call as a minion received it: the fields its caller
// signed, the signer's certificate (not yet verified: that is the
// minion's chain check) and the signature.
type SignedCall struct {
	Call
	Cert *x509.Certificate
	Sig  []byte
}

// ParseCall reads a call's headers and checks what needs no key and no
// clock: the version, every field's syntax, and that body matches the
// signed digest. Times, audience and signature are the caller's next
// steps (CheckTimes, CheckAudience, VerifySignature), cheapest first.
func ParseCall(h Header, body []byte) (*SignedCall, error) {
	if v := h.Get(HeaderVersion); v != Version {
		return nil, envErr(ErrVersion, "%q", clip(v))
	}
	sc := &SignedCall{}
	sc.ID = h.Get(HeaderID)
	sc.Method = h.Get(HeaderMethod)
	sc.ReplyTo = h.Get(HeaderReplyTo)
	sc.OnBehalfOf = h.Get(HeaderBehalf)
	if aud := h.Get(HeaderAudience); aud != "" {
		if strings.Count(aud, ",") >= MaxAudience {
			return nil, envErr(ErrMalformed, "audience of more than %d names", MaxAudience)
		}
		sc.Audience = strings.Split(aud, ",")
	}
	var err error
	if sc.Issued, err = parseTime(h.Get(HeaderIssued)); err != nil {
		return nil, envErr(ErrMalformed, "%s: %v", HeaderIssued, err)
	}
	if sc.Deadline, err = parseTime(h.Get(HeaderDeadline)); err != nil {
		return nil, envErr(ErrMalformed, "%s: %v", HeaderDeadline, err)
	}
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if err := parseSum(h.Get(HeaderBodySum), &sc.BodySum); err != nil {
		return nil, envErr(ErrMalformed, "%s: %v", HeaderBodySum, err)
	}
	if sha256.Sum256(body) != sc.BodySum {
		return nil, envErr(ErrBodyDigest, "")
	}
	if sc.Cert, sc.Sig, err = parseCertSig(h); err != nil {
		return nil, err
	}
	return sc, nil
}

// CheckTimes refuses a call issued more than skew after now, past its
// deadline, or valid for longer than maxValidity.
func (sc *SignedCall) CheckTimes(now time.Time, skew, maxValidity time.Duration) error {
	switch {
	case sc.Issued.After(now.Add(skew)):
		return envErr(ErrNotYet, "issued %s, now %s", sc.Issued.Format(TimeLayout), now.UTC().Format(TimeLayout))
	case now.After(sc.Deadline):
		return envErr(ErrExpired, "deadline %s, now %s", sc.Deadline.Format(TimeLayout), now.UTC().Format(TimeLayout))
	case sc.Deadline.Sub(sc.Issued) > maxValidity:
		return envErr(ErrValidity, "%s, at most %s", sc.Deadline.Sub(sc.Issued), maxValidity)
	}
	return nil
}

// CheckAudience refuses a call whose signed audience does not name
// minion (compared case-insensitively, as host names are).
func (sc *SignedCall) CheckAudience(minion string) error {
	if sc.Broadcast() {
		if !BroadcastMethod(sc.Method) {
			return envErr(ErrAudience, "a broadcast may call %s only, not %s", strings.Join(broadcastMethods, ", "), clip(sc.Method))
		}
		return nil
	}
	for _, a := range sc.Audience {
		if strings.EqualFold(a, minion) {
			return nil
		}
	}
	return envErr(ErrAudience, "for %s, not %s", clip(strings.Join(sc.Audience, ",")), minion)
}

// AudienceAll is the audience of a broadcast (published on
// BroadcastAll): every minion that takes it. No minion is named "*"
// (the certmaster refuses the character), so it cannot be mistaken for
// one. Only BroadcastMethod methods may be called so.
const AudienceAll = "*"

// broadcastMethods are the methods a broadcast may call: discovery
// only. test.ping is read-only, cheap and tells nothing but that the
// minion is there and answers the caller; anything that acts or reads
// the host is called on named targets, where every target ends in a
// state.
var broadcastMethods = []string{"test.ping"}

// BroadcastMethod says whether a broadcast may call method.
func BroadcastMethod(method string) bool { return slices.Contains(broadcastMethods, method) }

// Broadcast says whether c is a broadcast (its audience is AudienceAll).
func (c *Call) Broadcast() bool { return len(c.Audience) == 1 && c.Audience[0] == AudienceAll }

// VerifySignature checks the signature with the key of the certificate
// the call came with. Whether that certificate is to be trusted (its
// chain, the CRL, its role) is for the minion to decide after.
//
// Verifications that succeed are remembered process-wide (see
// SetCallVerifyMemo): the minions of a group that share a process
// verify the group's one signature once.
func (sc *SignedCall) VerifySignature() error {
	return verifyCall(sc.Cert, sc.SignedBytes(), sc.Sig)
}

// RequestSum is the SHA-256 of the call's signed bytes, which its
// answer's signature covers.
func (sc *SignedCall) RequestSum() [32]byte { return sha256.Sum256(sc.SignedBytes()) }

// SignReply fills in r's body digest from body and signs r with cert
// (the minion's certificate and key); the headers returned are those of
// the final frame.
func SignReply(cert *tls.Certificate, r *Reply, body []byte) (Header, error) {
	if cert == nil || cert.Leaf == nil {
		return nil, errors.New("broker: SignReply needs a certificate with its Leaf")
	}
	r.BodySum = sha256.Sum256(body)
	r.Final = true
	sig, err := sign(cert, r.SignedBytes())
	if err != nil {
		return nil, err
	}
	h := newHeader(r.ID)
	h.set(HeaderMinion, r.Minion)
	h.set(HeaderSeq, strconv.Itoa(r.Seq))
	h.set(HeaderFinal, "1")
	if r.AuditHead != "" {
		h.set(HeaderAudit, r.AuditHead)
	}
	if r.CallID != "" {
		h.set(HeaderCallID, r.CallID)
	}
	h.set(HeaderBodySum, hex.EncodeToString(r.BodySum[:]))
	h.setSignature(cert, sig)
	return h, nil
}

// SignedReply is a final frame as the caller received it.
type SignedReply struct {
	Reply
	Cert *x509.Certificate
	Sig  []byte
}

// ParseReply reads a final frame's headers; request is the SHA-256 of
// the call's signed bytes, which the caller knows. Check the body with
// CheckBody and the signature with VerifySignature.
func ParseReply(h Header, request [32]byte) (*SignedReply, error) {
	if v := h.Get(HeaderVersion); v != Version {
		return nil, envErr(ErrVersion, "%q", clip(v))
	}
	sr := &SignedReply{}
	sr.Request = request
	sr.ID, sr.Minion = h.Get(HeaderID), h.Get(HeaderMinion)
	sr.AuditHead, sr.CallID = h.Get(HeaderAudit), h.Get(HeaderCallID)
	sr.Final = h.Get(HeaderFinal) == "1"
	seq, err := strconv.Atoi(h.Get(HeaderSeq))
	switch {
	case !isID(sr.ID):
		return nil, envErr(ErrMalformed, "call id %q", clip(sr.ID))
	case !isToken(sr.Minion, 253):
		return nil, envErr(ErrMalformed, "minion %q", clip(sr.Minion))
	case err != nil || seq < 1 || seq > 1<<30:
		return nil, envErr(ErrMalformed, "frame number %q", clip(h.Get(HeaderSeq)))
	case !sr.Final:
		return nil, envErr(ErrMalformed, "not a final frame")
	case !isField(sr.AuditHead, 256) || !isField(sr.CallID, 128):
		return nil, envErr(ErrMalformed, "audit head or call id")
	}
	sr.Seq = seq
	if err := parseSum(h.Get(HeaderBodySum), &sr.BodySum); err != nil {
		return nil, envErr(ErrMalformed, "%s: %v", HeaderBodySum, err)
	}
	if sr.Cert, sr.Sig, err = parseCertSig(h); err != nil {
		return nil, err
	}
	return sr, nil
}

// CheckBody checks that body (all the frames' bodies in order) is the
// one the minion signed.
func (sr *SignedReply) CheckBody(body []byte) error {
	if sha256.Sum256(body) != sr.BodySum {
		return envErr(ErrBodyDigest, "answer of %d bytes", len(body))
	}
	return nil
}

// VerifySignature checks the minion's signature with the key of the
// certificate the frame came with.
func (sr *SignedReply) VerifySignature() error {
	return verify(sr.Cert, sr.SignedBytes(), sr.Sig)
}

func parseCertSig(h Header) (*x509.Certificate, []byte, error) {
	cert, err := parsedCerts.parse(h.Get(HeaderCert))
	if err != nil {
		return nil, nil, err
	}
	sig, err := base64.StdEncoding.DecodeString(h.Get(HeaderSig))
	if err != nil || len(sig) == 0 || len(sig) > 256 {
		return nil, nil, envErr(ErrMalformed, "%s is not a base64 signature", HeaderSig)
	}
	return cert, sig, nil
}

// certCache remembers the certificates already parsed, by their
// header text (base64 DER): every call carries its caller's certificate
// and every answer its minion's, the same bytes again and again, and
// decoding and parsing one cost as much as a third of an ECDSA
// verification. It holds no trust decision (the chain, the CRL and the
// role are checked by the callers, with their own caches keyed by CRL
// number), only what the bytes say, so an entry never goes stale.
type certCache struct {
	mu    sync.Mutex
	m     map[string]*x509.Certificate
	bytes int // header bytes held
}

// The cache holds certificates of at most maxCachedCertText header
// bytes (a gofunc certificate is ~0.8 KiB of base64) and starts over
// past maxParsedCertText of them in all (~20,000 of a fleet's
// certificates), so that a peer sending junk certificates cannot grow
// it without bound.
const (
	maxCachedCertText = 6 << 10
	maxParsedCertText = 16 << 20
)

var parsedCerts certCache

// parse decodes and parses the certificate of a Gf-Cert header, or
// returns the one parsed before from the same text. The certificate
// returned is shared: callers must not modify it. Errors are
// *EnvelopeError (ErrMalformed).
func (c *certCache) parse(text string) (*x509.Certificate, error) {
	c.mu.Lock()
	cert, ok := c.m[text]
	c.mu.Unlock()
	if ok {
		return cert, nil
	}
	der, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(der) == 0 || len(der) > 16<<10 {
		return nil, envErr(ErrMalformed, "%s is not base64 DER", HeaderCert)
	}
	if cert, err = x509.ParseCertificate(der); err != nil {
		return nil, envErr(ErrMalformed, "%s: %v", HeaderCert, err)
	}
	if len(text) > maxCachedCertText {
		return cert, nil // not remembered: large junk must not fill the cache
	}
	c.mu.Lock()
	if c.m == nil || c.bytes+len(text) > maxParsedCertText {
		c.m, c.bytes = make(map[string]*x509.Certificate), 0
	}
	if _, ok := c.m[text]; !ok {
		c.m[text] = cert
		c.bytes += len(text)
	}
	c.mu.Unlock()
	return cert, nil
}

// ownCerts remembers the header text (base64 DER) of the certificates
// this process signs with: every answer carries its minion's, and
// encoding it each time cost ~2% of a minion's CPU per call. Keyed by
// the parsed certificate (an identity's Leaf, replaced on renewal);
// bounded like certCache.
var ownCerts struct {
	mu sync.Mutex
	m  map[*x509.Certificate]string
}

// maxOwnCerts bounds ownCerts; past it, it starts over.
const maxOwnCerts = 1 << 14

// certText is the Gf-Cert header text of leaf.
func certText(leaf *x509.Certificate) string {
	ownCerts.mu.Lock()
	text, ok := ownCerts.m[leaf]
	ownCerts.mu.Unlock()
	if ok {
		return text
	}
	text = base64.StdEncoding.EncodeToString(leaf.Raw)
	ownCerts.mu.Lock()
	if ownCerts.m == nil || len(ownCerts.m) >= maxOwnCerts {
		ownCerts.m = make(map[*x509.Certificate]string)
	}
	ownCerts.m[leaf] = text
	ownCerts.mu.Unlock()
	return text
}

// parseTime reads a TimeLayout time and refuses any other spelling of
// it, so that the signed bytes and the header are the same text.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(TimeLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not %s", clip(s), TimeLayout)
	}
	if t.Format(TimeLayout) != s {
		return time.Time{}, fmt.Errorf("%q is not in canonical form", clip(s))
	}
	return t, nil
}

func parseSum(s string, out *[32]byte) error {
	if len(s) != 64 || strings.ToLower(s) != s {
		return fmt.Errorf("%q is not 64 lower-case hex digits", clip(s))
	}
	_, err := hex.Decode(out[:], []byte(s))
	return err
}

func isID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isToken reports whether s is a non-empty, printable ASCII field of at
// most max bytes with no white space: no field can add a line to the
// signed bytes.
func isToken(s string, max int) bool {
	return s != "" && isField(s, max)
}

// isField is isToken allowing "".
func isField(s string, max int) bool {
	if len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// clip bounds what an error quotes of untrusted input.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// newHeader starts the headers of a signed envelope (call, answer or
// refusal) of id: the version first, then the id.
func newHeader(id string) Header {
	h := Header{}
	h.set(HeaderVersion, Version)
	h.set(HeaderID, id)
	return h
}

// setSignature ends a signed envelope's headers: the signer's
// certificate and its signature over the envelope's signed bytes.
func (h Header) setSignature(cert *tls.Certificate, sig []byte) {
	h.set(HeaderCert, certText(cert.Leaf))
	h.set(HeaderSig, base64.StdEncoding.EncodeToString(sig))
}
