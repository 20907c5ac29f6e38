package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/overlord"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// page is what every HTML page's template gets.
type page struct {
	User  User
	Title string
	// Nav is the navigation entry to mark as current.
	Nav  string
	Data any
}

// templateFuncs are the helpers the templates use.
var templateFuncs = template.FuncMap{
	"jobStates": func() []overlord.JobState { return jobStates },
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return humanize.Time(t)
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"bytes": func(n int64) string {
		if n <= 0 {
			return ""
		}
		return humanize.IBytes(uint64(n))
	},
	"dur": func(d time.Duration) string {
		if d <= 0 {
			return ""
		}
		return d.Round(time.Millisecond).String()
	},
	"may":  func(role gofunc.Role, need string) bool { return may(role, gofunc.Role(need)) },
	"join": strings.Join,
	// at is list[i], or "" past its end.
	"at": func(list []string, i int) string {
		if i < 0 || i >= len(list) {
			return ""
		}
		return list[i]
	},
}

// layoutFiles are parsed into every page.
var layoutFiles = []string{"templates/layout.html", "templates/parts.html"}

// parsePages parses each page template with the layout.
func parsePages() (map[string]*template.Template, error) {
	base, err := template.New("layout").Funcs(templateFuncs).ParseFS(templateFS, layoutFiles...)
	if err != nil {
		return nil, fmt.Errorf("web: templates: %w", err)
	}
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{"": base}
	for _, f := range files {
		if f == layoutFiles[0] || f == layoutFiles[1] {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, f)
		if err != nil {
			return nil, fmt.Errorf("web: templates: %w", err)
		}
		pages[strings.TrimSuffix(path.Base(f), ".html")] = t
	}
	return pages, nil
}

// render answers with the page's JSON twin when the client asked for
// JSON, else with the HTML page name shows data in.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, u User, status int, name, title string, data any) {
	w.Header().Set("Cache-Control", "no-store")
	if wantsJSON(r) {
		writeJSON(w, status, data)
		return
	}
	t := d.pages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", page{User: u, Title: title, Nav: name, Data: data}); err != nil {
		d.log.Error("template failed", "page", name, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fragment renders one named template of the parts (a table row) to a
// string, for a stream.
func (d *Dashboard) fragment(name string, data any) (string, error) {
	var buf bytes.Buffer
	if err := d.pages[""].ExecuteTemplate(&buf, name, data); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// errorBody is the JSON twin of an error page.
type errorBody struct {
	Error struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// fail answers with an error: JSON, or the error page.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, u User, status int, msg string) {
	var body errorBody
	body.Error.Status, body.Error.Message = status, msg
	if wantsJSON(r) {
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, status, body)
		return
	}
	d.render(w, r, u, status, "error", http.StatusText(status), body.Error)
}

// static serves the vendored scripts and the style sheet.
func (d *Dashboard) static(w http.ResponseWriter, r *http.Request, u User) {
	name := r.PathValue("file")
	data, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		d.notFound(w, r, u)
		return
	}
	switch path.Ext(name) {
	case ".js":
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case ".css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case ".svg":
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		d.notFound(w, r, u)
		return
	}
	w.Header().Set("Cache-Control", "private, max-age=3600")
	w.Write(data)
}
