package overlordmetrics_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/internal/promtest"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/overlord"
	"github.com/gofunc/gofunc/overlord/overlordmetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A real fleet: calls counted by outcome, a minion down is 0 and the
// others 1, each with the expiry of the certificate it presented; the
// second call reuses the connections the first opened; the registry
// lints clean and both formats parse.
func TestFleet(t *testing.T) {
	f := fleettest.Start(t, fleettest.Config{Minions: 3, Subnet: "127.0.11", HostTimeout: 5 * time.Second})
	m := overlordmetrics.New(overlordmetrics.Options{})
	c := f.Client(overlord.WithObserver(m.Observe))
	ctx := t.Context()
	if _, err := c.Targets("*").Call(ctx, "test", "ping"); err != nil {
		t.Fatal(err)
	}
	f.Minion("m3.test").Down()
	if _, err := c.Targets("*").Call(ctx, "test", "ping"); err == nil {
		t.Fatal("no error with m3 down")
	}
	want := `
# HELP gofunc_overlord_calls_total Host calls the overlord made, by outcome.
# TYPE gofunc_overlord_calls_total counter
gofunc_overlord_calls_total{outcome="ok"} 5
gofunc_overlord_calls_total{outcome="unreachable"} 1
# HELP gofunc_overlord_minion_up 1 when the minion answered the overlord's last call to it (a value or a fault), 0 when it did not.
# TYPE gofunc_overlord_minion_up gauge
gofunc_overlord_minion_up{minion="m1.test"} 1
gofunc_overlord_minion_up{minion="m2.test"} 1
gofunc_overlord_minion_up{minion="m3.test"} 0
# HELP gofunc_overlord_connections_opened_total Answered host calls that opened a connection (TCP connect and TLS handshake) rather than reusing one: a warm fan-out adds none unless minions restarted or closed idle connections.
# TYPE gofunc_overlord_connections_opened_total counter
gofunc_overlord_connections_opened_total 3
# HELP gofunc_overlord_minions Minions the overlord has series for.
# TYPE gofunc_overlord_minions gauge
gofunc_overlord_minions 3
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "gofunc_overlord_calls_total",
		"gofunc_overlord_minion_up", "gofunc_overlord_minions", "gofunc_overlord_connections_opened_total"); err != nil {
		t.Error(err)
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(m)
	fams, err := promtest.Check(reg, metrics.Handler(reg))
	if err != nil {
		t.Fatal(err)
	}
	expiry := fams["gofunc_overlord_minion_cert_expiry_timestamp_seconds"]
	if expiry == nil || len(expiry.GetMetric()) != 3 {
		t.Fatalf("certificate expiries: %v", expiry)
	}
	for _, s := range expiry.GetMetric() {
		name := s.GetLabel()[0].GetValue()
		if got, want := int64(s.GetGauge().GetValue()), f.Minion(name).Identity.Leaf().NotAfter.Unix(); got != want {
			t.Errorf("%s expires at %d, want %d", name, got, want)
		}
	}
}

// At 1000 minions, every outcome and many methods: at most two series
// per minion plus a constant; a minion not called for Forget leaves.
func TestSeriesBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := overlordmetrics.New(overlordmetrics.Options{Clock: func() time.Time { return now }, Forget: time.Hour})
	kinds := []string{"", "fault", "timeout", "impersonation", "untrusted", "rejected", "protocol", "unreachable",
		"skipped", "interrupted", "no_result", "canceled", "error"}
	const minions = 1000
	for i := range minions {
		for j, kind := range kinds {
			m.Observe(overlord.Observation{Host: fmt.Sprintf("m%04d.example.org", i), Method: fmt.Sprintf("mod%d.meth%d", j, i),
				Kind: kind, Duration: time.Duration(i) * time.Millisecond, CertNotAfter: now.Add(time.Hour)})
		}
	}
	count := func() (perMinion, other int) {
		reg := metrics.NewRegistry()
		reg.MustRegister(m)
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, fam := range fams {
			if !strings.HasPrefix(fam.GetName(), "gofunc_") {
				continue // the Go runtime's and the process's: a constant
			}
			for _, s := range fam.GetMetric() {
				if hasLabel(s, "minion") {
					perMinion++
				} else {
					other += series(fam, s)
				}
			}
		}
		return perMinion, other
	}
	perMinion, other := count()
	if perMinion != 2*minions {
		t.Errorf("%d per-minion series for %d minions, want 2 each", perMinion, minions)
	}
	// 13 outcomes + a histogram of 11 buckets (+inf, sum, count) + the
	// minion count + connections opened.
	if other > 13+14+1+1 {
		t.Errorf("%d other series", other)
	}
	// An hour and a minute later, another minion is called: the rest are gone.
	now = now.Add(time.Hour + time.Minute)
	m.Observe(overlord.Observation{Host: "new.example.org", Method: "test.ping"})
	if perMinion, _ := count(); perMinion != 1 {
		t.Errorf("%d per-minion series after Forget, want 1 (up, no certificate seen)", perMinion)
	}
}

// MaxMinions drops the longest idle minion first.
func TestMaxMinions(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	m := overlordmetrics.New(overlordmetrics.Options{Clock: func() time.Time { return now }, MaxMinions: 2})
	for _, h := range []string{"a", "b", "a", "c"} {
		now = now.Add(time.Second)
		m.Observe(overlord.Observation{Host: h})
	}
	want := `
# HELP gofunc_overlord_minion_up 1 when the minion answered the overlord's last call to it (a value or a fault), 0 when it did not.
# TYPE gofunc_overlord_minion_up gauge
gofunc_overlord_minion_up{minion="a"} 1
gofunc_overlord_minion_up{minion="c"} 1
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "gofunc_overlord_minion_up"); err != nil {
		t.Error(err)
	}
}

func hasLabel(s *dto.Metric, name string) bool {
	for _, l := range s.GetLabel() {
		if l.GetName() == name {
			return true
		}
	}
	return false
}

// series is how many series a sample stands for on the page (a
// histogram: its buckets, sum and count).
func series(fam *dto.MetricFamily, s *dto.Metric) int {
	if fam.GetType() == dto.MetricType_HISTOGRAM {
		return len(s.GetHistogram().GetBucket()) + 3
	}
	return 1
}
