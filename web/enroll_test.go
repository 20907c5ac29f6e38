package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
)

// Sign and Reject act only on the key the confirmation showed: a
// request whose key is not the one posted back is left pending (409).
// Reject leaves no certificate; Revoke's confirmation names the serial
// and a bad reason is refused.
func TestEnrollmentActsOnlyOnTheKeyShown(t *testing.T) {
	e := newEnv(t, envOptions{minions: 1, subnet: "127.0.24"})
	admin := e.users[gofunc.RoleAdmin]
	post := func(path string, form url.Values) int {
		resp, body := e.do(e.client(admin), "POST", path, strings.NewReader(form.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
		if resp == nil {
			t.Fatalf("POST %s: %s", path, body)
		}
		return resp.StatusCode
	}
	fpA := submitRequest(t, e.fleet.CA, "a.test")
	fpB := submitRequest(t, e.fleet.CA, "b.test")

	var confirm confirmData
	if st := e.getJSON(admin, "/enrollment/requests/a.test/sign", &confirm); st != 200 || confirm.Request == nil || confirm.Request.KeyFingerprint != fpA {
		t.Fatalf("the confirmation: %d %+v", st, confirm.Request)
	}
	for _, fp := range []string{fpB, "", "SHA256:forged"} {
		if st := post("/enrollment/requests/a.test/sign", url.Values{"fingerprint": {fp}}); st != http.StatusConflict && st != http.StatusBadRequest {
			t.Errorf("sign a.test with key %q: %d, want 409 or 400", fp, st)
		}
	}
	if c := e.certOf(t, "a.test"); c != nil {
		t.Fatalf("a.test was signed with another key: %+v", c)
	}
	if st := post("/enrollment/requests/a.test/sign", url.Values{"fingerprint": {fpA}}); st != 200 {
		t.Fatalf("sign a.test: %d", st)
	}
	if c := e.certOf(t, "a.test"); c == nil || c.KeyFingerprint != fpA {
		t.Errorf("a.test's certificate: %+v", c)
	}

	if st := post("/enrollment/requests/b.test/reject", url.Values{"fingerprint": {fpA}}); st != http.StatusConflict && st != http.StatusBadRequest {
		t.Errorf("reject b.test with a.test's key: %d", st)
	}
	if st := post("/enrollment/requests/b.test/reject", url.Values{"fingerprint": {fpB}}); st != 200 {
		t.Fatalf("reject b.test: %d", st)
	}
	var page enrollmentData
	if st := e.getJSON(admin, "/enrollment", &page); st != 200 || len(page.Pending) != 0 || len(page.Rejected) != 1 || page.Rejected[0].Status != ca.StatusRejected {
		t.Errorf("after sign and reject: %d pending %+v rejected %+v", st, page.Pending, page.Rejected)
	}
	if c := e.certOf(t, "b.test"); c != nil {
		t.Errorf("rejected b.test has a certificate: %+v", c)
	}

	serial := e.certOf(t, "a.test").Serial
	if st := e.getJSON(admin, "/enrollment/certs/"+serial+"/revoke", &confirm); st != 200 || confirm.Cert == nil || confirm.Cert.Serial != serial || confirm.Cert.Name != "a.test" {
		t.Fatalf("revoke confirmation: %d %+v", st, confirm.Cert)
	}
	if st := post("/enrollment/certs/"+serial+"/revoke", url.Values{"reason": {"boredom"}}); st != http.StatusBadRequest {
		t.Errorf("revoke for a bad reason: %d, want 400", st)
	}
	if st := post("/enrollment/certs/"+serial+"/revoke", url.Values{"reason": {"keyCompromise"}}); st != 200 {
		t.Fatalf("revoke: %d", st)
	}
	if c := e.certBySerial(t, serial); c == nil || !c.Revoked {
		t.Errorf("a.test's certificate after Revoke: %+v", c)
	}
	if st := post("/enrollment/certs/ffff/revoke", url.Values{"reason": {"keyCompromise"}}); st != http.StatusNotFound {
		t.Errorf("revoke of no such serial: %d, want 404", st)
	}
}
