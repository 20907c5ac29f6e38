// Package networktest is the "networktest" module: checks of the network
// as seen from the minion: is a TCP port open, does a host answer ping,
// what does a name resolve to, does a URL answer as expected.
//
// Host names are validated (RFC 1123 names or IP literals) before any
// tool sees them; ping runs the host's ping program with the host after
// "--", and is CodeUnavailable when no ping program is installed (nothing
// is ever installed).
package networktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/procrun"
)

// Defaults and bounds.
const (
	DefaultPortTimeout = 3 * time.Second
	MaxPortTimeout     = time.Minute
	DefaultHTTPTimeout = 10 * time.Second
	MaxHTTPTimeout     = 5 * time.Minute
	DefaultPingCount   = 3
	MaxPingCount       = 100
)

// Module is the networktest module. Its exported fields are its
// configuration; the zero Module uses the host's resolver, trust roots
// and ping. It is safe for concurrent use.
type Module struct {
	// PingPath is the ping program; empty means /usr/bin/ping, or
	// /bin/ping when only that exists.
	PingPath string
	// RootCAs verifies the certificates of https checks; nil means the
	// host's trust roots.
	RootCAs *x509.CertPool
	// Resolver answers dns_lookup and the lookups the checks make; nil
	// means net.DefaultResolver.
	Resolver *net.Resolver
}

// IsPortOpen reports whether a TCP connection to host:port succeeds
// within timeout seconds (Func's networktest.isportopen; default 3, at
// most 60). A refused or timed-out connection is false; a name that does
// not resolve is CodeNotFound.
func (m *Module) IsPortOpen(ctx context.Context, host string, port int, timeout float64) (bool, error) {
	if err := CheckHost(host); err != nil {
		return false, err
	}
	if err := checkPort(port); err != nil {
		return false, err
	}
	d, err := seconds("timeout", timeout, DefaultPortTimeout, MaxPortTimeout)
	if err != nil {
		return false, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	dialer := &net.Dialer{Resolver: m.Resolver}
	conn, err := dialer.DialContext(dialCtx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		if ctx.Err() != nil { // the call itself ended, not just the dial
			return false, procrun.ContextFault(ctx, "isportopen")
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return false, gofunc.Errorf(gofunc.CodeNotFound, "host %s: no such host", host)
		}
		return false, nil
	}
	conn.Close()
	return true, nil
}

// DNSLookup returns the addresses name resolves to, as the minion's
// resolver sees them (the hosts file included).
func (m *Module) DNSLookup(ctx context.Context, name string) ([]string, error) {
	if err := CheckHost(name); err != nil {
		return nil, err
	}
	addrs, err := m.resolver().LookupHost(ctx, name)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, gofunc.Errorf(gofunc.CodeNotFound, "%s: no such host", name)
		}
		if ctx.Err() != nil {
			return nil, procrun.ContextFault(ctx, "dns_lookup "+name)
		}
		return nil, gofunc.Errorf(gofunc.CodeModule, "lookup %s: %v", name, err)
	}
	return addrs, nil
}

// PingResult is what ping returns: PingStats and ping's output. It is flat
// (no embedded struct) so that every codec sees the same members.
type PingResult struct {
	Transmitted int     `xmlrpc:"transmitted"` // as in PingStats
	Received    int     `xmlrpc:"received"`    // as in PingStats
	PacketLoss  float64 `xmlrpc:"packet_loss"` // as in PingStats
	RTTMinMS    float64 `xmlrpc:"rtt_min_ms"`  // as in PingStats
	RTTAvgMS    float64 `xmlrpc:"rtt_avg_ms"`  // as in PingStats
	RTTMaxMS    float64 `xmlrpc:"rtt_max_ms"`  // as in PingStats
	// Output is ping's own output.
	Output string `xmlrpc:"output"`
}

