// Package natsconn dials a gofunc broker: mutual TLS with a gofunc
// identity, reconnecting for ever with jitter, and a small reconnect
// buffer (calls are signed with deadlines: a stale one is refused, so
// there is no point holding megabytes of them).
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
}

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
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Secure(tc),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		nats.ReconnectBufSize(256 << 10),
		nats.Timeout(10 * time.Second), // a loaded broker handshakes slowly
		nats.PingInterval(20 * time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("broker connection lost", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
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
			log.Error("broker error", "subject", subj, "error", err)
		}),
	}
	if o.Background {
		opts = append(opts, nats.RetryOnFailedConnect(true))
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
		if r.err != nil {
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
