package ca

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gofunc/gofunc/identity"
)

// SDPath is where the certmaster serves Prometheus HTTP service
// discovery, and MetricsPath its own metrics (when Service.Metrics is
// set). Both answer GET over mutual TLS to certificates of a role that
// reads metrics (monitor, overlord).
const (
	SDPath      = "/sd/prometheus"
	MetricsPath = "/metrics"
)

// SDTargetGroup is one entry of the HTTP service discovery answer
// (Prometheus' http_sd format): one per enrolled minion, since each
// carries labels of its own.
type SDTargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// SD labels. Prometheus drops __meta_ labels after relabelling: map
// them onto target labels in the scrape config (README: prometheus.yml).
const (
	SDLabelName     = "__meta_gofunc_name"      // the minion's certificate name
	SDLabelSerial   = "__meta_gofunc_serial"    // its current certificate's serial (hex)
	SDLabelNotAfter = "__meta_gofunc_not_after" // when that certificate expires, RFC 3339
	SDLabelVouched  = "__meta_gofunc_vouched"   // "false" when the address it claimed was replaced
)

// SDTargets returns the service discovery answer for the minions that
// hold a valid certificate now: a revoked or expired minion is not in
// it. Each target is the address an overlord would dial
// (identity.MinionInfo.VouchedAddr), never a minion's unchecked claim.
func (a *Authority) SDTargets() ([]SDTargetGroup, error) { return a.sdTargets(context.Background()) }

// sdTargets is SDTargets; ctx bounds the wait for the lock.
func (a *Authority) sdTargets(ctx context.Context) ([]SDTargetGroup, error) {
	ms, err := a.minions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SDTargetGroup, 0, len(ms))
	for _, m := range ms {
		addr, vouched := m.VouchedAddr()
		out = append(out, SDTargetGroup{
			Targets: []string{addr},
			Labels: map[string]string{
				SDLabelName:     m.Name,
				SDLabelSerial:   m.Serial,
				SDLabelNotAfter: m.NotAfter.UTC().Format(time.RFC3339),
				SDLabelVouched:  boolText(vouched),
			},
		})
	}
	return out, nil
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// serveGet answers the service's GET paths (service discovery and
// metrics) and reports whether r was one of them.
func (s *Service) serveGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	var h http.HandlerFunc
	switch r.URL.Path {
	case SDPath:
		h = s.serveSD
	case MetricsPath:
		if s.Metrics == nil {
			return false
		}
		h = s.Metrics.ServeHTTP
	default:
		return false
	}
	if key, limits := s.limiterFor(r); !limits.allow(key, time.Now()) {
		http.Error(w, "too many requests; slow down", http.StatusTooManyRequests)
		return true
	}
	if status, msg := s.mayReadMetrics(r); status != http.StatusOK {
		s.logger().Warn("monitoring request refused", "path", r.URL.Path, "source", r.RemoteAddr, "reason", msg)
		http.Error(w, msg, status)
		return true
	}
	h(w, r)
	return true
}

// mayReadMetrics checks r's client certificate: verified, not revoked,
// of a role that reads metrics.
func (s *Service) mayReadMetrics(r *http.Request) (int, string) {
	_, p, err := s.verifiedPeer(r)
	switch {
	case errors.Is(err, identity.ErrUnverified):
		return http.StatusUnauthorized, "a client certificate of role monitor or overlord is required"
	case err != nil:
		return http.StatusForbidden, "certificate refused: " + err.Error()
	case !p.Role.ReadsMetrics():
		return http.StatusForbidden, string(p.Role) + " certificates may not read metrics (monitor and overlord may)"
	}
	return http.StatusOK, ""
}

func (s *Service) serveSD(w http.ResponseWriter, r *http.Request) {
	groups, err := s.Authority.SDTargets()
	if err != nil {
		s.logger().Error("service discovery", "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(groups)
}

// CertificateNotAfter is when the service's current server certificate
// expires (it changes when Reload renews it); zero when the service
// cannot start.
func (s *Service) CertificateNotAfter() time.Time {
	if s.init() != nil {
		return time.Time{}
	}
	return s.Identity.Leaf().NotAfter
}
