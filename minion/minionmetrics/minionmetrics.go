// Package minionmetrics exports a minion's Prometheus metrics: what
// its calls did, how its audit log and event journal are doing, and
// when its certificate and CRL run out. funcd serves them at /metrics on
// its TLS port (minion.Server.Metrics) to monitor and overlord
// certificates; an embedder wires them the same way:
//
//	m := minionmetrics.New(srv)
//	srv.Audit = m.Audit(trail)   // audit write latency and head
//	srv.Observe = m.Observe      // calls by module, method and outcome
//	reg := metrics.NewRegistry()
//	reg.MustRegister(m)
//	srv.Metrics = metrics.Handler(reg)
//
// Series:
//
//	gofunc_calls_total{module,method,outcome}         requests answered (outcome: ok, fault, denied, rejected, busy, audit_failed)
//	gofunc_call_duration_seconds{module}               histogram of request durations
//	gofunc_jobs_total{module,method,outcome}          async calls' jobs ended (outcome: ok, fault)
//	gofunc_job_duration_seconds{module}                histogram of jobs' durations, from the request to the job's end
//	gofunc_acl_denials_total                           requests the ACL (or the caller's certificate) refused
//	gofunc_audit_write_seconds                         histogram of audit record writes (fsynced)
//	gofunc_audit_write_errors_total                    audit records that could not be written
//	gofunc_audit_head_seq                              sequence number of the last audit record written
//	gofunc_audit_log_failed                            1 when the audit log refuses every record until funcd restarts
//	gofunc_cert_expiry_timestamp_seconds               when the minion's certificate expires
//	gofunc_crl_next_update_timestamp_seconds           when the CRL in force expires (absent without one)
//	gofunc_event_journal_depth                         events the journal holds (absent without one)
//	gofunc_event_journal_head_seq                      the journal's newest seq
//	gofunc_minion_calls_in_flight                      calls and jobs running
//
// Labels are bounded: module and method are those the minion
// registered ("other" for a request naming none of them), outcome one of
// six.
package minionmetrics

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/minion"
)

// other is the label of a request that named no registered method.
const other = "other"

// Metrics is a minion's collector. Its methods are safe for concurrent
// use.
type Metrics struct {
	srv       *minion.Server
	calls     *prometheus.CounterVec
	durations *prometheus.HistogramVec
	jobs      *prometheus.CounterVec
	jobTimes  *prometheus.HistogramVec
	denials   prometheus.Counter
	audit     prometheus.Histogram
	auditErrs prometheus.Counter
	head      atomic.Uint64
	// log is the audit log Audit wrapped, when it can say it has
	// failed for good (*audit.Log does).
	log atomic.Pointer[failer]
}

// failer is an audit log that can say it refuses every record for good
// (audit.Log.Err).
type failer interface{ Err() error }

// New returns the collector of srv's metrics.
func New(srv *minion.Server) *Metrics {
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, "", n) }
	return &Metrics{
		srv: srv,
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("calls_total"),
			Help: "Requests the minion answered, by method and outcome."}, []string{"module", "method", "outcome"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("call_duration_seconds"),
			Help:    "How long requests took, from arrival to answer.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 1800}}, []string{"module"}),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name("jobs_total"),
			Help: "Async calls' jobs that ended, by method and outcome."}, []string{"module", "method", "outcome"}),
		jobTimes: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name("job_duration_seconds"),
			Help:    "How long async calls took, from the request to the job's end.",
			Buckets: []float64{.01, .1, 1, 10, 60, 300, 1800, 3600, 4 * 3600}}, []string{"module"}),
		denials: prometheus.NewCounter(prometheus.CounterOpts{Name: name("acl_denials_total"),
			Help: "Requests refused by the ACL or for the caller's certificate."}),
		audit: prometheus.NewHistogram(prometheus.HistogramOpts{Name: name("audit_write_seconds"),
			Help:    "How long writing (and syncing) an audit record took.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 5}}),
		auditErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: name("audit_write_errors_total"),
			Help: "Audit records that could not be written."}),
	}
}

