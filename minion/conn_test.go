package minion_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/minion"
)

// flooders are the loopback addresses bare connections come from; the
// well-behaved caller uses 127.0.0.1.
func flooder(i int) string { return fmt.Sprintf("127.0.0.%d", 2+i%8) }

// Connections that never start their TLS handshake cannot keep callers
// with certificates out: 2,000 bare connections from 8 addresses, held
// open and topped up all along, while an overlord calls on fresh
// connections. (Before, they took the 1024 connection slots and the
// overlord's calls were refused.)
func TestBareConnectionsCannotCrowdOutCallers(t *testing.T) {
	e := start(t, nil) // the default limits
	const bare = 2000
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	dial := func(i int) bool {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(flooder(i))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", e.addr)
		if err != nil {
			return false
		}
		mu.Lock()
		held = append(held, c)
		mu.Unlock()
		return true
	}
	for i := range bare {
		if !dial(i) {
			t.Fatalf("bare connection %d could not be opened", i)
		}
	}
	eventually(t, "the handshake pool to fill", func() bool {
		return e.srv.Stats().Handshaking == minion.DefaultMaxHandshakes
	})
	// Keep the pressure on while the overlord works: another 2,000.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range bare {
			select {
			case <-stop:
				return
			default:
			}
			dial(i)
		}
	}()
	goodCaller(t, e, 10)
	close(stop)
	wg.Wait()
	st := e.srv.Stats()
	if st.HandshakesEvicted < bare-minion.DefaultMaxHandshakes || st.ConnsRefused != 0 {
		t.Errorf("Stats = %+v, want at least %d handshakes evicted and no authenticated connection refused", st, bare-minion.DefaultMaxHandshakes)
	}
}

// When the handshake pool is full, the oldest handshake of the address
// holding the most is closed to make room for a newcomer, never the
// newcomer refused, and never a lone caller from another address.
func TestOldestHandshakeOfBusiestAddressIsEvicted(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.MaxHandshakes = 4 })
	var busy []net.Conn
	for range 4 {
		busy = append(busy, dialFrom(t, "127.0.0.2", e.addr))
		n := len(busy)
		eventually(t, "the minion to take the connection", func() bool { return e.srv.Stats().Handshaking == n })
	}
	defer func() {
		for _, c := range busy {
			c.Close()
		}
	}()
	lone := dialFrom(t, "127.0.0.3", e.addr)
	defer lone.Close()
	if err := waitClosed(busy[0]); err != nil {
		t.Fatalf("the oldest handshake from the busiest address was not closed: %v", err)
	}
	// Two more from the busy address: each evicts that address's oldest
	// (it still holds the most), not the lone caller.
	for i := range 2 {
		busy = append(busy, dialFrom(t, "127.0.0.2", e.addr))
		if err := waitClosed(busy[1+i]); err != nil {
			t.Fatalf("handshake %d from the busy address was not evicted: %v", 1+i, err)
		}
	}
	// The client sees the eviction's close before the minion has
	// counted it and taken in the newcomer: wait for the counts.
	eventually(t, "3 evictions and 4 handshakes in progress", func() bool {
		st := e.srv.Stats()
		return st.HandshakesEvicted == 3 && st.Handshaking == 4
	})
	// The lone caller's connection is still open, and still a TLS
	// server: it completes a handshake.
	tc := tls.Client(lone, e.identity(gofunc.RoleOverlord, "lone").ClientTLSConfig("m1.test"))
	tc.SetDeadline(time.Now().Add(15 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Errorf("the lone caller's handshake: %v", err)
	}
}

// A connection that does not complete its handshake within
// HandshakeTimeout is closed and counted.
func TestHandshakeTimeout(t *testing.T) {
	e := start(t, func(s *minion.Server) { s.HandshakeTimeout = 200 * time.Millisecond })
	c := dialFrom(t, "127.0.0.2", e.addr)
	defer c.Close()
	if err := waitClosed(c); err != nil {
		t.Fatalf("a silent connection outlived the handshake timeout: %v", err)
	}
	eventually(t, "the failed handshake to be counted", func() bool { return e.srv.Stats().HandshakesFailed == 1 })
	if recs := e.records(); len(recs) != 0 {
		t.Errorf("a silent connection was audited: %v", recs)
	}
}

