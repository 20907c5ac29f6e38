// Package cametrics exports a certificate authority's state as
// Prometheus metrics: the certmaster serves them at /metrics (see
// ca.Service.Metrics). Every value is read from the CA at scrape time,
// so the series are right even when the admin commands change the CA
// from another process.
//
//	gofunc_ca_pending_requests                       requests waiting for the admin
//	gofunc_ca_rejected_requests                      refused requests still stored
//	gofunc_ca_signed_total{role}                     certificates ever issued (renewals included)
//	gofunc_ca_valid_certificates{role}               certificates usable now
//	gofunc_ca_revoked_total                          certificates ever revoked
//	gofunc_crl_number                                the current CRL's number
//	gofunc_crl_next_update_timestamp_seconds         when the current CRL expires
//	gofunc_ca_cert_expiry_timestamp_seconds          when the CA certificate expires
//	gofunc_cert_expiry_timestamp_seconds             when the certmaster's own certificate expires
//
// Series are bounded: role takes at most the nine gofunc roles.
package cametrics

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/metrics"
)

// StatsSource is what the collector reads; *ca.Authority is one.
type StatsSource interface {
	Stats() (ca.Stats, error)
}

// Collector is a prometheus.Collector over a CA.
type Collector struct {
	src  StatsSource
	cert func() time.Time // the service certificate's NotAfter; nil: not exported
}

// New returns a collector reading src. serviceCertExpiry, when not nil,
// gives the NotAfter of the certmaster's current server certificate
// (it changes when the certificate is renewed).
func New(src StatsSource, serviceCertExpiry func() time.Time) *Collector {
	return &Collector{src: src, cert: serviceCertExpiry}
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, labels, nil)
}

var (
	descPending  = desc("ca_pending_requests", "Certificate requests waiting for the admin.")
	descRejected = desc("ca_rejected_requests", "Refused certificate requests still stored.")
	descSigned   = desc("ca_signed_total", "Certificates the CA issued, renewals included.", "role")
	descValid    = desc("ca_valid_certificates", "Certificates neither revoked nor expired.", "role")
	descRevoked  = desc("ca_revoked_total", "Certificates the CA revoked.")
	descCRLNum   = desc("crl_number", "Number of the current CRL.")
	descCRLNext  = desc("crl_next_update_timestamp_seconds", "When the current CRL expires (Unix time).")
	descCAExpiry = desc("ca_cert_expiry_timestamp_seconds", "When the CA certificate expires (Unix time).")
	descExpiry   = desc("cert_expiry_timestamp_seconds", "When the certmaster's own certificate expires (Unix time).")
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descRejected, descSigned, descValid, descRevoked,
		descCRLNum, descCRLNext, descCAExpiry, descExpiry} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A CA it cannot read makes
// the scrape fail (metrics.Handler answers 500), rather than serve
// zeros that look like an empty CA.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.src.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descPending, fmt.Errorf("cametrics: %w", err))
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descPending, float64(st.Pending))
	gauge(descRejected, float64(st.Rejected))
	for _, role := range gofunc.Roles() {
		counter(descSigned, float64(st.Issued[role]), string(role))
		gauge(descValid, float64(st.Valid[role]), string(role))
	}
	counter(descRevoked, float64(st.Revoked))
	if !st.CRLNextUpdate.IsZero() {
		gauge(descCRLNum, float64(st.CRLNumber))
		gauge(descCRLNext, unix(st.CRLNextUpdate))
	}
	gauge(descCAExpiry, unix(st.CAExpiry))
	if c.cert != nil {
		gauge(descExpiry, unix(c.cert()))
	}
}

func unix(t time.Time) float64 { return float64(t.Unix()) }
