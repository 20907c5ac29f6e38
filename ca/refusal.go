package ca

import (
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/internal/clip"
)

// SourceKey is the unit the certmaster counts a requester by, for rate
// limits and connection caps: an IPv4 address, or the /64 network of an
// IPv6 address (one host is routinely given a whole /64, so counting
// single IPv6 addresses would give it 2^64 quotas). source is "host:port"
// or a bare address; anything else is its own key.
func SourceKey(source string) string {
	host, _, err := net.SplitHostPort(source)
	if err != nil {
		host = source
	}
	ip := net.ParseIP(host)
	switch {
	case ip == nil:
		return host
	case ip.To4() != nil:
		return ip.To4().String()
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}

// Bounds of the audit records of refused, unauthenticated requests.
const (
	// maxRefusedName is how much of a refused name a record keeps; the
	// rest is summarized by size and digest.
	maxRefusedName = 64
	// maxRefusalError bounds the error text of a refusal record.
	maxRefusalError = 256
	// refusalRate and refusalBurst: records per source (IPv4 address or
	// IPv6 /64); refusalGlobalRate and refusalGlobalBurst: records from
	// all sources together, so that many addresses cannot add up to a
	// flood either. What is over is counted into the next record.
	refusalRate        = rate.Limit(0.2)
	refusalBurst       = 5
	refusalGlobalRate  = rate.Limit(5)
	refusalGlobalBurst = 50
	// refusalKeys bounds the sources tracked; past it idle ones are
	// dropped, then everyone shares one entry.
	refusalKeys = 4096
)

// refusalLimiter decides which refusals of unauthenticated requests get
// an audit record. An attacker can send requests that are refused
// (malformed names, bad tokens) as fast as the per-source rate limit
// allows; each refusal used to write a record as large as the request,
// fsynced, which turned 60 KB requests into 700 KB records and a full
// disk. Records are now bounded in size and in number, and those left
// out are counted in the next one written.
type refusalLimiter struct {
	mu         sync.Mutex
	global     *rate.Limiter
	per        map[string]*refusalEntry
	suppressed int // left out for want of the global budget, not yet reported
}

type refusalEntry struct {
	lim        *rate.Limiter
	suppressed int
	seen       time.Time
}

// allow reports whether a refusal from source may be recorded now, and
// how many refusals were left out before it (from this source, and from
// everyone for want of the global budget).
func (l *refusalLimiter) allow(source string, now time.Time) (ok bool, before, others int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.per == nil {
		l.per = map[string]*refusalEntry{}
		l.global = rate.NewLimiter(refusalGlobalRate, refusalGlobalBurst)
	}
	key := SourceKey(source)
	e := l.per[key]
	if e == nil {
		if len(l.per) >= refusalKeys {
			for k, old := range l.per {
				if now.Sub(old.seen) > 10*time.Minute && old.suppressed == 0 {
					delete(l.per, k)
				}
			}
		}
		if len(l.per) >= refusalKeys {
			key = "*"
			e = l.per[key]
		}
		if e == nil {
			e = &refusalEntry{lim: rate.NewLimiter(refusalRate, refusalBurst)}
			l.per[key] = e
		}
	}
	e.seen = now
	if !e.lim.AllowN(now, 1) {
		e.suppressed++
		return false, 0, 0
	}
	if !l.global.AllowN(now, 1) {
		l.suppressed++
		return false, 0, 0
	}
	before, others = e.suppressed, l.suppressed
	e.suppressed, l.suppressed = 0, 0
	return true, before, others
}

// refusal returns the audit record of a refused, unauthenticated request
// from source, or false when it is to be left out (counted instead). The
// name and the error are clipped: they come from the requester.
func (a *Authority) refusal(source, name string, cause error) (event, bool) {
	ok, before, others := a.refusals.allow(source, a.cfg.Now())
	if !ok {
		return event{}, false
	}
	ev := event{Kind: KindRequest, Caller: clip.String(name, maxRefusedName), Remote: clip.String(source, maxRefusedName),
		Outcome: audit.OutcomeDenied, Error: clip.String(cause.Error(), maxRefusalError)}
	if before > 0 || others > 0 {
		ev.Details = map[string]string{}
		if before > 0 {
			ev.Details["suppressed_from_source"] = strconv.Itoa(before)
		}
		if others > 0 {
			ev.Details["suppressed_elsewhere"] = strconv.Itoa(others)
		}
	}
	return ev, true
}
