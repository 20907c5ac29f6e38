// Package natsconn dials a gofunc broker: mutual TLS with a gofunc
// identity, reconnecting for ever with jitter, and a small reconnect
// buffer (calls are signed with deadlines: a stale one is refused, so
// there is no point holding megabytes of them).
package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/identity"
)

// ErrNoURL: no broker URL was given.
var ErrNoURL = errors.New("broker: no broker URL")

// Options tune a connection. Zero fields mean the defaults noted.
type Options struct {
	// Name is the connection's name as the broker's monitoring shows it.
	Name string
	// Background: when the broker cannot be reached at first, return
	// the connection at once and keep trying (a minion starting before
	// its broker). Otherwise Connect fails.
	Background bool
	// Logger receives disconnects and reconnects; nil discards them.
	Logger hclog.Logger
	// OnReconnect, if set, is called after each reconnection.
	OnReconnect func()
	// Identity, if set, is the identity each handshake presents and
	// checks the broker with (its current certificate, CA and CRL), so
	// a connection follows a minion whose identity was replaced
	// (SIGHUP reload, minion.Server.SetIdentity); nil means the one
	// given to Connect (whose in-place renewals are followed anyway).
	Identity func() *identity.Identity
	// InboxPrefix replaces nats' "_INBOX" in the subjects requests are
	// answered on (the broker permits none of "_INBOX"); default
	// nats'. gofunc clients use broker.ReplyInbox(cert) + ".in".
	InboxPrefix string
}

// Reconnection delays: DefaultRetry (plus up to RetryJitter) after a
// lost connection; after the broker refused us (or we refused it),
// doubling from DefaultRetry up to MaxRefusedRetry, since only an
// operator's fix ends a refusal.
const (
	DefaultRetry    = time.Second
	RetryJitter     = 500 * time.Millisecond
	MaxRefusedRetry = time.Minute
)

// Connect dials urls (nats://HOST:PORT, several for a cluster) with id's
// certificate; the broker's certificate must chain to id's CA and not
// be revoked (and name the host dialled, when dialled by name).
func Connect(ctx context.Context, urls []string, id *identity.Identity, o Options) (*nats.Conn, error) {
	if len(urls) == 0 {
		return nil, ErrNoURL
	}
	log := o.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	tc := id.ClientTLSConfig("")
	if cur := o.Identity; cur != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return cur().Certificate(), nil
		}
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			return cur().ClientTLSConfig(cs.ServerName).VerifyConnection(cs)
		}
	}
	ref := &refusals{log: log}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Secure(tc),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(ref.delay),
		nats.ReconnectBufSize(256 << 10),
		nats.Timeout(10 * time.Second), // a loaded broker handshakes slowly
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil && !ref.note(err) {
				log.Warn("broker connection lost", "error", err)
			}
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { ref.note(err) }),
		nats.ConnectHandler(func(*nats.Conn) { ref.reset() }), // a first connection made in the background
		nats.ClosedHandler(func(nc *nats.Conn) { live.Delete(nc) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			ref.reset()
			log.Info("broker connection back", "url", nc.ConnectedUrlRedacted())
			if o.OnReconnect != nil {
				o.OnReconnect()
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			if !ref.note(err) {
				log.Error("broker error", "subject", subj, "error", err)
			}
		}),
	}
	if o.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(o.InboxPrefix))
	}
	if o.Background {
		// Keep trying after refusals too (nats.go gives up after the
		// same one twice): the broker's configuration or the CRL may be
		// fixed while the minion waits, and nobody would restart it.
		opts = append(opts, nats.RetryOnFailedConnect(true), nats.IgnoreAuthErrorAbort())
	}
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(strings.Join(urls, ","), opts...)
		done <- result{nc, err}
	}()
	select {
	case r := <-done:
		if r.nc != nil {
			live.Store(r.nc, ref)
		}
		if r.err != nil {
			if reason, ok := Refusal(r.err); ok {
				return nil, fmt.Errorf("broker %s: %w: %s: %w", strings.Join(urls, ","), ErrRefused, reason, r.err)
			}
			return nil, fmt.Errorf("broker %s: %w", strings.Join(urls, ","), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// ErrRefused: the broker refused this program's certificate (revoked,
// expired, a role or name it does not admit), or this program refused
// the broker's. Retrying changes nothing until an operator fixes it.
var ErrRefused = errors.New("broker: connection refused")

// Refusal says whether err is a refusal of the connection rather than
// a network failure, and why, in words for an operator.
func Refusal(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	var op *net.OpError
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	switch {
	case errors.Is(err, nats.ErrAuthorization), strings.Contains(strings.ToLower(err.Error()), nats.AUTHORIZATION_ERR):
		return "the broker refused this certificate (authorization violation: revoked, expired, or a role or name it does not admit)", true
	case errors.As(err, &op) && op.Op == "remote error":
		return refusedHandshake, true
	case errors.Is(err, nats.ErrTLS) && strings.Contains(err.Error(), "closed by remote after TLS handshake"):
		// TLS 1.3: the client's handshake ends before the server has
		// checked its certificate, so a refusal may come as a closed
		// connection rather than the alert, depending on timing.
		return refusedHandshake, true
	case errors.As(err, &unknown), errors.As(err, &invalid), errors.As(err, &host),
		errors.Is(err, identity.ErrRevoked), errors.Is(err, identity.ErrWrongServer):
		return fmt.Sprintf("the broker's certificate is not trusted here: %v", err), true
	}
	return "", false
}

// refusedHandshake is the reason for both ways a broker's refusal of
// the certificate at the handshake shows (the alert, or the connection
// closed before it is read), which alternate by timing: one reason, so
// one log line.
const refusedHandshake = "the broker refused this certificate at the TLS handshake: it does not trust it (revoked, expired or from another CA)"

// live maps each open connection Connect made to its refusals, for
// LastRefusal; ClosedHandler forgets it.
var live sync.Map // *nats.Conn → *refusals

// LastRefusal is why the broker refused nc (made by Connect) since it
// was last connected, wrapping ErrRefused, or nil: what a call that
// found no minion should say while the connection is refused.
func LastRefusal(nc *nats.Conn) error {
	v, ok := live.Load(nc)
	if !ok {
		return nil
	}
	r := v.(*refusals)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// refusals logs each distinct reason the connection is refused once
// (until a connection succeeds, when it may be logged again) and spaces
// the retries out while refused.
type refusals struct {
	log     hclog.Logger
	mu      sync.Mutex
	seen    map[string]bool
	refused int   // consecutive refused attempts
	last    error // the last refusal, wrapping ErrRefused; nil once connected
}

// note logs err if it is a refusal not logged since the last
// connection, and reports whether it was a refusal.
func (r *refusals) note(err error) bool {
	reason, ok := Refusal(err)
	if !ok {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused++
	r.last = fmt.Errorf("%w: %s: %w", ErrRefused, reason, err)
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if !r.seen[reason] {
		r.seen[reason] = true
		r.log.Error("broker connection refused; retrying with backoff until fixed", "reason", reason, "error", err)
	}
	return true
}

// reset forgets the refusals: the connection is up.
func (r *refusals) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.refused, r.last = nil, 0, nil
}

// delay is the wait before the next reconnection attempt.
func (r *refusals) delay(int) time.Duration {
	r.mu.Lock()
	n := r.refused
	r.mu.Unlock()
	d := DefaultRetry
	for i := 1; i < n && d < MaxRefusedRetry; i++ {
		d *= 2
	}
	d = min(d, MaxRefusedRetry)
	return d + rand.N(RetryJitter)
}
