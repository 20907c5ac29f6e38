package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc/identity"
)

// logValues reads the daemon's log until it has logged every key (as
// key=127.0.0.1:PORT) and returns the values.
func logValues(t *testing.T, r io.Reader, logs *syncBuffer, keys ...string) map[string]string {
	t.Helper()
	found := make(chan map[string]string, 1)
	go func() {
		got := map[string]string{}
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			for _, k := range keys {
				if m := regexp.MustCompile(`\b` + k + `=(127\.0\.0\.1:\d+)`).FindStringSubmatch(sc.Text()); m != nil && got[k] == "" {
					got[k] = m[1]
					if len(got) == len(keys) {
						found <- got
					}
				}
			}
		}
		close(found)
	}()
	select {
	case got, ok := <-found:
		if !ok {
			t.Fatalf("daemon exited before logging %v:\n%s", keys, logs.String())
		}
		return got
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not log %v:\n%s", keys, logs.String())
	}
	return nil
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// certmaster serve: /metrics and /sd/prometheus on the TLS port for a
// monitor certificate (none for no certificate), /metrics without TLS
// on the loopback listener; a non-loopback plain listener is refused.
func TestServeMetrics(t *testing.T) {
	dir, _ := initCA(t)
	if _, _, code := runCmd(t, "serve", "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0"); code != exitUsage {
		t.Errorf("--metrics-listen 0.0.0.0:0: exit %d, want %d", code, exitUsage)
	}
	mon := filepath.Join(t.TempDir(), "prom")
	mustRun(t, "issue", "--dir", dir, "--role", "monitor", "--out", mon, "prom")
	id, err := identity.Load(mon)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, "issue-overlord", "--dir", dir, "--out", filepath.Join(t.TempDir(), "o"), "alice")

	pr, pw := io.Pipe()
	var logs syncBuffer
	served := make(chan int, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		served <- run(ctx, []string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--log-level", "info"}, io.Discard, pw)
		pw.Close()
	}()
	defer func() {
		cancel()
		if code := <-served; code != exitOK {
			t.Errorf("serve exit %d\n%s", code, logs.String())
		}
	}()
	addrs := logValues(t, pr, &logs, "addr", "metrics_addr")

	plain := &http.Client{}
	code, page := get(t, plain, "http://"+addrs["metrics_addr"]+"/metrics")
	if code != http.StatusOK || !strings.Contains(page, "gofunc_ca_valid_certificates{role=\"overlord\"} 1") ||
		!strings.Contains(page, "gofunc_cert_expiry_timestamp_seconds") {
		t.Errorf("plain /metrics: %d\n%s", code, page)
	}
	if code, _ := get(t, plain, "http://"+addrs["metrics_addr"]+"/sd/prometheus"); code != http.StatusNotFound {
		t.Errorf("service discovery on the plain listener: %d, want 404", code)
	}

	// As Prometheus' tls_config does it: the CA, the certificate, and the
	// certmaster's IP address (one of its certificate's names).
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: id.Roots(),
		Certificates: []tls.Certificate{*id.Certificate()}}}}
	defer withCert.CloseIdleConnections()
	base := "https://" + addrs["addr"]
	if code, page := get(t, withCert, base+"/metrics"); code != http.StatusOK || !strings.Contains(page, "gofunc_ca_signed_total") {
		t.Errorf("TLS /metrics as monitor: %d\n%s", code, page)
	}
	if code, page := get(t, withCert, base+"/sd/prometheus"); code != http.StatusOK || page != "[]\n" {
		t.Errorf("TLS /sd/prometheus as monitor: %d %q", code, page)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: id.Roots()}}}
	defer noCert.CloseIdleConnections()
	if code, page := get(t, noCert, base+"/metrics"); code != http.StatusUnauthorized || strings.Contains(page, "gofunc_") {
		t.Errorf("TLS /metrics without a certificate: %d\n%s", code, page)
	}
}
