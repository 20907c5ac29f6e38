package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/ca"
)

// enrollmentData is the Enrollment page.
type enrollmentData struct {
	// Configured is false when the dashboard has no CA: the lists are
	// empty.
	Configured bool             `json:"configured"`
	Notice     string           `json:"notice,omitempty"`
	Pending    []ca.RequestInfo `json:"pending"`
	Rejected   []ca.RequestInfo `json:"rejected"`
	// All is true when revoked and expired certificates are listed too.
	All          bool       `json:"all"`
	Certificates []certView `json:"certificates"`
}

// certView is a certificate as the pages show it.
type certView struct {
	ca.CertInfo
	// Expired is true past NotAfter; ExpiresSoon within the expiry
	// warning (14 days by default).
	Expired     bool `json:"expired"`
	ExpiresSoon bool `json:"expires_soon"`
}

func (d *Dashboard) certView(c ca.CertInfo, now time.Time) certView {
	return certView{CertInfo: c, Expired: c.Expired(now),
		ExpiresSoon: !c.Expired(now) && c.NotAfter.Sub(now) < d.cfg.ExpiryWarning}
}

func (d *Dashboard) enrollment(w http.ResponseWriter, r *http.Request, u User) {
	data := enrollmentData{Configured: d.cfg.CA != nil, Notice: r.URL.Query().Get("done"),
		All: r.URL.Query().Get("all") != "", Pending: []ca.RequestInfo{}, Rejected: []ca.RequestInfo{},
		Certificates: []certView{}}
	if d.cfg.CA != nil {
		reqs, err := d.cfg.CA.Requests(r.Context())
		if err != nil {
			d.failErr(w, r, u, "CA requests", err)
			return
		}
		for _, q := range reqs {
			if q.Status == ca.StatusPending {
				data.Pending = append(data.Pending, q)
			} else {
				data.Rejected = append(data.Rejected, q)
			}
		}
		certs, err := d.cfg.CA.Certificates(r.Context())
		if err != nil {
			d.failErr(w, r, u, "CA certificates", err)
			return
		}
		now := time.Now()
		for _, c := range slices.Backward(certs) { // newest first
			if data.All || !c.Revoked && !c.Expired(now) {
				data.Certificates = append(data.Certificates, d.certView(c, now))
			}
		}
	}
	d.render(w, r, u, http.StatusOK, "enrollment", "Enrollment", data)
}

// confirmData is the confirmation page of an admin action: it repeats
// what the action is taken on (the key fingerprint, the serial), and
// posts it back so that only what was shown is acted on.
type confirmData struct {
	Action  string           `json:"action"` // sign, reject, revoke
	Request *ca.RequestInfo  `json:"request,omitempty"`
	Cert    *certView        `json:"certificate,omitempty"`
	Reasons []string         `json:"reasons,omitempty"`
	Others  []ca.RequestInfo `json:"-"`
}

// pendingRequest finds name's pending request.
func (d *Dashboard) pendingRequest(r *http.Request, name string) (*ca.RequestInfo, error) {
	if d.cfg.CA == nil {
		return nil, errNoCA
	}
	reqs, err := d.cfg.CA.Requests(r.Context())
	if err != nil {
		return nil, err
	}
	for _, q := range reqs {
		if q.Status == ca.StatusPending && strings.EqualFold(q.Name, name) {
			return &q, nil
		}
	}
	return nil, ca.ErrNotFound
}

var errNoCA = &gofunc.Fault{Code: gofunc.CodeUnavailable, Message: "this dashboard has no certmaster configured"}

func validAction(a string) bool { return a == "sign" || a == "reject" }

func (d *Dashboard) confirmRequest(w http.ResponseWriter, r *http.Request, u User) {
	action := r.PathValue("action")
	if !validAction(action) {
		d.notFound(w, r, u)
		return
	}
	q, err := d.pendingRequest(r, r.PathValue("name"))
	if err != nil {
		d.failErr(w, r, u, "pending request", err)
		return
	}
	d.render(w, r, u, http.StatusOK, "confirm", strings.ToUpper(action[:1])+action[1:]+" "+q.Name,
		confirmData{Action: action, Request: q})
}

func (d *Dashboard) actor(u User) ca.Actor {
	return ca.Actor{Name: u.Name, Role: u.Role, Serial: u.Serial, Via: d.cfg.Name}
}

