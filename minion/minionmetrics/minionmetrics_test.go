package minionmetrics_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/internal/promtest"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/minion/minionmetrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// metricsFleet is one minion (events on) serving its metrics.
func metricsFleet(t *testing.T) (*fleettest.Fleet, *minionmetrics.Metrics) {
	t.Helper()
	var mm *minionmetrics.Metrics
	f := fleettest.Start(t, fleettest.Config{Minions: 1, NoBuiltins: true, Subnet: "127.0.10", Events: true,
		Modules: func(_ string, srv *minion.Server) error {
			mm = minionmetrics.New(srv)
			srv.Audit = mm.Audit(srv.Audit)
			srv.Observe = mm.Observe
			reg := metrics.NewRegistry()
			reg.MustRegister(mm)
			srv.Metrics = metrics.Handler(reg)
			return nil
		}})
	return f, mm
}

// Calls are counted by method and outcome, a method the minion lacks
// under "other", denials apart; the registry passes the linter and
// parses in both formats.
func TestCounts(t *testing.T) {
	f, mm := metricsFleet(t)
	ctx := t.Context()
	for range 3 {
		if _, err := f.Overlord().Targets("*").Call(ctx, "system", "list_modules"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Overlord().Targets("*").Call(ctx, "nosuch", "thing"); !errors.Is(err, gofunc.ErrNoSuchMethod) {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := f.As(gofunc.RoleMinion, "intruder").Targets("*").Call(ctx, "system", "list_modules"); !errors.Is(err, gofunc.ErrDenied) {
		t.Fatalf("minion certificate calling: %v", err)
	}
	want := `
# HELP gofunc_acl_denials_total Requests refused by the ACL or for the caller's certificate.
# TYPE gofunc_acl_denials_total counter
gofunc_acl_denials_total 1
# HELP gofunc_calls_total Requests the minion answered, by method and outcome.
# TYPE gofunc_calls_total counter
gofunc_calls_total{method="list_modules",module="system",outcome="denied"} 1
gofunc_calls_total{method="list_modules",module="system",outcome="ok"} 3
gofunc_calls_total{method="other",module="other",outcome="rejected"} 1
# HELP gofunc_event_journal_depth Events the minion's event journal holds.
# TYPE gofunc_event_journal_depth gauge
gofunc_event_journal_depth 1
`
	if err := testutil.CollectAndCompare(mm, strings.NewReader(want), "gofunc_calls_total", "gofunc_acl_denials_total",
		"gofunc_event_journal_depth"); err != nil {
		t.Error(err)
	}
	reg := metrics.NewRegistry()
	reg.MustRegister(mm)
	fams, err := promtest.Check(reg, metrics.Handler(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gofunc_audit_write_seconds", "gofunc_audit_head_seq", "gofunc_cert_expiry_timestamp_seconds",
		"gofunc_call_duration_seconds", "gofunc_minion_calls_in_flight"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
	// Every call writes two records, refusals one: the head moved.
	if head := fams["gofunc_audit_head_seq"].GetMetric()[0].GetGauge().GetValue(); head < 8 {
		t.Errorf("audit head %v", head)
	}
}

func issue(t *testing.T, f *fleettest.Fleet, role gofunc.Role, name string) *identity.Identity {
	t.Helper()
	id, err := f.CA.Issue(role, name, ca.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// /metrics on the minion's TLS port: monitor and overlord certificates
// read it; no certificate, a viewer, a minion, a revoked monitor do not.
func TestServedOnTheTLSPort(t *testing.T) {
	f, _ := metricsFleet(t)
	m := f.Minions()[0]
	get := func(id *identity.Identity) (int, string) {
		cfg := &tls.Config{RootCAs: m.Identity.Roots()} // by IP: the certificate has the minion's IP address
		if id != nil {
			cfg.Certificates = []tls.Certificate{*id.Certificate()}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		defer c.CloseIdleConnections()
		resp, err := c.Get("https://" + m.Addr + "/metrics")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	mon := issue(t, f, gofunc.RoleMonitor, "prom")
	// Nothing runs: the scrape does not count itself in flight.
	if code, page := get(mon); code != http.StatusOK || !strings.Contains(page, "gofunc_cert_expiry_timestamp_seconds") ||
		!strings.Contains(page, "\ngofunc_minion_calls_in_flight 0\n") {
		t.Errorf("monitor: %d\n%.300s", code, page)
	}
	if code, _ := get(f.Admin()); code != http.StatusOK {
		t.Errorf("overlord: %d", code)
	}
	for _, c := range []struct {
		who  string
		id   *identity.Identity
		want int
	}{{"no certificate (refused at the handshake)", nil, 0}, {"viewer", issue(t, f, gofunc.RoleViewer, "bob"), http.StatusForbidden},
		{"minion", issue(t, f, gofunc.RoleMinion, "m9"), http.StatusForbidden}} {
		if code, page := get(c.id); code != c.want || strings.Contains(page, "gofunc_") {
			t.Errorf("%s: %d, want %d\n%.200s", c.who, code, c.want, page)
		}
	}
	// Revoked (the minion holds the new CRL): refused.
	if _, err := f.CA.Revoke("prom", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	crl, err := f.CA.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Server.CurrentIdentity().SetCRL(crl); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(mon); code == http.StatusOK {
		t.Errorf("revoked monitor read the metrics")
	}
}

// The journal's depth follows what the minion wrote.
func TestJournalDepth(t *testing.T) {
	f, mm := metricsFleet(t)
	j := f.Minions()[0].Journal()
	for range 4 {
		if _, err := j.Emit("w", &events.NagiosState{Plugin: "p", State: "OK"}); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP gofunc_event_journal_depth Events the minion's event journal holds.
# TYPE gofunc_event_journal_depth gauge
gofunc_event_journal_depth 5
# HELP gofunc_event_journal_head_seq The event journal's newest sequence number.
# TYPE gofunc_event_journal_head_seq gauge
gofunc_event_journal_head_seq 5
`
	if err := testutil.CollectAndCompare(mm, strings.NewReader(want), "gofunc_event_journal_depth", "gofunc_event_journal_head_seq"); err != nil {
		t.Error(err)
	}
}

// syncFails is a disk whose fsync fails once failing is set.
type syncFails struct {
	bytes.Buffer
	failing bool
}

func (s *syncFails) Sync() error {
	if s.failing {
		return errors.New("injected: EIO")
	}
	return nil
}

// gofunc_audit_log_failed is 0 while the log takes records and 1 once a
// failed fsync makes it refuse them all; it is absent for an Appender
// that cannot tell.
func TestAuditLogFailed(t *testing.T) {
	mm := minionmetrics.New(&minion.Server{})
	disk := &syncFails{}
	trail, err := audit.New(disk, audit.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	a := mm.Audit(trail)
	gauge := func(v int) string {
		return fmt.Sprintf(`
# HELP gofunc_audit_log_failed 1 when the audit log refuses every record until funcd restarts (a failed fsync, or a failed write it could not undo): every call is then answered audit_failed.
# TYPE gofunc_audit_log_failed gauge
gofunc_audit_log_failed %d
`, v)
	}
	if _, err := a.Append(audit.Record{Kind: audit.KindCallStart}); err != nil {
		t.Fatal(err)
	}
	if err := testutil.CollectAndCompare(mm, strings.NewReader(gauge(0)), "gofunc_audit_log_failed"); err != nil {
		t.Error(err)
	}
	disk.failing = true
	if _, err := a.Append(audit.Record{Kind: audit.KindCallStart}); !errors.Is(err, audit.ErrWrite) {
		t.Fatalf("Append with a failing fsync = %v, want audit.ErrWrite", err)
	}
	if err := testutil.CollectAndCompare(mm, strings.NewReader(gauge(1)), "gofunc_audit_log_failed"); err != nil {
		t.Error(err)
	}
	plain := minionmetrics.New(&minion.Server{})
	plain.Audit(appenderOnly{trail})
	if n := testutil.CollectAndCount(plain, "gofunc_audit_log_failed"); n != 0 {
		t.Errorf("an Appender that cannot tell exports %d gofunc_audit_log_failed series, want none", n)
	}
}

// appenderOnly hides everything of an audit log but Append.
type appenderOnly struct{ a audit.Appender }

func (o appenderOnly) Append(rec audit.Record) (audit.Record, error) { return o.a.Append(rec) }

// An async call's job is counted when it ends, by how it ended; its
// request was counted ok when the job started.
func TestJobsCounted(t *testing.T) {
	f, mm := metricsFleet(t)
	m := f.Minions()[0]
	c := f.Overlord()
	ctx := t.Context()
	for _, method := range []string{"list_modules", "nosuch_method"} {
		_, err := c.Targets(m.Name).Call(ctx, "async.system", method)
		if method == "list_modules" && err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP gofunc_jobs_total Async calls' jobs that ended, by method and outcome.
# TYPE gofunc_jobs_total counter
gofunc_jobs_total{method="list_modules",module="system",outcome="ok"} 1
`
	deadline := time.Now().Add(time.Minute)
	for {
		err := testutil.CollectAndCompare(mm, strings.NewReader(want), "gofunc_jobs_total")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want = `
# HELP gofunc_calls_total Requests the minion answered, by method and outcome.
# TYPE gofunc_calls_total counter
gofunc_calls_total{method="list_modules",module="system",outcome="ok"} 1
gofunc_calls_total{method="other",module="other",outcome="rejected"} 1
`
	if err := testutil.CollectAndCompare(mm, strings.NewReader(want), "gofunc_calls_total"); err != nil {
		t.Error(err)
	}
}
