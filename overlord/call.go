package overlord

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kolo/xmlrpc"
	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// Selection is a set of target minions, resolved when used.
type Selection struct {
	c       *Client
	spec    string
	exclude []string
}

// Exclude removes the minions spec matches from the selection.
func (s *Selection) Exclude(spec string) *Selection {
	n := *s
	n.exclude = append(slices.Clone(s.exclude), spec)
	return &n
}

// Hosts resolves the selection to minion names, sorted.
func (s *Selection) Hosts(ctx context.Context) ([]string, error) {
	ms, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return sortedKeys(ms), nil
}

func (s *Selection) resolve(ctx context.Context) (map[string]Minion, error) {
	if err := s.c.usable(); err != nil {
		return nil, err
	}
	all, err := s.c.cfg.Minions.Minions(ctx)
	if err != nil {
		return nil, err
	}
	got, err := match(s.spec, all, s.c.cfg.Groups)
	if err != nil {
		return nil, err
	}
	for _, ex := range s.exclude {
		drop, err := match(ex, all, s.c.cfg.Groups)
		if err != nil {
			return nil, fmt.Errorf("exclude: %w", err)
		}
		for k := range drop {
			delete(got, k)
		}
	}
	if len(got) == 0 {
		what := fmt.Sprintf("%q", s.spec)
		if len(s.exclude) > 0 {
			what += fmt.Sprintf(" excluding %q", strings.Join(s.exclude, `", "`))
		}
		return nil, fmt.Errorf("%w %s among %d known minions", ErrNoMatch, what, len(all))
	}
	s.c.remember(got)
	return got, nil
}

// Result is one host's answer.
type Result struct {
	Host string
	// Value is the decoded result: int64, bool, string, float64,
	// []byte, time.Time, []any, map[string]any or nil.
	Value any
	// Err is nil on success, otherwise a *HostError.
	Err      error
	Duration time.Duration
}

// Decode converts Value into v (a pointer), by the same rules the minion
// uses for arguments: struct fields by their xmlrpc tag or snake_case
// name.
func (r Result) Decode(v any) error {
	if r.Err != nil {
		return r.Err
	}
	return decodeInto(r.Value, v)
}

// Results maps each targeted host to its result.
type Results map[string]Result

// Hosts returns the hosts, sorted.
func (rs Results) Hosts() []string { return sortedKeys(rs) }

// Failed returns the hosts whose call failed, sorted.
func (rs Results) Failed() []string {
	var out []string
	for h, r := range rs {
		if r.Err != nil {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out
}

// Call calls module.method(args...) on every selected minion, at most
// Forks at a time, each bounded by HostTimeout. It returns every host's
// result, and a non-nil *CallError when any host failed (errors.Is and
// errors.As see through it to each host's error). A bad spec or
// configuration returns a nil Results and that error.
func (s *Selection) Call(ctx context.Context, module, method string, args ...any) (Results, error) {
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	wire := module + "." + method
	body, err := encodeCall(wire, args)
	if err != nil {
		return nil, fmt.Errorf("overlord: %s: %w", wire, err)
	}
	hosts := sortedKeys(targets)
	results := make([]Result, len(hosts))
	var g errgroup.Group
	g.SetLimit(s.c.cfg.Forks)
	for i, h := range hosts {
		if ctx.Err() != nil {
			results[i] = Result{Host: h, Err: &HostError{Host: h, Op: "call", Err: ctx.Err()}}
			continue
		}
		g.Go(func() error {
			results[i] = s.c.callHost(ctx, h, wire, body)
			return nil
		})
	}
	_ = g.Wait()
	res := make(Results, len(results))
	for _, r := range results {
		res[r.Host] = r
	}
	s.c.auditCall(wire, args, res)
	return res, newCallError(wire, res)
}

// encodeCall builds the request body with kolo/xmlrpc, after turning the
// Go values kolo mis-encodes into forms it encodes right.
func encodeCall(method string, args []any) ([]byte, error) {
	norm := make([]any, len(args))
	for i, a := range args {
		v, err := normalizeArg(a)
		if err != nil {
			return nil, fmt.Errorf("argument %d: %w", i+1, err)
		}
		norm[i] = v
	}
	return xmlrpc.EncodeMethodCall(method, norm...)
}

func (c *Client) callHost(ctx context.Context, host, wire string, body []byte) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HostTimeout)
	defer cancel()
	v, err := c.roundTrip(ctx, host, body)
	r := Result{Host: host, Value: v, Duration: time.Since(start)}
	if err != nil {
		r.Value, r.Err = nil, &HostError{Host: host, Op: wire, Err: classify(ctx, err)}
	}
	return r
}

func (c *Client) roundTrip(ctx context.Context, host string, body []byte) (any, error) {
	url := "https://" + net.JoinHostPort(host, "51234") + "/RPC2"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	if dl, ok := ctx.Deadline(); ok {
		// Leave the minion a little less than we wait, so its timeout
		// fault reaches us before our own deadline fires.
		budget := time.Until(dl) * 95 / 100
		req.Header.Set(gofunc.TimeoutHeader, budget.String())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("%w: HTTP status %s", ErrProtocol, resp.Status)
	}
	return ixmlrpc.DecodeResponse(resp.Body, ixmlrpc.Limits{MaxBytes: c.cfg.MaxResultBytes})
}

// classify wraps transport errors in the overlord's sentinels.
func classify(ctx context.Context, err error) error {
	var f *gofunc.Fault
	var hostErr x509.HostnameError
	var unknownCA x509.UnknownAuthorityError
	var opErr *net.OpError
	switch {
	case errors.As(err, &f):
		return err
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: %v", ErrImpersonation, err)
	case errors.As(err, &unknownCA):
		return fmt.Errorf("%w: %v", ErrUntrusted, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	case errors.Is(err, context.Canceled):
		return err
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: %v", ErrUnreachable, err)
}

func (c *Client) auditCall(wire string, args []any, res Results) {
	if c.cfg.Audit == nil {
		return
	}
	rec := audit.Record{Kind: "overlord.call", Method: wire, Targets: res.Hosts(), Outcome: "ok",
		Caller: c.id.Name(), Role: string(c.id.Role())}
	rec.Args, rec.ArgsDigest = audit.SummarizeArgs(args, nil)
	rec.Details = make(map[string]string, len(res))
	for h, r := range res {
		if r.Err != nil {
			rec.Outcome = "failed"
			rec.Details[h] = r.Err.Error()
		} else {
			rec.Details[h] = "ok"
		}
	}
	if _, err := c.cfg.Audit.Append(rec); err != nil {
		c.cfg.Logger.Error("overlord audit write failed", "method", wire, "error", err)
	}
}