// Ping sends count echo requests (default 3, at most 100) with the host's
// ping program and returns the statistics. A host that does not answer is
// a result with received 0, not an error.
func (m *Module) Ping(ctx context.Context, host string, count int) (PingResult, error) {
	argv, err := m.pingArgv(host, count)
	if err != nil {
		return PingResult{}, err
	}
	out, err := procrun.Run(ctx, procrun.Spec{
		Argv:      argv,
		Env:       append(os.Environ(), "LC_ALL=C"),
		MaxOutput: 256 << 10,
		Tool:      true, // no ping program: CodeUnavailable
	})
	if err != nil {
		return PingResult{}, err
	}
	res := PingResult{}
	res.Output, _ = procrun.SafeText(out.Stdout)
	stats, perr := ParsePing(out.Stdout)
	if perr != nil {
		code := gofunc.CodeModule
		if msg := out.Message(); strings.Contains(msg, "not known") || strings.Contains(msg, "No address") {
			code = gofunc.CodeNotFound
		}
		return res, out.Fault(code, "ping "+host)
	}
	res.Transmitted, res.Received, res.PacketLoss = stats.Transmitted, stats.Received, stats.PacketLoss
	res.RTTMinMS, res.RTTAvgMS, res.RTTMaxMS = stats.RTTMinMS, stats.RTTAvgMS, stats.RTTMaxMS
	return res, nil
}

// pingArgv builds ping's argv: numeric output, count packets, a deadline
// so a silent host cannot hold the call, and the host after "--".
func (m *Module) pingArgv(host string, count int) ([]string, error) {
	if err := CheckHost(host); err != nil {
		return nil, err
	}
	if count == 0 {
		count = DefaultPingCount
	}
	if count < 1 || count > MaxPingCount {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "count %d is out of range (1 to %d)", count, MaxPingCount)
	}
	deadline := count + 5
	return []string{m.pingPath(), "-n", "-c", strconv.Itoa(count), "-w", strconv.Itoa(deadline), "--", host}, nil
}

func (m *Module) pingPath() string {
	if m.PingPath != "" {
		return m.PingPath
	}
	return procrun.FindProgram("/usr/bin/ping", "/bin/ping")
}

// HTTPOptions are the optional knobs of http_check.
type HTTPOptions struct {
	// ExpectStatus is the status that makes the check ok; zero means any
	// 2xx or 3xx.
	ExpectStatus int `xmlrpc:"expect_status"`
	// Timeout bounds the whole check; zero means DefaultHTTPTimeout (10s),
	// at most 5 minutes. On the wire: int nanoseconds or "10s".
	Timeout time.Duration `xmlrpc:"timeout"`
	// Insecure skips the verification of the server's certificate (its
	// expiry is still reported).
	Insecure bool `xmlrpc:"insecure"`
}

// HTTPResult is what http_check returns.
type HTTPResult struct {
	// OK reports that the server answered with the expected status.
	OK bool `xmlrpc:"ok"`
	// Status is the HTTP status code, 0 when no answer came.
	Status int `xmlrpc:"status"`
	// DurationS is the time to the response headers, in seconds.
	DurationS float64 `xmlrpc:"duration_s"`
	// TLS reports an https answer; TLSExpiry is then the server
	// certificate's NotAfter (the zero time otherwise).
	TLS       bool      `xmlrpc:"tls"`
	TLSExpiry time.Time `xmlrpc:"tls_expiry"` // see TLS
	// Error says why no answer came (refused, timeout, bad certificate).
	Error string `xmlrpc:"error"`
}

