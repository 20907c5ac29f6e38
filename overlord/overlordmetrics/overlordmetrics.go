// Package overlordmetrics exports what a long-running overlord (funcweb,
// a program built on the SDK) sees of its fleet as Prometheus metrics.
// The func command lives for one call and serves none.
//
//	m := overlordmetrics.New(overlordmetrics.Options{})
//	client, err := overlord.New(overlord.WithObserver(m.Observe), ...)
//	reg := metrics.NewRegistry()
//	reg.MustRegister(m)
//	http.Handle("/metrics", metrics.Handler(reg)) // behind the program's own authentication
//
// Series:
//
//	gofunc_overlord_calls_total{outcome}                    host calls by outcome (ok, fault, unreachable, timeout, ...)
//	gofunc_overlord_call_duration_seconds                   histogram of host call durations
//	gofunc_overlord_connections_opened_total                answered calls that opened their connection (connect and TLS handshake)
//	gofunc_overlord_minions                                 minions with series now
//	gofunc_overlord_minion_up{minion}                       1 when the minion's last call was answered (a value or a fault)
//	gofunc_overlord_minion_cert_expiry_timestamp_seconds{minion}   when the certificate it presented last expires
//
// At most two series per minion, and a minion not called for
// Options.Forget leaves them; past Options.MaxMinions the longest idle
// is dropped first. Outcomes are overlord.ErrorKind's, a fixed list.
package overlordmetrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/overlord"
)

// Defaults of Options' zero fields.
const (
	DefaultForget     = 24 * time.Hour
	DefaultMaxMinions = 100_000
)

// Options configures a collector.
type Options struct {
	// Forget drops a minion's series when it was not called for this
	// long; zero means DefaultForget (24h).
	Forget time.Duration
	// MaxMinions bounds the minions with series; zero means
	// DefaultMaxMinions (100,000).
	MaxMinions int
	// Clock returns the time; nil means time.Now.
	Clock func() time.Time
}

// Metrics is an overlord's collector; set its Observe as the client's
// observer (overlord.WithObserver). Its methods are safe for concurrent
// use.
type Metrics struct {
	opts      Options
	calls     *prometheus.CounterVec
	durations prometheus.Histogram
	opened    prometheus.Counter

	mu      sync.Mutex
	minions map[string]*minionState
}

type minionState struct {
	up       bool
	notAfter time.Time // zero: never seen
	seen     time.Time
}

// New returns a collector.
func New(opts Options) *Metrics {
	if opts.Forget <= 0 {
		opts.Forget = DefaultForget
	}
	if opts.MaxMinions <= 0 {
		opts.MaxMinions = DefaultMaxMinions
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Metrics{
		opts: opts,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("overlord_calls_total"),
			Help: "Host calls the overlord made, by outcome."}, []string{"outcome"}),
		durations: prometheus.NewHistogram(prometheus.HistogramOpts{Name: name("overlord_call_duration_seconds"),
			Help:    "How long host calls took.",
			Buckets: []float64{.005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300}}),
		opened: prometheus.NewCounter(prometheus.CounterOpts{Name: name("overlord_connections_opened_total"),
			Help: "Answered host calls that opened a connection (TCP connect and TLS handshake) rather than reusing one: " +
				"a warm fan-out adds none unless minions restarted or closed idle connections."}),
		minions: map[string]*minionState{},
	}
}

func name(n string) string { return prometheus.BuildFQName(metrics.Namespace, "", n) }

// Observe counts one host call; pass it to overlord.WithObserver.
func (m *Metrics) Observe(o overlord.Observation) {
	outcome := o.Kind
	if outcome == "" {
		outcome = "ok"
	}
	m.calls.WithLabelValues(outcome).Inc()
	m.durations.Observe(o.Duration.Seconds())
	if o.NewConnection {
		m.opened.Inc()
	}
	now := m.opts.Clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.minions[o.Host]
	if st == nil {
		m.makeRoom(now)
		st = &minionState{}
		m.minions[o.Host] = st
	}
	st.up, st.seen = o.Answered(), now
	if !o.CertNotAfter.IsZero() {
		st.notAfter = o.CertNotAfter
	}
}

// makeRoom drops the minions not seen for Forget and, when the table is
// still full, the longest idle one. Under m.mu.
func (m *Metrics) makeRoom(now time.Time) {
	if len(m.minions) < m.opts.MaxMinions {
		return
	}
	m.forget(now)
	if len(m.minions) < m.opts.MaxMinions {
		return
	}
	var oldest string
	for h, st := range m.minions {
		if oldest == "" || st.seen.Before(m.minions[oldest].seen) {
			oldest = h
		}
	}
	delete(m.minions, oldest)
}

// forget drops the minions not seen for Forget. Under m.mu.
func (m *Metrics) forget(now time.Time) {
	for h, st := range m.minions {
		if now.Sub(st.seen) > m.opts.Forget {
			delete(m.minions, h)
		}
	}
}

var (
	descMinions = prometheus.NewDesc(name("overlord_minions"), "Minions the overlord has series for.", nil, nil)
	descUp      = prometheus.NewDesc(name("overlord_minion_up"),
		"1 when the minion answered the overlord's last call to it (a value or a fault), 0 when it did not.", []string{"minion"}, nil)
	descExpiry = prometheus.NewDesc(name("overlord_minion_cert_expiry_timestamp_seconds"),
		"When the certificate the minion last presented expires (Unix time).", []string{"minion"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.durations.Describe(ch)
	m.opened.Describe(ch)
	ch <- descMinions
	ch <- descUp
	ch <- descExpiry
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.durations.Collect(ch)
	m.opened.Collect(ch)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.forget(m.opts.Clock())
	ch <- prometheus.MustNewConstMetric(descMinions, prometheus.GaugeValue, float64(len(m.minions)))
	for h, st := range m.minions {
		up := 0.0
		if st.up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, up, h)
		if !st.notAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descExpiry, prometheus.GaugeValue, float64(st.notAfter.Unix()), h)
		}
	}
}
