package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// rawEnroll sends one enroll call for name with a fresh key and returns
// the fault (nil when the answer is not a fault).
func rawEnroll(t *testing.T, addr, name string) *gofunc.Fault {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	body, err := xmlrpc.EncodeMethodCall("enroll", map[string]any{"csr": string(csr), "name": name})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Post("https://"+addr+"/", "text/xml", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var fe xmlrpc.FaultError
	if err := xmlrpc.Response(b).Err(); errors.As(err, &fe) {
		return &gofunc.Fault{Code: gofunc.Code(fe.Code), Message: fe.String}
	}
	return nil
}

// serve --validity sets the lifetime of renewed (and autosigned)
// certificates, sign --validity that of the ones the admin signs, and
// serve --max-stored caps the stored requests.
func TestValidityAndMaxStoredFlags(t *testing.T) {
	dir, fp := initCA(t)
	if _, _, code := runCmd(t, "sign", "--dir", dir, "--validity", "-1h", "m0"); code != exitUsage {
		t.Errorf("sign --validity -1h: exit %d, want %d", code, exitUsage)
	}
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	var logs syncBuffer
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"serve", "--dir", dir, "--listen", "127.0.0.1:0", "--validity", "48h", "--max-stored", "1", "--rate-burst", "1000"}, io.Discard, pw)
		pw.Close()
	}()
	defer func() {
		cancel()
		if code := <-served; code != exitOK {
			t.Errorf("serve exit %d\n%s", code, logs.String())
		}
	}()
	addr := daemonAddr(t, pr, &logs)

	type result struct {
		id  *identity.Identity
		err error
	}
	enrolled := make(chan result, 1)
	go func() {
		id, err := identity.Enroll(ctx, identity.EnrollRequest{Certmaster: addr, CAFingerprint: fp, Name: "m0",
			Dir: filepath.Join(t.TempDir(), "m0"), MinPoll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond})
		enrolled <- result{id, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for out, _, _ := runCmd(t, "list", "--dir", dir); !strings.Contains(out, "m0"); out, _, _ = runCmd(t, "list", "--dir", dir) {
		if time.Now().After(deadline) {
			t.Fatal("m0's request never showed up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f := rawEnroll(t, addr, "m1"); f == nil || f.Code != gofunc.CodeBusy || !strings.Contains(f.Message, "holds too many requests") {
		t.Errorf("a request over --max-stored 1: fault %v, want busy for the full store", f)
	}

	mustRun(t, "sign", "--dir", dir, "--validity", "24h", "m0")
	r := <-enrolled
	if r.err != nil {
		t.Fatal(r.err)
	}
	if life := time.Until(r.id.Leaf().NotAfter); life < 23*time.Hour || life > 25*time.Hour {
		t.Errorf("signed with --validity 24h: lives %v more", life)
	}
	// Not due yet: refused until the admin allows a re-key.
	if err := r.id.Renew(t.Context(), addr); !errors.Is(err, gofunc.ErrConflict) || !strings.Contains(err.Error(), "not due") {
		t.Fatalf("early renewal: %v, want refused as not due", err)
	}
	mustRun(t, "rekey", "--dir", dir, "m0")
	if err := r.id.Renew(t.Context(), addr); err != nil {
		t.Fatal(err)
	}
	if life := time.Until(r.id.Leaf().NotAfter); life < 47*time.Hour || life > 49*time.Hour {
		t.Errorf("renewed under serve --validity 48h: lives %v more", life)
	}
}
