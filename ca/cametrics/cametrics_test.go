package cametrics_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/ca/cametrics"
	"github.com/gofunc/gofunc/internal/promtest"
	"github.com/gofunc/gofunc/metrics"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A CA at a fixed time, with one request pending, two minions (one
// revoked) and an overlord.
func fixedCA(t *testing.T) *ca.Authority {
	t.Helper()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	a, err := ca.Init(ca.Config{Dir: t.TempDir(), Now: func() time.Time { return now }, ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"m1", "m2"} {
		if _, err := a.Issue(gofunc.RoleMinion, n, ca.IssueOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Issue(gofunc.RoleOverlord, "alice", ca.IssueOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke("m2", ca.ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGolden(t *testing.T) {
	a := fixedCA(t)
	expiry := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	c := cametrics.New(a, func() time.Time { return expiry })
	golden := filepath.Join("testdata", "certmaster.golden")
	if *update {
		reg := metrics.NewRegistry()
		reg.MustRegister(c)
		page, _, err := promtest.Scrape(metrics.Handler(reg), promtest.AcceptText)
		if err != nil {
			t.Fatal(err)
		}
		var keep []string
		for line := range strings.Lines(page) {
			if strings.Contains(line, "gofunc_") {
				keep = append(keep, line)
			}
		}
		if err := os.WriteFile(golden, []byte(strings.Join(keep, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(golden)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := testutil.CollectAndCompare(c, f); err != nil {
		t.Error(err)
	}
}

func TestLintAndFormats(t *testing.T) {
	reg := metrics.NewRegistry()
	reg.MustRegister(cametrics.New(fixedCA(t), nil))
	fams, err := promtest.Check(reg, metrics.Handler(reg))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"gofunc_ca_pending_requests", "gofunc_ca_signed_total", "gofunc_crl_next_update_timestamp_seconds",
		"go_goroutines", "process_cpu_seconds_total"} {
		if fams[want] == nil {
			t.Errorf("no %s", want)
		}
	}
	if fams["gofunc_cert_expiry_timestamp_seconds"] != nil {
		t.Error("certificate expiry without a service certificate")
	}
}

// A CA that cannot be read fails the scrape rather than serve zeros.
func TestUnreadableCAFailsTheScrape(t *testing.T) {
	a := fixedCA(t)
	reg := metrics.NewRegistry()
	reg.MustRegister(cametrics.New(a, nil))
	if err := os.Chmod(a.Dir(), 0); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(a.Dir(), 0o700)
	if os.Geteuid() == 0 {
		// root reads anything: take the requests directory away instead.
		os.Chmod(a.Dir(), 0o700)
		if err := os.Rename(filepath.Join(a.Dir(), "requests"), filepath.Join(a.Dir(), "requests.moved")); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := promtest.Scrape(metrics.Handler(reg), promtest.AcceptText); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("scrape of an unreadable CA: %v, want a 500", err)
	}
}