// HTTPCheck sends GET url (http or https; redirects are not followed) and
// reports the status. A server that cannot be reached is a result with ok
// false and an error, not a fault.
func (m *Module) HTTPCheck(ctx context.Context, rawURL string, options HTTPOptions) (HTTPResult, error) {
	u, err := checkURL(rawURL)
	if err != nil {
		return HTTPResult{}, err
	}
	if options.ExpectStatus != 0 && (options.ExpectStatus < 100 || options.ExpectStatus > 599) {
		return HTTPResult{}, gofunc.Errorf(gofunc.CodeBadArgs, "expect_status %d is not an HTTP status", options.ExpectStatus)
	}
	timeout := options.Timeout
	switch {
	case timeout < 0 || timeout > MaxHTTPTimeout:
		return HTTPResult{}, gofunc.Errorf(gofunc.CodeBadArgs, "timeout %v is out of range (0 to %v)", timeout, MaxHTTPTimeout)
	case timeout == 0:
		timeout = DefaultHTTPTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	transport := &http.Transport{
		DialContext:       (&net.Dialer{Resolver: m.Resolver}).DialContext,
		TLSClientConfig:   &tls.Config{RootCAs: m.RootCAs, InsecureSkipVerify: options.Insecure},
		DisableKeepAlives: true,
		Proxy:             nil, // a check tests the path from this host, not a proxy's
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return HTTPResult{}, gofunc.Errorf(gofunc.CodeBadArgs, "url: %v", err)
	}
	req.Header.Set("User-Agent", "gofunc-networktest/1.0")
	start := time.Now()
	resp, err := client.Do(req)
	res := HTTPResult{DurationS: time.Since(start).Seconds()}
	if err != nil {
		if parent.Err() != nil {
			return HTTPResult{}, procrun.ContextFault(parent, "http_check")
		}
		res.Error = err.Error()
		return res, nil
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.Status = resp.StatusCode
	if options.ExpectStatus != 0 {
		res.OK = resp.StatusCode == options.ExpectStatus
	} else {
		res.OK = resp.StatusCode >= 200 && resp.StatusCode < 400
	}
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		res.TLS = true
		res.TLSExpiry = resp.TLS.PeerCertificates[0].NotAfter.UTC()
	}
	return res, nil
}

func (m *Module) resolver() *net.Resolver {
	if m.Resolver != nil {
		return m.Resolver
	}
	return net.DefaultResolver
}

// CheckHost validates a host: an IP address, or a DNS name of letters,
// digits and hyphens (RFC 1123), labels of 1 to 63 characters that do not
// start or end with a hyphen, at most 253 characters, one trailing dot
// allowed. Anything else is CodeBadArgs.
func CheckHost(host string) error {
	if net.ParseIP(host) != nil {
		return nil
	}
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return gofunc.Errorf(gofunc.CodeBadArgs, "host %q is not a valid host name or address", host)
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return gofunc.Errorf(gofunc.CodeBadArgs, "host %q is not a valid host name or address", host)
		}
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func checkPort(port int) error {
	if port < 1 || port > 65535 {
		return gofunc.Errorf(gofunc.CodeBadArgs, "port %d is out of range (1 to 65535)", port)
	}
	return nil
}

// checkURL accepts absolute http and https URLs with a valid host.
func checkURL(raw string) (*url.URL, error) {
	if len(raw) > 2048 {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "url is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "url %q: %v", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, gofunc.Errorf(gofunc.CodeBadArgs, "url %q: scheme must be http or https", raw)
	}
	if err := CheckHost(u.Hostname()); err != nil {
		return nil, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "url %q: bad port", raw)
		}
		if err := checkPort(n); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// seconds converts a timeout in seconds (Func's unit) to a duration.
func seconds(name string, s float64, def, limit time.Duration) (time.Duration, error) {
	if s == 0 {
		return def, nil
	}
	if !(s > 0) || s > limit.Seconds() { // !(s > 0) also catches NaN
		return 0, gofunc.Errorf(gofunc.CodeBadArgs, "%s %v is out of range (0 to %v seconds)", name, s, limit.Seconds())
	}
	return time.Duration(s * float64(time.Second)), nil
}

// Doc describes the module for introspection.
func (m *Module) Doc() gofunc.ModuleDoc {
	host := gofunc.ArgDoc{Name: "host", Type: "string", Description: "host name or IP address"}
	return gofunc.ModuleDoc{
		Description: "Network checks from the minion: TCP port, ping, DNS, HTTP.",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"IsPortOpen": {
				Wire:        "isportopen",
				Description: "Whether a TCP connection to host:port succeeds; returns boolean",
				Args: []gofunc.ArgDoc{
					host,
					{Name: "port", Type: "int", Description: "TCP port, 1 to 65535"},
					{Name: "timeout", Type: "double", Description: "seconds, at most 60", Optional: true, Default: 3.0},
				},
			},
			"Ping": {
				Description: "Ping a host with the system's ping: {transmitted, received, packet_loss, rtt_min_ms, rtt_avg_ms, rtt_max_ms, output}",
				Args: []gofunc.ArgDoc{
					host,
					{Name: "count", Type: "int", Description: "echo requests, 1 to 100", Optional: true, Default: DefaultPingCount},
				},
			},
			"DNSLookup": {
				Wire:        "dns_lookup",
				Description: "Addresses a name resolves to: [string]",
				Args:        []gofunc.ArgDoc{{Name: "name", Type: "string", Description: "host name"}},
			},
			"HTTPCheck": {
				Wire:        "http_check",
				Description: "GET a URL (redirects not followed): {ok, status, duration_s, tls, tls_expiry, error}",
				Args: []gofunc.ArgDoc{
					{Name: "url", Type: "string", Description: "http or https URL"},
					{Name: "options", Type: "struct", Optional: true,
						Description: "expect_status (default: any 2xx or 3xx), timeout (duration, default 10s), insecure (skip certificate verification)"},
				},
			},
		},
	}
}
