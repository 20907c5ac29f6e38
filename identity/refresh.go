package identity

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// DefaultCRLInterval is how often a Refresher fetches the CRL by
// default.
const DefaultCRLInterval = 30 * time.Second

// Refresher keeps an identity current from its certmaster while a
// server or a client uses it: it fetches the CRL at once and every
// CRLInterval, saving a newer one in the identity's directory, and, with
// Renew, renews the certificate when it is two thirds into its lifetime.
// The minion server and the overlord client run one when they are given
// a certmaster; so can any program that holds an identity.
//
// A revoked peer is therefore refused at most CRLInterval (plus one
// fetch) after the revocation: by new handshakes, and by servers that
// call Identity.Revoked per request on older connections. Failed
// fetches are logged and retried at the next tick; the CRL held stays in
// force, and once it is past its NextUpdate every failure is logged as
// an error naming its age. A failed renewal is retried with backoff (one
// minute, doubling up to one hour).
//
// Set the fields, then Start; Stop stops it and waits for it. A
// Refresher runs once: start a new one for another identity.
type Refresher struct {
	// Identity is what is kept fresh. Required.
	Identity *Identity
	// Certmaster is the certmaster's HOST:PORT. Required.
	Certmaster string
	// CRLInterval is how often the CRL is fetched; zero means
	// DefaultCRLInterval (30s).
	CRLInterval time.Duration
	// Timeout bounds one CRL fetch; zero means the larger of CRLInterval
	// and 5s.
	Timeout time.Duration
	// Renew also renews the certificate at the certmaster when it is
	// due (RenewAt). Default false.
	Renew bool
	// OnCRL, if set, is called after a fetch installed a newer CRL (the
	// overlord closes its idle connections, checked against the old
	// one). It runs on the refresher's goroutine.
	OnCRL func()
	// OnRenew, if set, is called after the certificate was renewed (the
	// minion writes a lifecycle event). It runs on the refresher's
	// goroutine.
	OnRenew func()
	// Logger receives failures and renewals; nil discards them.
	Logger hclog.Logger

	startOnce  sync.Once
	stopOnce   sync.Once
	readyOnce  sync.Once // makes ready
	readyClose sync.Once // closes it
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	ready      chan struct{}
}

// ErrNoCertmaster: a Refresher was started without an identity or a
// certmaster address.
var ErrNoCertmaster = errors.New("identity: Refresher needs an Identity and a Certmaster")

// Start starts the refresher's goroutines: the first CRL fetch begins at
// once (see Ready). Calling it again does nothing.
func (r *Refresher) Start() error {
	if r.Identity == nil || r.Certmaster == "" {
		return ErrNoCertmaster
	}
	r.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		r.wg.Go(func() { r.crlLoop(ctx) })
		if r.Renew {
			r.wg.Go(func() { r.renewLoop(ctx) })
		}
	})
	return nil
}

func (r *Refresher) readyChan() chan struct{} {
	r.readyOnce.Do(func() { r.ready = make(chan struct{}) })
	return r.ready
}

func (r *Refresher) markReady() { r.readyClose.Do(func() { close(r.readyChan()) }) }

// Ready is closed once the first CRL fetch has ended, whether it
// succeeded or not (or the refresher was stopped first), so that a
// caller can wait for the certmaster to have had its say before the
// first call.
func (r *Refresher) Ready() <-chan struct{} { return r.readyChan() }

// Stop stops the refresher and waits for its goroutines. It is
// idempotent, and safe on a refresher that never started.
func (r *Refresher) Stop() {
	r.stopOnce.Do(func() {
		r.startOnce.Do(func() {}) // a Start after Stop does nothing
		if r.cancel != nil {
			r.cancel()
		}
		r.wg.Wait()
		r.markReady()
	})
}

func (r *Refresher) logger() hclog.Logger {
	if r.Logger == nil {
		return hclog.NewNullLogger()
	}
	return r.Logger
}

func (r *Refresher) crlLoop(ctx context.Context) {
	interval := r.CRLInterval
	if interval <= 0 {
		interval = DefaultCRLInterval
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = max(interval, 5*time.Second)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for first := true; ; first = false {
		fctx, cancel := context.WithTimeout(ctx, timeout)
		changed, err := r.fetchCRL(fctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.logFetchError(err)
		}
		if changed && r.OnCRL != nil {
			r.OnCRL()
		}
		if first {
			r.markReady()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// logFetchError logs a failed fetch: a warning while the CRL held is
// current, an error naming its age once it is past its NextUpdate
// (see Identity.CRLStatus).
func (r *Refresher) logFetchError(err error) {
	if st := r.Identity.CRLStatus(); st.Stale {
		// Loud: every revocation since this CRL's NextUpdate is unknown
		// here, and stays so until a fetch succeeds.
		r.logger().Error("crl is stale and cannot be fetched: revocations since it was made are NOT enforced",
			"certmaster", r.Certmaster, "crl_number", st.Number, "next_update", st.NextUpdate, "age", st.Age.Round(time.Second), "error", err)
		return
	}
	r.logger().Warn("crl fetch failed; the crl held stays in force", "certmaster", r.Certmaster,
		"crl_number", r.Identity.CRLNumber(), "error", err)
}

// fetchCRL fetches the CRL (FetchCRL saves a newer one in the
// identity's directory) and reports whether it changed.
func (r *Refresher) fetchCRL(ctx context.Context) (changed bool, err error) {
	before := r.Identity.CRLNumber()
	err = FetchCRL(ctx, r.Identity, r.Certmaster)
	return r.Identity.CRLNumber() != before, err
}

// renewLoop sleeps until the certificate is due, renews it, and starts
// over; failures are retried with backoff.
func (r *Refresher) renewLoop(ctx context.Context) {
	id := r.Identity
	bo := backoff{min: time.Minute, max: time.Hour}
	for {
		if wait := time.Until(RenewAt(id.Leaf())); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		renewed, err := id.RenewIfDue(ctx, r.Certmaster)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			r.logger().Warn("certificate renewal failed; will retry", "name", id.Name(), "error", err)
			if bo.wait(ctx) != nil {
				return
			}
		case renewed:
			bo = backoff{min: time.Minute, max: time.Hour}
			r.logger().Info("certificate renewed", "name", id.Name(), "serial", id.Leaf().SerialNumber.Text(16),
				"not_after", id.Leaf().NotAfter)
			if r.OnRenew != nil {
				r.OnRenew()
			}
		}
	}
}
