// Package brokermetrics exports a gofunc broker's state (brokerd.Stats)
// as Prometheus metrics; funcbroker serves them with --metrics-listen.
// Every value is read at scrape time.
//
//	gofunc_broker_clients{role}                      client connections open, by certificate role
//	gofunc_broker_leaf_nodes                         leaf node connections open
//	gofunc_broker_peers                              other brokers of the cluster with routes to this one
//	gofunc_broker_messages_received_total            messages received (routes and leaf nodes included)
//	gofunc_broker_messages_sent_total                messages sent
//	gofunc_broker_received_bytes_total               bytes received
//	gofunc_broker_sent_bytes_total                   bytes sent
//	gofunc_broker_slow_consumers_total               connections closed for reading too slowly
//	gofunc_broker_refused_connections_total          connections refused (role, revoked, unverified)
//	gofunc_broker_revoked_dropped_total              connections closed when their certificate was revoked
//	gofunc_crl_number                                the CRL in force (-1: none)
//	gofunc_crl_next_update_timestamp_seconds         when it is due to be replaced
//	gofunc_cert_expiry_timestamp_seconds             when the broker's own certificate expires
//
// Series are bounded: role takes at most the gofunc roles.
package brokermetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/metrics"
)

// StatsSource is what the collector reads; *brokerd.Broker is one.
type StatsSource interface {
	Stats() brokerd.Stats
}

// Collector is a prometheus.Collector over a broker.
type Collector struct{ src StatsSource }

// New returns a collector reading src.
func New(src StatsSource) *Collector { return &Collector{src: src} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(metrics.Namespace, "", name), help, labels, nil)
}

var (
	descClients   = desc("broker_clients", "Client connections open, by the role of their certificate.", "role")
	descLeafs     = desc("broker_leaf_nodes", "Leaf node connections open.")
	descPeers     = desc("broker_peers", "Other brokers of the cluster this one has routes to.")
	descInMsgs    = desc("broker_messages_received_total", "Messages received, routes and leaf nodes included.")
	descOutMsgs   = desc("broker_messages_sent_total", "Messages sent, routes and leaf nodes included.")
	descInBytes   = desc("broker_received_bytes_total", "Bytes of messages received.")
	descOutBytes  = desc("broker_sent_bytes_total", "Bytes of messages sent.")
	descSlow      = desc("broker_slow_consumers_total", "Connections closed for reading too slowly.")
	descRefused   = desc("broker_refused_connections_total", "Connections refused: a role the broker admits nobody of, a revoked or unverified certificate.")
	descDropped   = desc("broker_revoked_dropped_total", "Connections closed when the CRL revoked their certificate.")
	descCRLNum    = desc("crl_number", "Number of the CRL in force (-1: none).")
	descCRLNext   = desc("crl_next_update_timestamp_seconds", "When the CRL in force is due to be replaced (Unix time).")
	descCertUntil = desc("cert_expiry_timestamp_seconds", "When the broker's own certificate expires (Unix time).")
)

var all = []*prometheus.Desc{descClients, descLeafs, descPeers, descInMsgs, descOutMsgs, descInBytes, descOutBytes,
	descSlow, descRefused, descDropped, descCRLNum, descCRLNext, descCertUntil}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range all {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	for role, n := range st.Clients {
		gauge(descClients, float64(n), string(role))
	}
	gauge(descLeafs, float64(st.LeafNodes))
	gauge(descPeers, float64(st.Peers))
	counter(descInMsgs, float64(st.InMsgs))
	counter(descOutMsgs, float64(st.OutMsgs))
	counter(descInBytes, float64(st.InBytes))
	counter(descOutBytes, float64(st.OutBytes))
	counter(descSlow, float64(st.SlowConsumers))
	counter(descRefused, float64(st.Refused))
	counter(descDropped, float64(st.Dropped))
	gauge(descCRLNum, float64(st.CRLNumber))
	if !st.CRLNextUpdate.IsZero() {
		gauge(descCRLNext, float64(st.CRLNextUpdate.Unix()))
	}
	gauge(descCertUntil, float64(st.CertNotAfter.Unix()))
}
