package ca

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// getAs GETs path from the certmaster with id's certificate (nil: none)
// and returns the status and body.
func (ts *testService) getAs(t *testing.T, id *identity.Identity, path string) (int, string) {
	t.Helper()
	cfg := &tls.Config{RootCAs: ts.Identity.Roots(), ServerName: "127.0.0.1"}
	if id != nil {
		cfg = id.ClientTLSConfig("127.0.0.1")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	resp, err := c.Get("https://" + ts.addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

func (ts *testService) sdNames(t *testing.T, id *identity.Identity) []string {
	t.Helper()
	code, body := ts.getAs(t, id, SDPath)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s", SDPath, code, body)
	}
	var groups []SDTargetGroup
	if err := json.Unmarshal([]byte(body), &groups); err != nil {
		t.Fatalf("service discovery answer %q: %v", body, err)
	}
	var names []string
	for _, g := range groups {
		if len(g.Targets) != 1 || g.Labels[SDLabelName] == "" || g.Labels[SDLabelSerial] == "" {
			t.Errorf("target group %+v", g)
		}
		names = append(names, g.Labels[SDLabelName])
	}
	return names
}

// Service discovery lists the enrolled minions at the addresses the CA
// vouches for, follows signing and revocation, and answers only
// certificates that read metrics.
func TestServiceDiscovery(t *testing.T) {
	ts := startService(t)
	mon := issue(t, ts.Authority, gofunc.RoleMonitor, "prom", IssueOptions{})
	if got := ts.sdNames(t, mon); len(got) != 0 {
		t.Fatalf("empty CA lists %v", got)
	}

	// A pending request is not a target; signed, it is.
	req := ts.enrollReq(t, "web1.example.org")
	req.Addr = "127.0.0.1:51234"
	done := make(chan error, 1)
	go func() { _, err := identity.Enroll(testCtx(t), req); done <- err }()
	waitPending(t, ts.Authority, 1)
	if got := ts.sdNames(t, mon); len(got) != 0 {
		t.Fatalf("pending request listed: %v", got)
	}
	if _, err := ts.Authority.Sign("web1.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	issue(t, ts.Authority, gofunc.RoleMinion, "db1.example.org", IssueOptions{})
	if got := ts.sdNames(t, mon); !slices.Equal(got, []string{"db1.example.org", "web1.example.org"}) {
		t.Fatalf("after signing: %v", got)
	}
	_, body := ts.getAs(t, mon, SDPath)
	// The request came from 127.0.0.1, so the claimed address is vouched for.
	if !strings.Contains(body, `"targets":["127.0.0.1:51234"]`) || !strings.Contains(body, `"__meta_gofunc_vouched":"true"`) {
		t.Errorf("web1's target group: %s", body)
	}

	// Revoked: gone at the next refresh.
	if _, err := ts.Authority.Revoke("web1.example.org", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if got := ts.sdNames(t, mon); !slices.Equal(got, []string{"db1.example.org"}) {
		t.Fatalf("after revoking web1: %v", got)
	}

	// An overlord may read it too; nobody else.
	ov := issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	if got := ts.sdNames(t, ov); len(got) != 1 {
		t.Errorf("overlord reads %v", got)
	}
	viewer := issue(t, ts.Authority, gofunc.RoleViewer, "bob", IssueOptions{})
	minion := issue(t, ts.Authority, gofunc.RoleMinion, "m3", IssueOptions{})
	for _, c := range []struct {
		name string
		id   *identity.Identity
		want int
	}{{"no certificate", nil, http.StatusUnauthorized}, {"viewer", viewer, http.StatusForbidden},
		{"minion", minion, http.StatusForbidden}} {
		if code, body := ts.getAs(t, c.id, SDPath); code != c.want || strings.Contains(body, "db1") {
			t.Errorf("%s: %d %q, want %d and no target", c.name, code, body, c.want)
		}
	}
	if _, err := ts.Authority.Revoke("prom", ReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if code, body := ts.getAs(t, mon, SDPath); code == http.StatusOK {
		t.Errorf("revoked monitor: %d %q", code, body)
	}
	// No metrics handler: /metrics is not a path of the service.
	if code, _ := ts.getAs(t, ov, MetricsPath); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /metrics without Service.Metrics: %d", code)
	}
}

func TestStats(t *testing.T) {
	ts := startService(t)
	issue(t, ts.Authority, gofunc.RoleMinion, "m1", IssueOptions{})
	issue(t, ts.Authority, gofunc.RoleMinion, "m2", IssueOptions{})
	issue(t, ts.Authority, gofunc.RoleOverlord, "alice", IssueOptions{})
	if _, err := ts.Authority.Revoke("m2", ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	req := ts.enrollReq(t, "m3")
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan struct{})
	go func() { identity.Enroll(ctx, req); close(done) }()
	defer func() { cancel(); <-done }()
	waitPending(t, ts.Authority, 1)
	st, err := ts.Authority.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 1 || st.Issued[gofunc.RoleMinion] != 2 || st.Valid[gofunc.RoleMinion] != 1 ||
		st.Valid[gofunc.RoleOverlord] != 1 || st.Revoked != 1 || st.CRLNumber < 2 || st.CRLNextUpdate.IsZero() ||
		!st.CAExpiry.Equal(ts.Authority.Certificate().NotAfter) {
		t.Errorf("stats %+v", st)
	}
}
