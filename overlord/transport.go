package overlord

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/identity"
)

// Transport carries one call to one minion and returns its answer: the
// seam between what the Client does (targets, fan-out, audit, decoding,
// classifying failures) and how bytes reach a minion. The Client's own
// transport (Config.Transport nil) is direct HTTPS to each minion's
// address over mutual TLS, one kept-alive connection per minion; a
// transport through a message broker is another. RoundTrip is called
// concurrently, up to Config.Forks at a time.
type Transport interface {
	// RoundTrip sends call to the minion to and returns its answer.
	// ctx carries the host's deadline, which the transport passes on to
	// the minion (leaving it a little less, so that its timeout fault
	// arrives first) and honours itself. The answer must be proven to
	// come from to.Name (its certificate, or its signature), never
	// merely from whoever is at to.Addr. An error is a transport
	// failure, which the Client classifies (unreachable, timeout,
	// untrusted, ...); a fault the minion answered is in the answer's
	// body. The Client reads the answer's Body (within
	// Config.MaxResultBytes) and closes it; CallID and AuditHead may be
	// set along with an error.
	RoundTrip(ctx context.Context, to Minion, call Outbound) (Answer, error)
}

// Outbound is one call as a Transport carries it.
type Outbound struct {
	// Method is "module.method", for the transport's routing and logs;
	// Body says it too.
	Method string
	// Body is the XML-RPC methodCall.
	Body []byte
	// OnBehalfOf names the person the call is made for ("name@role",
	// Selection.OnBehalfOf); empty when the caller calls for itself. A
	// transport carries it to the minion (the direct one as the
	// gofunc.OnBehalfOfHeader header).
	OnBehalfOf string
}

// Answer is a minion's answer as a Transport returns it.
type Answer struct {
	// Body is the XML-RPC methodResponse: a result or a fault.
	Body io.ReadCloser
	// CallID is the call's id in the minion's audit log; "" when the
	// minion did not say.
	CallID string
	// AuditHead is where the minion's audit log stood after the call
	// ("seq:hash"); "" when it did not say.
	AuditHead string
}

// directTransport is the Client's own Transport: HTTPS to the minion,
// mutual TLS with the Client's identity.
type directTransport struct {
	tr   *http.Transport
	http *http.Client
}

// minionPort is the port in the URL; the dialer replaces the whole
// address, so it only keeps the URL well-formed.
var minionPort = strconv.Itoa(gofunc.DefaultMinionPort)

// RoundTrip posts the call to https://NAME:51234/RPC2; the dialer finds
// NAME's address and TLS checks that the certificate names NAME.
func (d *directTransport) RoundTrip(ctx context.Context, to Minion, call Outbound) (Answer, error) {
	var ans Answer
	url := "https://" + net.JoinHostPort(to.Name, minionPort) + "/RPC2"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(call.Body))
	if err != nil {
		return ans, err
	}
	req.Header.Set("Content-Type", "text/xml")
	if call.OnBehalfOf != "" {
		req.Header.Set(gofunc.OnBehalfOfHeader, call.OnBehalfOf)
	}
	if dl, ok := ctx.Deadline(); ok {
		// Leave the minion a little less than we wait, so its timeout
		// fault reaches us before our own deadline fires.
		budget := time.Until(dl) * 95 / 100
		if budget <= 0 {
			return ans, context.DeadlineExceeded
		}
		req.Header.Set(gofunc.TimeoutHeader, budget.String())
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return ans, err
	}
	ans.CallID = resp.Header.Get(gofunc.CallIDHeader)
	ans.AuditHead = resp.Header.Get(gofunc.AuditHeadHeader)
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return ans, fmt.Errorf("%w: HTTP status %s", ErrProtocol, resp.Status)
	}
	ans.Body = resp.Body
	return ans, nil
}

// closeIdle closes the connections not in use (at Close, and on a new
// CRL: they were checked against the old one).
func (d *directTransport) closeIdle() { d.tr.CloseIdleConnections() }

// newDirectTransport makes the HTTPS transport. It dials minions by
// name: the URL's host is the minion's name (so TLS checks the
// certificate names it), and dial looks up the address the name was
// listed with. TLS sessions are cached so that a connection reopened
// after going idle resumes instead of doing a full handshake.
func (c *Client) newDirectTransport() *directTransport {
	var tlsCfg *tls.Config
	if c.id != nil {
		tlsCfg = c.id.ClientTLSConfig("")
		tlsCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4096)
		tlsCfg.VerifyConnection = minionOnly(tlsCfg.VerifyConnection)
	}
	dialer := &net.Dialer{Timeout: c.cfg.DialTimeout}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			to, err := c.dialAddr(ctx, addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, to)
		},
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: c.cfg.DialTimeout,
		MaxIdleConns:        0, // no global cap: one idle connection per minion is the point
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     c.cfg.IdleTimeout,
		ForceAttemptHTTP2:   false,
		DisableCompression:  true,
		// 4 KiB buffers (net/http's default) per connection: at 1000
		// minions, larger ones cost more memory (16 KiB read buffers
		// were 40% of the heap) than they save in reads.
		WriteBufferSize: 4 << 10,
		ReadBufferSize:  4 << 10,
	}
	return &directTransport{tr: tr, http: &http.Client{Transport: tr}}
}

// minionOnly adds to a TLS connection check (chain, name, CRL) that
// the peer's certificate has the minion role: a certmaster's or an
// overlord's certificate for the same name is an impersonation.
func minionOnly(next func(tls.ConnectionState) error) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if next != nil {
			if err := next(cs); err != nil {
				return err
			}
		}
		if len(cs.PeerCertificates) == 0 {
			return nil // crypto/tls has already refused a server without one
		}
		leaf := cs.PeerCertificates[0]
		if role := identity.RoleOf(leaf); role != gofunc.RoleMinion {
			return &wrongRoleError{name: leaf.Subject.CommonName, role: string(role)}
		}
		return nil
	}
}

// dialAddr maps the URL's host:port (the minion's name) to the address
// to dial.
func (c *Client) dialAddr(ctx context.Context, addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, nil
	}
	c.mu.Lock()
	m, ok := c.addrs[strings.ToLower(host)]
	c.mu.Unlock()
	if !ok {
		m = Minion{Name: host}
	}
	if c.cfg.Resolver != nil {
		to, err := c.cfg.Resolver(ctx, m)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", m.Name, err)
		}
		return to, nil
	}
	return m.dialAddr(), nil
}