func (d *Dashboard) actOnRequest(w http.ResponseWriter, r *http.Request, u User) {
	action, name := r.PathValue("action"), r.PathValue("name")
	if !validAction(action) {
		d.notFound(w, r, u)
		return
	}
	if d.cfg.CA == nil {
		d.failErr(w, r, u, action, errNoCA)
		return
	}
	fp := r.PostForm.Get("fingerprint")
	var result any
	var notice string
	var err error
	if action == "sign" {
		var c ca.CertInfo
		c, err = d.cfg.CA.Sign(r.Context(), name, fp, d.actor(u))
		result, notice = c, "signed "+c.Name+" (serial "+c.Serial+", expires "+c.NotAfter.UTC().Format(time.DateOnly)+")"
	} else {
		var q ca.RequestInfo
		q, err = d.cfg.CA.Reject(r.Context(), name, fp, d.actor(u))
		result, notice = q, "rejected the request of "+q.Name
	}
	if err != nil {
		d.failErr(w, r, u, action, err)
		return
	}
	d.log.Info("enrollment request "+action+"ed", "name", name, "key_fingerprint", fp, "by", u.OnBehalfOf())
	d.done(w, r, result, "/enrollment?done="+url.QueryEscape(notice))
}

func (d *Dashboard) confirmRevoke(w http.ResponseWriter, r *http.Request, u User) {
	c, err := d.certificate(r, r.PathValue("serial"))
	if err != nil {
		d.failErr(w, r, u, "certificate", err)
		return
	}
	v := d.certView(*c, time.Now())
	d.render(w, r, u, http.StatusOK, "confirm", "Revoke "+c.Name, confirmData{Action: "revoke", Cert: &v, Reasons: reasons})
}

// reasons are the revocation reasons the confirmation offers.
var reasons = []string{"unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "privilegeWithdrawn"}

func (d *Dashboard) certificate(r *http.Request, serial string) (*ca.CertInfo, error) {
	if d.cfg.CA == nil {
		return nil, errNoCA
	}
	certs, err := d.cfg.CA.Certificates(r.Context())
	if err != nil {
		return nil, err
	}
	for _, c := range certs {
		if strings.EqualFold(c.Serial, serial) {
			return &c, nil
		}
	}
	return nil, ca.ErrNotFound
}

func (d *Dashboard) revoke(w http.ResponseWriter, r *http.Request, u User) {
	if d.cfg.CA == nil {
		d.failErr(w, r, u, "revoke", errNoCA)
		return
	}
	reason, err := ca.ParseReason(r.PostForm.Get("reason"))
	if err != nil {
		d.fail(w, r, u, http.StatusBadRequest, err.Error())
		return
	}
	serial := r.PathValue("serial")
	revoked, err := d.cfg.CA.Revoke(r.Context(), serial, reason, d.actor(u))
	if err != nil {
		d.failErr(w, r, u, "revoke", err)
		return
	}
	d.log.Info("certificate revoked", "serial", serial, "reason", reason, "by", u.OnBehalfOf())
	names := make([]string, len(revoked))
	for i, c := range revoked {
		names[i] = c.Name + " (" + c.Serial + ")"
	}
	d.done(w, r, revoked, "/enrollment?done="+url.QueryEscape("revoked "+strings.Join(names, ", ")))
}

// done answers a successful POST: its result for a JSON client, a
// redirect (303, so the browser GETs the page) for a browser.
func (d *Dashboard) done(w http.ResponseWriter, r *http.Request, result any, next string) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, result)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// failErr answers with err, its status from its fault code; errors that
// are not faults are logged and shown as internal errors.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, u User, what string, err error) {
	var f *gofunc.Fault
	if !errors.As(err, &f) {
		d.log.Error("request failed", "path", r.URL.Path, "what", what, "error", err)
		d.fail(w, r, u, http.StatusInternalServerError, what+": "+err.Error())
		return
	}
	status := http.StatusInternalServerError
	switch f.Code {
	case gofunc.CodeNotFound, gofunc.CodeNoSuchMethod:
		status = http.StatusNotFound
	case gofunc.CodeBadArgs:
		status = http.StatusBadRequest
	case gofunc.CodeConflict:
		status = http.StatusConflict
	case gofunc.CodeDenied:
		status = http.StatusForbidden
	case gofunc.CodeUnavailable, gofunc.CodeBusy:
		status = http.StatusServiceUnavailable
	}
	msg := strings.Replace(err.Error(), f.Error(), f.Message, 1)
	d.fail(w, r, u, status, strings.ReplaceAll(msg, "ca: ", ""))
}