// syncBuffer is a log sink tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// roleless returns a client certificate the minion's CA signed but
// without any gofunc role (as a CA used for other purposes might issue).
func roleless(t *testing.T, e *env) tls.Certificate {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(e.authority.Dir(), "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("ca-key.pem holds no PEM block")
	}
	caKey, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		if caKey, err = x509.ParseECPrivateKey(block.Bytes); err != nil {
			t.Fatal(err)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(4242),
		Subject:      pkix.Name{CommonName: "rogue"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.authority.Certificate(), &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tryHandshake connects from src with cfg and waits for the minion's
// verdict (in TLS 1.3 a refused client certificate shows on the first
// read).
func tryHandshake(t *testing.T, e *env, src string, cfg *tls.Config) error {
	t.Helper()
	tc := tls.Client(dialFrom(t, src, e.addr), cfg)
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(15 * time.Second))
	if err := tc.Handshake(); err != nil {
		return err
	}
	_, err := tc.Read(make([]byte, 1))
	return err
}

// Handshakes refused for the client's certificate are logged and
// audited with the reason (revoked, unknown CA, no gofunc role, none
// shown), rate limited per address.
func TestRefusedHandshakesAreLoggedAndAudited(t *testing.T) {
	var logs syncBuffer
	e := start(t, func(s *minion.Server) {
		s.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})
		s.HandshakeTimeout = time.Minute // no timeouts on a loaded machine: the counts below are exact
	})
	roots := e.id.Roots()
	present := func(cert tls.Certificate) *tls.Config {
		return &tls.Config{RootCAs: roots, ServerName: "m1.test", Certificates: []tls.Certificate{cert}}
	}

	eve := e.identity(gofunc.RoleOverlord, "eve")
	e.revoke("eve")
	stranger := foreign(t, gofunc.RoleOverlord, "stranger")
	cases := []struct {
		src, reason, claimed string
		cfg                  *tls.Config
	}{
		{"127.0.0.2", "revoked", "eve", present(*eve.Certificate())},
		{"127.0.0.3", "unknown CA", "stranger", present(*stranger.Certificate())},
		{"127.0.0.4", "no gofunc role", "rogue", present(roleless(t, e))},
		{"127.0.0.5", "no client certificate", "", &tls.Config{RootCAs: roots, ServerName: "m1.test"}},
	}
	for _, tc := range cases {
		if err := tryHandshake(t, e, tc.src, tc.cfg); err == nil {
			t.Errorf("%s: the minion accepted the connection", tc.reason)
		}
	}
	// A refused certificate again and again: rate limited per address.
	const repeats = 30
	for range repeats {
		tryHandshake(t, e, "127.0.0.6", present(*eve.Certificate()))
	}
	goodCaller(t, e, 2)
	eventually(t, "the failed handshakes to be counted", func() bool {
		return e.srv.Stats().HandshakesFailed == uint64(len(cases)+repeats)
	})
	e.stop()

	byAddr := map[string][]audit.Record{}
	suppressed := 0
	for _, r := range e.records() {
		switch r.Kind {
		case audit.KindTLSRefused:
			host, _, _ := net.SplitHostPort(r.Remote)
			byAddr[host] = append(byAddr[host], r)
		case audit.KindCallsSuppressed:
			if n, err := strconv.Atoi(r.Details[audit.KindTLSRefused]); err == nil && strings.HasPrefix(r.Remote, "127.0.0.6:") {
				suppressed += n
			} else {
				t.Errorf("unexpected summary %+v", r)
			}
		}
	}
	for _, tc := range cases {
		recs := byAddr[tc.src]
		if len(recs) != 1 || recs[0].Details["reason"] != tc.reason || recs[0].Details["claimed_name"] != tc.claimed ||
			recs[0].Outcome != audit.OutcomeDenied {
			t.Errorf("%s: records %+v, want one naming the reason and the name claimed (%q)", tc.reason, recs, tc.claimed)
		}
		if out := logs.String(); !strings.Contains(out, `reason="`+tc.reason+`"`) && !strings.Contains(out, "reason="+tc.reason+" ") {
			t.Errorf("%s: not in the log:\n%s", tc.reason, logs.String())
		}
	}
	if got := len(byAddr["127.0.0.6"]); got+suppressed != repeats || suppressed == 0 {
		t.Errorf("%d refusals recorded one by one and %d counted, want %d in all, some counted", got, suppressed, repeats)
	}
}
