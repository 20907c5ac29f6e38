package minion

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/modules/test"
)

func FuzzParseJobRecord(f *testing.F) {
	good, _ := json.Marshal(jobRecord{Version: 1, ID: "0123456789abcdef0123456789abcdef", CallID: "c", Method: "test.ping",
		Owner: "admin", Role: "overlord", State: JobStateFinished, Started: time.Unix(1, 0).UTC(), Finished: time.Unix(2, 0).UTC(),
		Response: []byte("<methodResponse/>")})
	f.Add(good)
	f.Add([]byte(`{"v":1,"id":"0123456789abcdef0123456789abcdef","method":"m","owner":"o","state":"running","started":"2020-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"v":1,"id":"0123456789ABCDEF0123456789abcdef","method":"m","owner":"o","state":"lost"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"extra":true}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := parseJobRecord(data)
		if err != nil {
			if !errors.Is(err, errBadJobRecord) {
				t.Fatalf("error %v does not wrap errBadJobRecord", err)
			}
			return
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		back, err := parseJobRecord(again)
		if err != nil {
			t.Fatalf("a record that parsed does not parse after encoding: %v\n%s", err, again)
		}
		if diff := cmp.Diff(rec, back); diff != "" {
			t.Fatalf("round trip changed the record:\n%s", diff)
		}
	})
}

// FuzzServeHTTP sends arbitrary bodies through the whole handler, as a
// verified caller: whatever the body, the answer is a well-formed
// methodResponse (a result or a fault), never a panic.
func FuzzServeHTTP(f *testing.F) {
	s, cs := fuzzServer(f)
	for _, seed := range []string{
		"<methodCall><methodName>test.ping</methodName></methodCall>",
		"<methodCall><methodName>test.echo</methodName><params><param><value><array><data><value><i8>9223372036854775807</i8></value><value><nil/></value></data></array></value></param></params></methodCall>",
		"<methodCall><methodName>async.test.add</methodName><params><param><value><int>1</int></value></param><param><value><double>2.5</double></value></param></params></methodCall>",
		"<methodCall><methodName>jobs.job_status</methodName><params><param><value>0123</value></param></params></methodCall>",
		"<methodCall><methodName>system.list_methods</methodName></methodCall>",
		"<methodCall><methodName>test.get_method_args</methodName></methodCall>",
		"<methodCall><methodName>test.sleep</methodName><params><param><value><double>10</double></value></param></params></methodCall>",
		"<methodCall><methodName>test.nope</methodName></methodCall>",
		"<methodCall><methodName>test.ping",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/RPC2", bytes.NewReader(body))
		req.TLS = cs
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Header().Get(gofunc.CallIDHeader) == "" {
			t.Fatal("no call id header")
		}
		_, err := xmlrpc.DecodeResponse(rec.Body, xmlrpc.Limits{MaxBytes: 128 << 20, MaxDepth: 130})
		var re *xmlrpc.ResponseError
		if errors.As(err, &re) {
			t.Fatalf("the answer is not a well-formed response: %v\n%s", err, rec.Body.String())
		}
	})
}

// fuzzServer is a started (not serving) Server over a throwaway audit
// log, and the TLS state of a verified overlord caller.
func fuzzServer(f *testing.F) (*Server, *tls.ConnectionState) {
	dir := f.TempDir()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(dir, "ca")})
	if err != nil {
		f.Fatal(err)
	}
	id, err := a.Issue(gofunc.RoleMinion, "m1.test", ca.IssueOptions{})
	if err != nil {
		f.Fatal(err)
	}
	caller, err := a.Issue(gofunc.RoleOverlord, "admin", ca.IssueOptions{})
	if err != nil {
		f.Fatal(err)
	}
	trail, err := audit.New(discard{}, audit.Config{})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{Identity: id, Audit: trail, MaxCallTimeout: 50 * time.Millisecond, JobDir: filepath.Join(dir, "jobs")}
	if err := s.Register("test", &test.Module{}); err != nil {
		f.Fatal(err)
	}
	if _, err := s.start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		s.Close()
		s.calls.wait(f.Context())
		trail.Close()
	})
	leaf := caller.Leaf()
	return s, &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, a.Certificate()}}}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
func (discard) Sync() error                 { return nil }
