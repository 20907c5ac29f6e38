package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/gofunc/gofunc"
)

// route is one entry of the route table: every request the dashboard
// answers goes through one, and each names the least role it needs.
// The mux is built from this table alone, so no handler can be served
// without a policy.
type route struct {
	method string // GET (which serves HEAD too) or POST; mutations are POST only
	path   string // a net/http mux path pattern
	need   gofunc.Role
	handle func(w http.ResponseWriter, r *http.Request, u User)
	// stream marks a server-sent-events route.
	stream bool
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routeTable lists every route.
func (d *Dashboard) routeTable() []route {
	viewer, operator, admin := gofunc.RoleViewer, gofunc.RoleOperator, gofunc.RoleAdmin
	return []route{
		{method: "GET", path: "/{$}", need: viewer, handle: d.attention},
		{method: "GET", path: "/fleet", need: viewer, handle: d.fleet},
		{method: "GET", path: "/fleet/{name}", need: viewer, handle: d.minion},
		{method: "GET", path: "/enrollment", need: viewer, handle: d.enrollment},
		{method: "GET", path: "/enrollment/requests/{name}/{action}", need: admin, handle: d.confirmRequest},
		{method: "POST", path: "/enrollment/requests/{name}/{action}", need: admin, handle: d.actOnRequest},
		{method: "GET", path: "/enrollment/certs/{serial}/revoke", need: admin, handle: d.confirmRevoke},
		{method: "POST", path: "/enrollment/certs/{serial}/revoke", need: admin, handle: d.revoke},
		{method: "GET", path: "/jobs", need: viewer, handle: d.jobs},
		{method: "GET", path: "/jobs/{id}", need: viewer, handle: d.job},
		{method: "GET", path: "/jobs/{id}/stream", need: viewer, handle: d.jobStream, stream: true},
		{method: "POST", path: "/jobs/{id}/rerun", need: operator, handle: d.rerun},
		{method: "GET", path: "/audit", need: viewer, handle: d.auditPage},
		{method: "GET", path: "/audit/export", need: viewer, handle: d.auditExport},
		{method: "GET", path: "/events", need: viewer, handle: d.eventsPage},
		{method: "GET", path: "/events/stream", need: viewer, handle: d.eventsStream, stream: true},
		{method: "GET", path: "/run", need: operator, handle: d.runForm},
		{method: "POST", path: "/run", need: operator, handle: d.runPost},
		{method: "GET", path: "/static/{file}", need: viewer, handle: d.static},
		// Anything else is a 404, still only for people the dashboard knows.
		{method: "GET", path: "/", need: viewer, handle: d.notFound},
	}
}

// buildHandler makes the mux from the route table, with cross-origin
// protection (a POST a browser sends from another site is refused, with
// or without a client certificate) and the security headers around it.
func (d *Dashboard) buildHandler() (http.Handler, error) {
	mux := http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range d.routes {
		if rank(rt.need) == 0 || rt.handle == nil || (rt.method != "GET" && rt.method != "POST") {
			return nil, fmt.Errorf("%w: route %s has no policy or handler", ErrConfig, rt.pattern())
		}
		if seen[rt.pattern()] {
			return nil, fmt.Errorf("%w: route %s listed twice", ErrConfig, rt.pattern())
		}
		seen[rt.pattern()] = true
		mux.Handle(rt.pattern(), d.guard(rt))
	}
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		d.fail(w, r, User{}, http.StatusForbidden, "cross-origin request refused")
	}))
	return secureHeaders(cop.Handler(mux)), nil
}

func (d *Dashboard) notFound(w http.ResponseWriter, r *http.Request, u User) {
	d.fail(w, r, u, http.StatusNotFound, "no such page: "+r.URL.Path)
}

// wantsJSON reports whether the client asked for the page's JSON twin.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}
