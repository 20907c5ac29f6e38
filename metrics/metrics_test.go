package metrics_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc/internal/promtest"
	"github.com/gofunc/gofunc/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestListenOnlyOnLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "localhost:0", "[::]:0", "192.0.2.1:0", "127.0.0.1"} {
		ln, err := metrics.Listen(addr)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%q) accepted", addr)
		}
	}
	if _, err := metrics.Listen("0.0.0.0:0"); !errors.Is(err, metrics.ErrNotLoopback) {
		t.Errorf("Listen(0.0.0.0:0) = %v, want ErrNotLoopback", err)
	}
	ln, err := metrics.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "gofunc_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	stop := metrics.Serve(ln, metrics.Handler(reg), nil)
	defer stop()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "gofunc_test_total 3") {
		t.Errorf("page:\n%s", b)
	}
	resp, err = http.Get("http://" + ln.Addr().String() + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /other: %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestBothFormats(t *testing.T) {
	reg := metrics.NewRegistry()
	fams, err := promtest.Check(reg, metrics.Handler(reg))
	if err != nil {
		t.Fatal(err)
	}
	if fams["go_goroutines"] == nil || fams["process_start_time_seconds"] == nil {
		t.Errorf("families %v", fams)
	}
}
