package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// promQuery asks Prometheus' HTTP API for an instant vector and returns
// each sample's labels (job, instance) with its value.
func promQuery(base, query string) (map[string]string, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ans struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || ans.Status != "success" {
		return nil, fmt.Errorf("query %q: %v %s", query, err, b)
	}
	out := map[string]string{}
	for _, r := range ans.Data.Result {
		out[r.Metric["job"]+"/"+r.Metric["instance"]] = fmt.Sprint(r.Value[1])
	}
	return out, nil
}

// promTargets lists Prometheus' active targets: job/instance -> health.
func promTargets(base string) (map[string]string, error) {
	resp, err := http.Get(base + "/api/v1/targets?state=active")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var ans struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, t := range ans.Data.ActiveTargets {
		out[t.Labels["job"]+"/"+t.Labels["instance"]] = t.Health + " " + t.LastError
	}
	return out, nil
}

// prometheusYML is the configuration the README documents, for a
// certmaster at cm and a monitor identity in mon.
func prometheusYML(cm, mon string) string {
	tls := func(indent string) string {
		return fmt.Sprintf("\n%[1]sca_file: %[2]s/ca.pem\n%[1]scert_file: %[2]s/cert.pem\n%[1]skey_file: %[2]s/key.pem", indent, mon)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: gofunc-certmaster
    scheme: https
    tls_config:%[2]s
    static_configs:
      - targets: ["%[1]s"]
  - job_name: gofunc-minions
    scheme: https
    tls_config:%[2]s
    http_sd_configs:
      - url: https://%[1]s/sd/prometheus
        refresh_interval: 1s
        tls_config:%[3]s
    relabel_configs:
      - source_labels: [__meta_gofunc_name]
        target_label: instance
`, cm, tls("      "), tls("          "))
}

// A real Prometheus (Debian's) finds the minions through the
// certmaster's HTTP service discovery, scrapes the certmaster and every
// minion over mutual TLS with a monitor certificate, and drops a minion
// the CA revoked.
func TestPrometheusScrapesTheFleet(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is not installed; .ci/run installs Debian's package")
		}
		t.Skip("SKIP: prometheus is not installed (apt-get install prometheus); the scrape of a real fleet is not checked")
	}
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
	out, errOut, code := runCmd(t, "certmaster", "init", "--dir", caDir)
	if code != 0 {
		t.Fatalf("certmaster init: %d %s", code, errOut)
	}
	fp := strings.TrimSpace(out)
	cm := net.JoinHostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	daemon(t, "certmaster", "serve", "--dir", caDir, "--listen", cm, "--autosign", "*")
	waitListening(t, cm)
	mon := filepath.Join(dir, "prom")
	if _, e, code := runCmd(t, "certmaster", "issue", "--dir", caDir, "--role", "monitor", "--out", mon, "prometheus"); code != 0 {
		t.Fatalf("issue --role monitor: %s", e)
	}
	var minions []string
	for i := range 3 {
		ip := fmt.Sprintf("127.0.0.%d", 91+i)
		name := fmt.Sprintf("m%d.prom", i+1)
		addr := net.JoinHostPort(ip, freePort(t, ip))
		daemon(t, "funcd", "--dir", filepath.Join(dir, name), "--certmaster", cm, "--ca-fingerprint", fp,
			"--name", name, "--listen", addr, "--crl-refresh", "1s")
		waitListening(t, addr)
		minions = append(minions, name)
	}

	web := net.JoinHostPort("127.0.0.1", freePort(t, "127.0.0.1"))
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(prometheusYML(cm, mon)), 0o600); err != nil {
		t.Fatal(err)
	}
	p := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+web, "--log.level=warn")
	logs := &lockedWriter{buf: &bytes.Buffer{}}
	p.Stdout, p.Stderr = logs, logs
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			p.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", logs.String())
		}
	})
	base := "http://" + web
	want := []string{"gofunc-certmaster/" + cm}
	for _, m := range minions {
		want = append(want, "gofunc-minions/"+m)
	}
	eventually(t, 3*hangTimeout, "every target up", func() error {
		up, err := promQuery(base, "up")
		if err != nil {
			return err
		}
		var got []string
		for k, v := range up {
			if v == "1" {
				got = append(got, k)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			targets, _ := promTargets(base)
			return fmt.Errorf("up: %v, want %v; targets %v", up, want, targets)
		}
		return nil
	})
	// What each scrape brought: the CA's counts and the minions' own series.
	eventually(t, hangTimeout, "series scraped", func() error {
		v, err := promQuery(base, `gofunc_ca_valid_certificates{role="minion"}`)
		if err != nil || v["gofunc-certmaster/"+cm] != "3" {
			return fmt.Errorf("valid minion certificates: %v %v", v, err)
		}
		v, err = promQuery(base, `gofunc_cert_expiry_timestamp_seconds{job="gofunc-minions"}`)
		if err != nil || len(v) != 3 {
			return fmt.Errorf("minion certificate expiry: %v %v", v, err)
		}
		return nil
	})

	// Revoked: gone from discovery, so no longer a target.
	if _, e, code := runCmd(t, "certmaster", "revoke", "--dir", caDir, "m2.prom"); code != 0 {
		t.Fatalf("revoke: %s", e)
	}
	eventually(t, hangTimeout, "the revoked minion leaves the targets", func() error {
		targets, err := promTargets(base)
		if err != nil {
			return err
		}
		if _, ok := targets["gofunc-minions/m2.prom"]; ok || len(targets) != 3 {
			return fmt.Errorf("targets %v", targets)
		}
		return nil
	})
}
