package brokermetrics_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/broker/brokerd"
	"github.com/gofunc/gofunc/broker/brokerd/brokermetrics"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// value is the value of the series name{label=value} (or name alone).
func value(t *testing.T, reg prometheus.Gatherer, name string, label ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(label); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == label[i] && lp.GetValue() == label[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}

// A real broker's clients by role, refusals, traffic and CRL, as a
// scraper sees them; the series pass Prometheus's lint.
func TestCollector(t *testing.T) {
	a, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(role gofunc.Role, name string) *identity.Identity {
		id, err := a.Issue(role, name, ca.IssueOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	bid, err := a.Issue(gofunc.RoleBroker, "broker1", ca.IssueOptions{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := a.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := bid.SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	b, err := brokerd.New(brokerd.Config{Identity: bid, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	dial := func(id *identity.Identity) (*nats.Conn, error) {
		return nats.Connect(b.ClientURL(), nats.Secure(id.ClientTLSConfig("127.0.0.1")), nats.NoReconnect())
	}
	for _, id := range []*identity.Identity{issue(gofunc.RoleMinion, "m1"), issue(gofunc.RoleMinion, "m2"), issue(gofunc.RoleOverlord, "alice")} {
		nc, err := dial(id)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := nc.Publish("gf.v1.call.m1", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := dial(issue(gofunc.RoleViewer, "bob")); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("viewer: %v", err)
	}

	reg := metrics.NewRegistry()
	reg.MustRegister(brokermetrics.New(b))
	for _, c := range []struct {
		name  string
		label []string
		want  float64
	}{
		{"gofunc_broker_clients", []string{"role", "minion"}, 2},
		{"gofunc_broker_clients", []string{"role", "overlord"}, 1},
		{"gofunc_broker_refused_connections_total", nil, 1},
		{"gofunc_broker_revoked_dropped_total", nil, 0},
		{"gofunc_broker_peers", nil, 0},
		{"gofunc_crl_number", nil, float64(bid.CRLNumber())},
		{"gofunc_cert_expiry_timestamp_seconds", nil, float64(bid.Leaf().NotAfter.Unix())},
	} {
		if got, ok := value(t, reg, c.name, c.label...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.label, got, ok, c.want)
		}
	}
	if got, _ := value(t, reg, "gofunc_broker_messages_received_total"); got < 1 {
		t.Errorf("messages received %v, want at least the overlord's call", got)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