// Observe counts one answered request, or one async call's job that
// ended; set it as minion.Server.Observe.
func (m *Metrics) Observe(o minion.CallObservation) {
	module, method := o.Module, o.Method
	if module == "" {
		module, method = other, other
	}
	if o.Job {
		m.jobs.WithLabelValues(module, method, string(o.Outcome)).Inc()
		m.jobTimes.WithLabelValues(module).Observe(o.Duration.Seconds())
		return
	}
	m.calls.WithLabelValues(module, method, string(o.Outcome)).Inc()
	m.durations.WithLabelValues(module).Observe(o.Duration.Seconds())
	if o.Outcome == minion.OutcomeDenied {
		m.denials.Inc()
	}
}

// Audit wraps the minion's audit log so that every write is timed and
// its sequence number kept; set the result as minion.Server.Audit.
// When a can tell that it refuses every record for good (an
// *audit.Log: a failed fsync), gofunc_audit_log_failed says so.
func (m *Metrics) Audit(a audit.Appender) audit.Appender {
	if f, ok := a.(failer); ok {
		m.log.Store(&f)
	}
	return &timedAppender{a: a, m: m}
}

type timedAppender struct {
	a audit.Appender
	m *Metrics
}

func (t *timedAppender) Append(rec audit.Record) (audit.Record, error) {
	start := time.Now()
	done, err := t.a.Append(rec)
	t.m.audit.Observe(time.Since(start).Seconds())
	if err != nil {
		t.m.auditErrs.Inc()
		return done, err
	}
	for {
		cur := t.m.head.Load()
		if done.Seq <= cur || t.m.head.CompareAndSwap(cur, done.Seq) {
			break
		}
	}
	return done, nil
}

func desc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, nil, nil)
}

var (
	descHead      = desc("audit_head_seq", "Sequence number of the last audit record written.")
	descFailed    = desc("audit_log_failed", "1 when the audit log refuses every record until funcd restarts (a failed fsync, or a failed write it could not undo): every call is then answered audit_failed.")
	descCert      = desc("cert_expiry_timestamp_seconds", "When the minion's certificate expires (Unix time).")
	descCRL       = desc("crl_next_update_timestamp_seconds", "When the CRL in force expires (Unix time).")
	descDepth     = desc("event_journal_depth", "Events the minion's event journal holds.")
	descEventHead = desc("event_journal_head_seq", "The event journal's newest sequence number.")
	descInFlight  = desc("minion_calls_in_flight", "Calls and async jobs running.")
)

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.calls.Describe(ch)
	m.durations.Describe(ch)
	m.jobs.Describe(ch)
	m.jobTimes.Describe(ch)
	m.denials.Describe(ch)
	m.audit.Describe(ch)
	m.auditErrs.Describe(ch)
	for _, d := range []*prometheus.Desc{descHead, descFailed, descCert, descCRL, descDepth, descEventHead, descInFlight} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.calls.Collect(ch)
	m.durations.Collect(ch)
	m.jobs.Collect(ch)
	m.jobTimes.Collect(ch)
	m.denials.Collect(ch)
	m.audit.Collect(ch)
	m.auditErrs.Collect(ch)
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	gauge(descHead, float64(m.head.Load()))
	if f := m.log.Load(); f != nil {
		failed := 0.0
		if (*f).Err() != nil {
			failed = 1
		}
		gauge(descFailed, failed)
	}
	id := m.srv.CurrentIdentity()
	if id != nil {
		gauge(descCert, float64(id.Leaf().NotAfter.Unix()))
		if crl := id.CRLStatus(); crl.Installed {
			gauge(descCRL, float64(crl.NextUpdate.Unix()))
		}
	}
	if j := m.srv.Events; j != nil {
		st := j.Stats()
		gauge(descDepth, float64(st.Events))
		gauge(descEventHead, float64(st.Head))
	}
	gauge(descInFlight, float64(m.srv.Stats().InFlight))
}
