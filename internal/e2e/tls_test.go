package e2e

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/ca"
)

// openssl runs s_client against addr with args and reports whether the
// handshake completed, with its output.
func openssl(t *testing.T, addr string, args ...string) (bool, string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed for this test (apt-get install openssl): %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), hangTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"s_client", "-connect", addr, "-brief"}, args...)...)
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), "Protocol version"), string(out)
}

// Issue 11 item 12: a real funcd and a real certmaster accept TLS 1.3,
// and TLS 1.2 only with ECDHE and an AEAD cipher; the CBC-SHA1 suite
// that used to complete a handshake is refused.
func TestTLSPolicyWithOpenSSL(t *testing.T) {
	t.Parallel()
	f := newFleet(t)
	minion, _ := f.funcd(t, "tls.test", "127.0.0.1")

	svc := &ca.Service{Authority: f.authority}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()
	t.Cleanup(func() {
		svc.Close()
		if err := <-done; !errors.Is(err, ca.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	certmaster := ln.Addr().String()

	// The overlord's certificate, so that the minion's demand for one is
	// not what ends a handshake.
	creds := []string{"-cert", filepath.Join(f.overlord, "cert.pem"), "-key", filepath.Join(f.overlord, "key.pem"),
		"-CAfile", filepath.Join(f.overlord, "ca.pem")}
	for _, srv := range []struct{ name, addr string }{{"funcd", minion}, {"certmaster", certmaster}} {
		refused := [][]string{
			{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"},
			{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384:@SECLEVEL=0"},
			{"-tls1_1", "-cipher", "ALL:@SECLEVEL=0"},
		}
		for _, args := range refused {
			if ok, out := openssl(t, srv.addr, append(args, creds...)...); ok {
				t.Errorf("%s accepted openssl s_client %s:\n%s", srv.name, strings.Join(args, " "), out)
			}
		}
		accepted := [][]string{
			{"-tls1_3"},
			{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"},
			{"-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"},
		}
		for _, args := range accepted {
			if ok, out := openssl(t, srv.addr, append(args, creds...)...); !ok {
				t.Errorf("%s refused openssl s_client %s:\n%s", srv.name, strings.Join(args, " "), out)
			}
		}
	}
}
