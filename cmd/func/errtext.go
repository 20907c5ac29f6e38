package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// hostProblem is one failed host's error as an operator reads it: a
// class that the summary counts ("unreachable", "timed out", "denied")
// and one line of text without Go's error chain or the host's URL, so
// that hosts failing the same way print the same text and group.
type hostProblem struct {
	class  string // summary class: "unreachable", "timed out", "denied", ...
	text   string // the host's line: "unreachable (connection refused)"
	detail string // text without the class, for --json's message: "connection refused"
}

// problem builds a hostProblem whose text is "class: detail".
func problem(class, detail string) hostProblem {
	return hostProblem{class: class, text: class + ": " + detail, detail: detail}
}

// explainer turns host errors into hostProblems. It knows the limits
// the run was given, so a timeout says which one was hit, and the
// overlord's identity, so a refusal says when our certificate was
// revoked.
type explainer struct {
	timeout time.Duration      // --timeout
	self    *identity.Identity // nil when unknown
}

// explain describes err, a host's error from the overlord after
// elapsed.
func (x explainer) explain(err error, elapsed time.Duration) hostProblem {
	var f *gofunc.Fault
	switch kind := overlord.ErrorKind(err); kind {
	case "unreachable":
		cause := networkCause(err)
		return hostProblem{class: "unreachable", text: "unreachable (" + cause + ")", detail: cause}
	case "timeout":
		// The minion's deadline is ours, sent with the call a little
		// shorter; a timeout fault well before it is the minion's own
		// limit (funcd --max-call-timeout), and its message says more.
		if errors.As(err, &f) && f.Code == gofunc.CodeTimeout && elapsed < x.timeout*8/10 {
			return problem("timed out", "on the minion: "+oneLine(f.Message))
		}
		detail := fmt.Sprintf("no answer within %s (--timeout)", x.timeout)
		return hostProblem{class: fmt.Sprintf("timed out after %s", x.timeout), text: "timed out: " + detail, detail: detail}
	case "rejected":
		if x.self != nil && x.self.Revoked(x.self.Leaf()) {
			return problem("rejected", fmt.Sprintf("it refused our certificate, which the CA revoked (serial %s); ask the CA admin for a new one",
				x.self.Leaf().SerialNumber.Text(16)))
		}
		return problem("rejected", "it refused our certificate ("+networkCause(err)+"): revoked, expired or from another CA?")
	case "untrusted":
		var unknownCA x509.UnknownAuthorityError
		switch {
		case errors.Is(err, identity.ErrRevoked):
			return problem("untrusted", "its certificate was revoked")
		case errors.As(err, &unknownCA):
			return problem("untrusted", "its certificate is not from our CA")
		}
		return problem("untrusted", innermost(err))
	case "impersonation":
		var he x509.HostnameError
		if errors.As(err, &he) && he.Certificate != nil {
			return problem("impersonation", fmt.Sprintf("its certificate names %q, not the host dialled", he.Certificate.Subject.CommonName))
		}
		return problem("impersonation", innermost(err))
	case "protocol":
		return problem("protocol error", "the answer is not XML-RPC")
	case "skipped":
		return problem("skipped", innermost(err))
	case "canceled":
		return hostProblem{class: "cancelled", text: "cancelled", detail: "cancelled"}
	case "interrupted":
		return problem("interrupted", "the job's runner stopped before this host answered")
	case "no_result":
		return problem("no result", "no result was recorded for this host")
	case "fault":
		errors.As(err, &f)
		return faultProblem(f)
	}
	return problem("failed", innermost(err))
}

// faultProblem names a remote fault by its code: "denied: ...", "no
// such method: ...", and a module's own error as "failed: ...".
func faultProblem(f *gofunc.Fault) hostProblem {
	class := f.Code.String()
	if f.Code == gofunc.CodeModule || f.Code > 0 {
		class = "failed"
	}
	return problem(class, oneLine(f.Message))
}

// networkCause is the last, telling link of a connection error's chain:
// "connection refused", "no such host", "connection closed".
func networkCause(err error) string {
	var errno syscall.Errno
	var dns *net.DNSError
	var op *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host"
		}
		return "name lookup failed: " + dns.Err
	case errors.As(err, &op) && op.Op == "remote error" && op.Err != nil:
		return op.Err.Error() // a TLS alert: "tls: bad certificate"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "connect timed out"
	}
	return innermost(err)
}

// innermost returns the text of the deepest error in err's chain: the
// wrapping layers that carry a URL or repeat the host ("Post
// \"https://web3:51234/RPC2\": dial tcp ...: ") are dropped, and so
// are the overlord's sentinels, which the class already says. Where an
// error wraps several (fmt.Errorf("%w: %w", ErrUnreachable, cause)),
// the last one that is not a sentinel is followed.
func innermost(err error) string {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if !isSentinel(e) {
					next = e
				}
			}
		}
		if next == nil || isSentinel(next) {
			break
		}
		err = next
	}
	text := err.Error()
	for _, s := range sentinels {
		text = strings.TrimPrefix(text, s.Error()+": ")
	}
	return oneLine(text)
}

// sentinels are the overlord's kinds: words the class says already.
var sentinels = []error{overlord.ErrUnreachable, overlord.ErrTimeout, overlord.ErrRejected, overlord.ErrUntrusted,
	overlord.ErrImpersonation, overlord.ErrProtocol, overlord.ErrSkipped}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if err == s {
			return true
		}
	}
	return false
}

// oneLine folds text onto one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// hinted is an error whose text says what to do instead of how it
// failed; the cause stays in the chain for errors.Is.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// hint replaces the errors a new user meets first with what to do
// about them.
func (e *env) hint(err error) error {
	dir := e.dir()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist) && !fileExists(filepath.Join(dir, "cert.pem")):
		return &hinted{fmt.Sprintf("no overlord identity in %s (ca.pem, cert.pem, key.pem): the CA admin makes one with "+
			"`certmaster issue-overlord --dir CADIR --out %s YOURNAME`; or point --dir (GOFUNC_DIR) at yours", dir, dir), err}
	case errors.Is(err, overlord.ErrNoMinionList):
		return &hinted{fmt.Sprintf("no minion list in %s yet: run `func --certmaster HOST:PORT list_minions` once "+
			"(the certmaster is remembered for later runs), or write %s yourself ([{\"name\": ..., \"addr\": \"host:51234\"}])",
			dir, filepath.Join(dir, overlord.CacheFile)), err}
	}
	return err
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
