// Package promtest checks what gofunc's metrics handlers serve: the
// registry passes client_golang's linter, and the page parses in both
// exposition formats (Prometheus text and OpenMetrics 1.0) with the
// same families. Tests only.
package promtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Accept headers of the two formats.
const (
	AcceptText        = "text/plain;version=0.0.4"
	AcceptOpenMetrics = "application/openmetrics-text;version=1.0.0"
)

// Lint returns the problems client_golang's linter finds in g's
// metrics, one per line, or nil.
func Lint(g prometheus.Gatherer) error {
	problems, err := testutil.GatherAndLint(g)
	if err != nil {
		return err
	}
	if len(problems) == 0 {
		return nil
	}
	var b strings.Builder
	for _, p := range problems {
		fmt.Fprintf(&b, "%s: %s\n", p.Metric, p.Text)
	}
	return fmt.Errorf("lint:\n%s", b.String())
}

// Scrape GETs h with the given Accept header and returns the body and
// the content type served.
func Scrape(h http.Handler, accept string) (body, contentType string, err error) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	h.ServeHTTP(rec, req)
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return string(b), "", fmt.Errorf("GET /metrics: %s: %s", res.Status, b)
	}
	return string(b), res.Header.Get("Content-Type"), nil
}

// Parse parses a page in the Prometheus text format (or OpenMetrics
// 1.0, which the same parser reads once its OpenMetrics-only lines are
// checked and dropped) into families by name.
func Parse(body string, openMetrics bool) (map[string]*dto.MetricFamily, error) {
	if openMetrics {
		var err error
		if body, err = fromOpenMetrics(body); err != nil {
			return nil, err
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(strings.NewReader(body))
}

// fromOpenMetrics checks the OpenMetrics framing (a single "# EOF" as
// the last line, counters' samples ending in _total or _created) and
// turns the page into the text format.
func fromOpenMetrics(body string) (string, error) {
	rest, ok := strings.CutSuffix(body, "# EOF\n")
	if !ok {
		return "", fmt.Errorf("openmetrics: the page does not end with # EOF")
	}
	counters := map[string]bool{}
	var out bytes.Buffer
	help := "" // a HELP line waits for its family's TYPE, which says its name
	for line := range strings.Lines(rest) {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "# EOF"):
			return "", fmt.Errorf("openmetrics: # EOF before the end")
		case len(f) >= 3 && f[0] == "#" && f[1] == "HELP":
			help = line
			continue
		case len(f) >= 4 && f[0] == "#" && f[1] == "TYPE":
			if f[3] == "counter" {
				counters[f[2]] = true
				help = strings.Replace(help, f[2], f[2]+"_total", 1)
				line = fmt.Sprintf("# TYPE %s_total counter\n", f[2])
			}
			out.WriteString(help)
			help = ""
		case len(f) >= 2 && f[0] == "#" && f[1] == "UNIT":
			continue
		case len(f) >= 1 && !strings.HasPrefix(f[0], "#"):
			name, _, _ := strings.Cut(f[0], "{")
			if base, ok := strings.CutSuffix(name, "_created"); ok && counters[base] {
				continue
			}
			if base, ok := strings.CutSuffix(name, "_total"); !ok && counters[base] {
				return "", fmt.Errorf("openmetrics: counter sample %s does not end in _total", name)
			}
		}
		out.WriteString(line)
	}
	return out.String(), nil
}

// Check lints g and scrapes h in both formats; both pages must parse
// and hold the same families. It returns the families of the text page.
func Check(g prometheus.Gatherer, h http.Handler) (map[string]*dto.MetricFamily, error) {
	if err := Lint(g); err != nil {
		return nil, err
	}
	text, ct, err := Scrape(h, AcceptText)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("text scrape served %q", ct)
	}
	om, ct, err := Scrape(h, AcceptOpenMetrics)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(ct, "application/openmetrics-text") {
		return nil, fmt.Errorf("openmetrics scrape served %q", ct)
	}
	tf, err := Parse(text, false)
	if err != nil {
		return nil, fmt.Errorf("text format: %w", err)
	}
	of, err := Parse(om, true)
	if err != nil {
		return nil, fmt.Errorf("openmetrics: %w", err)
	}
	if a, b := names(tf), names(of); !slices.Equal(a, b) {
		return nil, fmt.Errorf("families differ:\ntext:        %v\nopenmetrics: %v", a, b)
	}
	return tf, nil
}

func names(m map[string]*dto.MetricFamily) []string {
	var out []string
	for n := range m {
		out = append(out, strings.TrimSuffix(n, "_total"))
	}
	slices.Sort(out)
	return out
}
