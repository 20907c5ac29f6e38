package broker

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Store-and-forward jobs (JetStream). A job is one signed call envelope
// per target, kept by the broker until the target reads it, so a minion
// that is offline runs it when it comes back; its signed answer is kept
// the same way until an overlord collects it.
const (
	// JobStream is the JetStream stream that keeps job envelopes
	// (subjects JobPrefix+"*") and job records (JobRecordPrefix+"*").
	JobStream = "GF_JOBS"
	// ResultStream is the JetStream stream that keeps job results
	// (subjects ResultPrefix+"*.*").
	ResultStream = "GF_RESULTS"
	// JobPrefix + Token(minion): the job envelopes for one minion;
	// overlords publish, the broker stores, the minion reads them by
	// direct get (no consumer per minion).
	JobPrefix = SubjectRoot + ".job."
	// JobRecordPrefix + job id: what a job was (method, targets,
	// start-by), for the overlords that collect it.
	JobRecordPrefix = SubjectRoot + ".jobrec."
	// ResultPrefix + job id + "." + Token(minion): a minion's signed
	// answer to a job; that minion publishes, the broker stores,
	// overlords read.
	ResultPrefix = SubjectRoot + ".res."
	// BellPrefix + Token(minion): a doorbell, "a job is waiting", so an
	// online minion reads its job subject at once; it carries nothing a
	// minion trusts.
	BellPrefix = SubjectRoot + ".bell."
	// InboxPrefix + Token(minion): where a minion's requests (direct
	// gets, PubAcks) are answered; that minion alone subscribes. Bound
	// to the name, not the key, so that it outlives a renewal of the
	// minion's certificate on a live connection.
	InboxPrefix = SubjectRoot + ".inbox."
	// DirectGetPrefix + stream name: the JetStream API subject of a
	// direct get (a read without a consumer).
	DirectGetPrefix = "$JS.API.DIRECT.GET."
)

// JobSubject is the subject the broker keeps jobs for minion name on.
func JobSubject(name string) (string, error) { return prefixed(JobPrefix, "job subject", name) }

// MinionInbox is the inbox prefix of minion name's connection.
func MinionInbox(name string) (string, error) { return prefixed(InboxPrefix, "inbox", name) }

// BellSubject is the subject minion name hears doorbells on.
func BellSubject(name string) (string, error) { return prefixed(BellPrefix, "bell subject", name) }

// ResultSubject is the subject minion name's answer to job is kept on;
// a job's envelope signs it as its reply subject.
func ResultSubject(job, name string) (string, error) {
	if !isID(job) {
		return "", fmt.Errorf("broker: result subject: job id %q is not 32 hex digits", clip(job))
	}
	return prefixed(ResultPrefix+job+".", "result subject", name)
}

// ResultOf splits a result subject into its job id and minion name.
func ResultOf(subject string) (job, name string, err error) {
	rest, ok := strings.CutPrefix(subject, ResultPrefix)
	job, token, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || !isID(job) || strings.Contains(token, ".") {
		return "", "", fmt.Errorf("broker: %q is not a result subject", clip(subject))
	}
	name, err = NameOfToken(token)
	return job, name, err
}

// JobRecordSubject is the subject of job's record.
func JobRecordSubject(job string) (string, error) {
	if !isID(job) {
		return "", fmt.Errorf("broker: job id %q is not 32 hex digits", clip(job))
	}
	return JobRecordPrefix + job, nil
}

func prefixed(prefix, what, name string) (string, error) {
	t, err := Token(name)
	if err != nil {
		return "", fmt.Errorf("broker: %s: %w", what, err)
	}
	return prefix + t, nil
}

// HeaderRequest is a job result's header holding the signed bytes of
// the job's envelope (base64): the collector checks that the result's
// signature covers their SHA-256, and reads from them which job, minion
// and result subject the answer is for.
const HeaderRequest = "Gf-Req"

// ParseRequest reads the signed bytes of a call (Call.SignedBytes) back
// into the call they describe: what a job result's collector learns from
// HeaderRequest. Only the layout is checked, not a signature.
func ParseRequest(signed []byte) (*Call, error) {
	rest, ok := strings.CutPrefix(string(signed), callPrefix)
	lines := strings.Split(rest, "\n")
	if !ok || len(lines) != 9 || lines[8] != "" {
		return nil, envErr(ErrMalformed, "request is not the signed bytes of a call")
	}
	c := &Call{ID: lines[0], Method: lines[3], ReplyTo: lines[5], OnBehalfOf: lines[6]}
	if lines[4] != "" {
		c.Audience = strings.Split(lines[4], ",")
	}
	var err error
	if c.Issued, err = parseTime(lines[1]); err != nil {
		return nil, envErr(ErrMalformed, "request issued: %v", err)
	}
	if c.Deadline, err = parseTime(lines[2]); err != nil {
		return nil, envErr(ErrMalformed, "request deadline: %v", err)
	}
	if err := parseSum(lines[7], &c.BodySum); err != nil {
		return nil, envErr(ErrMalformed, "request body digest: %v", err)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// recordPrefix starts the bytes a job record's signature covers, so it
// can pass for neither a call's nor a reply's.
const recordPrefix = "gofunc-jobrec-v1\n"

// SignRecord signs a job record (its bytes as stored) with cert, the
// submitter's certificate and key, and returns the headers to store it
// with (HeaderCert, HeaderSig).
func SignRecord(cert *tls.Certificate, record []byte) (Header, error) {
	if cert == nil || cert.Leaf == nil {
		return nil, errors.New("broker: SignRecord needs a certificate with its Leaf")
	}
	sig, err := sign(cert, append([]byte(recordPrefix), record...))
	if err != nil {
		return nil, err
	}
	h := Header{}
	h.set(HeaderVersion, Version)
	h.set(HeaderCert, certText(cert.Leaf))
	h.set(HeaderSig, base64.StdEncoding.EncodeToString(sig))
	return h, nil
}

// VerifyRecord checks a job record's signature and returns the
// certificate that signed it (whether to trust it, its chain, CRL and
// role, is the caller's to decide).
func VerifyRecord(h Header, record []byte) (*x509.Certificate, error) {
	if v := h.Get(HeaderVersion); v != Version {
		return nil, envErr(ErrVersion, "%q", clip(v))
	}
	cert, sig, err := parseCertSig(h)
	if err != nil {
		return nil, err
	}
	if err := verify(cert, append([]byte(recordPrefix), record...), sig); err != nil {
		return nil, err
	}
	return cert, nil
}
