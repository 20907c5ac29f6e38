package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// argInfo is one argument as get_method_args describes it.
type argInfo struct {
	Name        string `xmlrpc:"name" json:"name"`
	Type        string `xmlrpc:"type" json:"type"`
	Description string `xmlrpc:"description" json:"description"`
	Optional    bool   `xmlrpc:"optional" json:"optional"`
	Default     any    `xmlrpc:"default" json:"default,omitempty"`
	Secret      bool   `xmlrpc:"secret" json:"secret,omitempty"`
}

// methodInfo is one method as get_method_args describes it.
type methodInfo struct {
	Description string    `xmlrpc:"description" json:"description"`
	Dangerous   bool      `xmlrpc:"dangerous" json:"dangerous"`
	Args        []argInfo `xmlrpc:"args" json:"args"`
}

// Input is the HTML input type of the argument.
func (a argInfo) Input() string {
	switch {
	case a.Secret:
		return "password"
	case a.Type == "int" || a.Type == "double":
		return "number"
	case a.Type == "boolean":
		return "checkbox"
	case a.Type == "string":
		return "text"
	}
	return "textarea" // JSON
}

// runData is the Run page: the choice of targets and method, the form
// made from get_method_args, and after a dry run what would be called.
type runData struct {
	Spec    string      `json:"spec"`
	Module  string      `json:"module,omitempty"`
	Method  string      `json:"method,omitempty"`
	Modules []string    `json:"modules,omitempty"`
	Methods []string    `json:"methods,omitempty"`
	Doc     *methodInfo `json:"doc,omitempty"`
	Values  []string    `json:"-"`
	Error   string      `json:"error,omitempty"`
	// Dry is set by a dry run.
	Dry *dryRun `json:"dry_run,omitempty"`
}

// dryRun is what a run would do; Token runs exactly that.
type dryRun struct {
	Token   string   `json:"token"`
	Hosts   []string `json:"hosts"`
	Allowed bool     `json:"allowed"`
	Reason  string   `json:"reason,omitempty"`
	Shown   []string `json:"args"` // the arguments, secrets masked
	CLI     string   `json:"cli"`
}

// introspect calls module.method on the first of the selection's hosts
// that answers (at most three are tried), for the Run form.
func (d *Dashboard) introspect(ctx context.Context, u User, spec, module, method string, into any) error {
	hosts, err := d.cfg.Overlord.Targets(spec).Hosts(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.cfg.StatusTimeout)
	defer cancel()
	var last error
	for _, h := range hosts[:min(3, len(hosts))] {
		res, err := d.cfg.Overlord.Targets(h).OnBehalfOf(u.OnBehalfOf()).Call(ctx, module, method)
		if r, ok := res[h]; ok {
			if err = r.Decode(into); err == nil {
				return nil
			}
		}
		last = err
	}
	return last
}

func (d *Dashboard) runForm(w http.ResponseWriter, r *http.Request, u User) {
	q := r.URL.Query()
	data := runData{Spec: strings.TrimSpace(q.Get("spec")), Module: q.Get("module"), Method: q.Get("method")}
	d.fillRunForm(r.Context(), u, &data)
	status := http.StatusOK
	if data.Error != "" {
		status = http.StatusBadRequest
	}
	d.render(w, r, u, status, "run", "Run", data)
}

// fillRunForm fetches what the next step of the form needs: the
// modules, a module's methods, a method's arguments.
func (d *Dashboard) fillRunForm(ctx context.Context, u User, data *runData) {
	if data.Spec == "" {
		return
	}
	if err := d.introspect(ctx, u, data.Spec, "system", "list_modules", &data.Modules); err != nil {
		data.Error = err.Error()
		return
	}
	if data.Module == "" {
		return
	}
	if !slices.Contains(data.Modules, data.Module) {
		data.Error = "no module " + data.Module + " on " + data.Spec
		return
	}
	if err := d.introspect(ctx, u, data.Spec, data.Module, "list_methods", &data.Methods); err != nil {
		data.Error = err.Error()
		return
	}
	if data.Method == "" {
		return
	}
	var docs map[string]methodInfo
	if err := d.introspect(ctx, u, data.Spec, data.Module, "get_method_args", &docs); err != nil {
		data.Error = err.Error()
		return
	}
	doc, ok := docs[data.Method]
	if !ok {
		data.Error = "no method " + data.Module + "." + data.Method
		return
	}
	data.Doc = &doc
}

// pendingRuns keeps dry runs until they are run or expire, so that a run
// is exactly what its dry run showed, and secrets are not sent back to
// the browser to be posted again.
type pendingRuns struct {
	mu sync.Mutex
	m  map[string]pendingRun
}

type pendingRun struct {
	user           string // serial of the user who made the dry run
	spec           string
	module, method string
	args           []any
	at             time.Time
}

const (
	dryRunTTL     = 10 * time.Minute
	maxPendingRun = 1000
)

