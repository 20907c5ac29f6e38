// Package metrics is what gofunc's daemons and embedders share to serve
// Prometheus metrics: a private registry (never the global one, whose
// contents any imported package may change), an HTTP handler that speaks
// both the Prometheus text format and OpenMetrics, and a plain listener
// that accepts only loopback addresses.
//
// The collectors live beside what they measure, in packages of their
// own so that a program which does not serve metrics links no
// client_golang: ca/cametrics (the certmaster), minion/minionmetrics
// (a minion) and overlord/overlordmetrics (a long-running overlord).
//
// # Names
//
// Every gofunc series starts with "gofunc_". Labels are bounded: module
// and method names come from the modules a minion registered (a call to
// an unknown method is counted under method "other"), outcomes from a
// fixed list, and the only per-host label, "minion", is on the
// overlord's collector, one or two series per minion.
package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace is the prefix of every series gofunc exports.
const Namespace = "gofunc"

// NewRegistry returns a private registry holding the Go runtime and
// process collectors, to which a daemon adds its own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves g's metrics: OpenMetrics to scrapers that ask for it
// (Prometheus does), the Prometheus text format to the others. A
// collector's error is served as a 500 with the error, not a partial
// page, so a broken scrape is seen as one.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorHandling:       promhttp.HTTPErrorOnError,
		MaxRequestsInFlight: 4,
		Timeout:             30 * time.Second,
	})
}

// ErrNotLoopback is returned by Listen for an address that is not a
// loopback address: the plain listener has no TLS and no
// authentication, so only the host's own scrapers may reach it.
var ErrNotLoopback = errors.New("metrics: the plain metrics listener takes only a loopback address")

// Listen opens the plain (unauthenticated) metrics listener on addr,
// which must name a loopback IP address ("127.0.0.1:9851", "[::1]:9851");
// "localhost" and names are refused, since a resolver could turn them
// into anything.
func Listen(addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}

// CheckLoopback returns Listen's error for addr without listening, so
// that a daemon can refuse a bad address as a usage error before it
// starts anything.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics: listen address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// Serve serves h at /metrics (and nothing else) on ln until the stop
// function it returns is called; stop closes the listener and waits for
// the serving goroutine. Errors are logged to logger (nil: silent).
func Serve(ln net.Listener, h http.Handler, logger hclog.Logger) (stop func()) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	done := make(chan struct{})
	logger.Info("serving metrics without TLS", "metrics_addr", ln.Addr().String())
	go func() {
		defer close(done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics listener stopped", "error", err)
		}
	}()
	return func() {
		srv.Close()
		<-done
	}
}
