package brokerd

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/identity"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testCA is a real CA in a temporary directory.
type testCA struct {
	t *testing.T
	*ca.Authority
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	a, err := ca.Init(ca.Config{Dir: filepath.Join(t.TempDir(), "ca")})
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{t: t, Authority: a}
}

// issue makes an identity of role for name; brokers get the IP ips.
func (c *testCA) issue(role gofunc.Role, name string, ips ...string) *identity.Identity {
	c.t.Helper()
	opts := ca.IssueOptions{}
	for _, ip := range ips {
		opts.IPs = append(opts.IPs, net.ParseIP(ip))
	}
	id, err := c.Issue(role, name, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// crl returns the CA's current CRL (DER).
func (c *testCA) crl() []byte {
	c.t.Helper()
	der, err := c.CRL()
	if err != nil {
		c.t.Fatal(err)
	}
	return der
}

// startBroker starts a broker for the test on ip, port chosen freely,
// with cfg's other fields; it is shut down when the test ends.
func startBroker(t *testing.T, c *testCA, ip string, cfg Config) *Broker {
	t.Helper()
	if cfg.Identity == nil {
		cfg.Identity = c.issue(gofunc.RoleBroker, "broker-"+strings.ReplaceAll(ip, ".", "-"), ip)
	}
	if cfg.Logger == nil && os.Getenv("BROKERD_DEBUG") != "" {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: ip, Level: hclog.Debug})
	}
	if cfg.Listen == "" {
		cfg.Listen = net.JoinHostPort(ip, "0")
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return b
}

// client is a NATS connection that records the asynchronous errors the
// server sends it (permission violations).
type client struct {
	*nats.Conn
	mu   sync.Mutex
	errs []string
	got  chan struct{} // a token per error
}

// dial connects to url with id's certificate (nil: none).
func dial(t *testing.T, url string, id *identity.Identity, opts ...nats.Option) (*client, error) {
	t.Helper()
	var tc *tls.Config
	if id != nil {
		tc = id.ClientTLSConfig("")
	} else {
		tc = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true} //nolint:gosec // the test of a missing client certificate
	}
	return dialTLS(t, url, tc, opts...)
}

func dialTLS(t *testing.T, url string, tc *tls.Config, opts ...nats.Option) (*client, error) {
	t.Helper()
	c := &client{got: make(chan struct{}, 1000)}
	opts = append([]nats.Option{nats.Secure(tc), nats.NoReconnect(), nats.Timeout(30 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			c.mu.Lock()
			c.errs = append(c.errs, err.Error())
			c.mu.Unlock()
			c.got <- struct{}{}
		})}, opts...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	c.Conn = nc
	t.Cleanup(nc.Close)
	return c, nil
}

func mustDial(t *testing.T, url string, id *identity.Identity) *client {
	t.Helper()
	c, err := dial(t, url, id)
	if err != nil {
		t.Fatalf("connect as %s: %v", id.Name(), err)
	}
	return c
}

// waitViolation waits for the server to report a permission violation
// naming subject.
func (c *client) waitViolation(t *testing.T, subject string) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		c.mu.Lock()
		for _, e := range c.errs {
			if strings.Contains(strings.ToLower(e), "permissions violation") && strings.Contains(e, `"`+subject+`"`) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("no permission violation for %q; errors: %q", subject, c.errs)
		}
	}
}

// flush makes sure the server has handled everything c sent.
func (c *client) flush(t *testing.T) {
	t.Helper()
	if err := c.FlushTimeout(time.Minute); err != nil {
		t.Fatal(err)
	}
}