func (p *pendingRuns) put(run pendingRun) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]pendingRun{}
	}
	for k, v := range p.m {
		if time.Since(v.at) > dryRunTTL || len(p.m) >= maxPendingRun {
			delete(p.m, k)
		}
	}
	p.m[token] = run
	return token
}

// take removes and returns the dry run of token, if it is user's and
// fresh.
func (p *pendingRuns) take(token, user string) (pendingRun, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	run, ok := p.m[token]
	if !ok || run.user != user || time.Since(run.at) > dryRunTTL {
		return pendingRun{}, false
	}
	delete(p.m, token)
	return run, true
}

// runPost makes a dry run (action=dry-run: who would be called, with
// what, whether the user may) or runs one (action=run with the dry
// run's token) as a job for the user.
func (d *Dashboard) runPost(w http.ResponseWriter, r *http.Request, u User) {
	f := r.PostForm
	if f.Get("action") == "run" {
		run, ok := d.runs.take(f.Get("token"), u.Serial)
		if !ok {
			d.fail(w, r, u, http.StatusConflict, "no such dry run (they last 10 minutes and run once): make the dry run again")
			return
		}
		job, err := d.startJob(r, u, run.spec, run.module, run.method, run.args)
		if err != nil {
			d.failErr(w, r, u, "run", err)
			return
		}
		d.done(w, r, viewJob(job), "/jobs/"+job.ID)
		return
	}
	data := runData{Spec: strings.TrimSpace(f.Get("spec")), Module: f.Get("module"), Method: f.Get("method")}
	d.fillRunForm(r.Context(), u, &data)
	if data.Error == "" && data.Doc == nil {
		data.Error = "choose the targets, a module and a method"
	}
	if data.Error != "" {
		d.render(w, r, u, http.StatusBadRequest, "run", "Run", data)
		return
	}
	args, shown, values, err := formArgs(data.Doc.Args, f)
	data.Values = values
	if err != nil {
		data.Error = err.Error()
		d.render(w, r, u, http.StatusBadRequest, "run", "Run", data)
		return
	}
	hosts, err := d.cfg.Overlord.Targets(data.Spec).Hosts(r.Context())
	if err != nil {
		data.Error = err.Error()
		d.render(w, r, u, http.StatusBadRequest, "run", "Run", data)
		return
	}
	wire := data.Module + "." + data.Method
	dry := &dryRun{Hosts: hosts, Allowed: d.sees(u, wire), Shown: shown,
		CLI: d.cliLine(data.Spec, wire, shownArgs(args, data.Doc.Args))}
	if !dry.Allowed {
		dry.Reason = fmt.Sprintf("the dashboard's ACL does not let %s call %s", u.OnBehalfOf(), wire)
	} else {
		dry.Token = d.runs.put(pendingRun{user: u.Serial, spec: data.Spec, module: data.Module, method: data.Method,
			args: args, at: time.Now()})
	}
	data.Dry = dry
	d.render(w, r, u, http.StatusOK, "run", "Run: dry run", data)
}

// shownArgs are args with secrets replaced, for the command line shown.
func shownArgs(args []any, docs []argInfo) []any {
	out := slices.Clone(args)
	for i := range out {
		if i < len(docs) && docs[i].Secret {
			out[i] = "[redacted]"
		}
	}
	return out
}

// formArgs reads the arguments from the form fields arg0, arg1, ...
// by their documented types. Empty optional arguments at the end are
// left out (the method's default applies).
func formArgs(docs []argInfo, f map[string][]string) (args []any, shown, values []string, err error) {
	get := func(i int) (string, bool) {
		v, ok := f["arg"+strconv.Itoa(i)]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	last := -1
	for i, a := range docs {
		v, given := get(i)
		values = append(values, v)
		if given && (v != "" || a.Type == "string" && !a.Optional) || a.Type == "boolean" && given || !a.Optional {
			last = i
		}
	}
	for i := 0; i <= last; i++ {
		a := docs[i]
		v, _ := get(i)
		val, err := convertArg(a, v)
		if err != nil {
			return nil, nil, values, fmt.Errorf("argument %d (%s): %w", i+1, a.Name, err)
		}
		args = append(args, val)
		if a.Secret {
			shown = append(shown, "[redacted]")
		} else {
			shown = append(shown, v)
		}
	}
	return args, shown, values, nil
}

// convertArg turns a form field into a value of the argument's type.
func convertArg(a argInfo, v string) (any, error) {
	switch a.Type {
	case "string":
		return v, nil
	case "boolean":
		return v == "on" || v == "true" || v == "1", nil
	case "int":
		return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	case "double":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
			return nil, errors.New("want a finite number") // XML-RPC has no NaN or infinity
		}
		return f, err
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil || dec.More() {
		if a.Type == "any" {
			return v, nil // plain text
		}
		return nil, errors.New("want JSON (a list, an object, a number, true/false or a quoted string)")
	}
	return fromJSON(x), nil
}

// fromJSON turns decoded JSON into call values: integral numbers as
// int64, others float64.
func fromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = fromJSON(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = fromJSON(x[k])
		}
	}
	return v
}
