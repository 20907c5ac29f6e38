package networktest_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/modules/networktest"
)

// TestOverMutualTLS calls the Func-named isportopen and http_check through
// a real minion.
func TestOverMutualTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ts := httptest.NewServer(http.NotFoundHandler())
	defer ts.Close()

	f := fleettest.Start(t, fleettest.Config{})
	sel := f.Overlord().Targets("*")
	res, err := sel.Call(t.Context(), "networktest", "isportopen", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, 2)
	if err != nil || res["m1.test"].Value != true {
		t.Fatalf("networktest.isportopen = %v, %v", res["m1.test"].Value, err)
	}
	res, err = sel.Call(t.Context(), "networktest", "http_check", ts.URL, map[string]any{"expect_status": 404, "timeout": "5s"})
	if err != nil {
		t.Fatal(err)
	}
	var h networktest.HTTPResult
	if err := res["m1.test"].Decode(&h); err != nil || !h.OK || h.Status != 404 {
		t.Errorf("networktest.http_check = %+v, %v", h, err)
	}
	_, err = sel.Call(t.Context(), "networktest", "dns_lookup", "-rf")
	if !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("dns_lookup(-rf) = %v, want bad args", err)
	}
}
