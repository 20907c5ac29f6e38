package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/identity"
)

// ArtifactsEnv names the directory where the browser test writes a PNG
// of each page; unset, they go to a temporary directory.
const ArtifactsEnv = "GOFUNC_WEB_ARTIFACTS"

// chromium returns the path of Debian's chromium. A missing browser
// fails the test under CI=true (.ci/run installs it) and skips it,
// loudly, elsewhere.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed: .ci/run installs it (apt-get install -y chromium)")
	}
	t.Skip("SKIPPED: chromium is not installed (apt-get install -y chromium); the browser test did not run")
	return ""
}

// proxy serves the dashboard to the browser on plain HTTP on loopback,
// forwarding each request over mutual TLS with id's certificate:
// chromedp cannot hand the browser a client certificate, so the test
// proxy holds it, and the dashboard sees the real TLS identity path.
func (e *env) proxy(t *testing.T, id *identity.Identity) string {
	target, err := url.Parse(e.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: e.tlsConfig(id)}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // the browser's origin, as it sent it
		},
		Transport:     tr,
		FlushInterval: -1, // server-sent events go through at once
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
	return srv.URL
}

// browser starts a headless chromium with a fresh profile.
func browser(t *testing.T, ctx context.Context) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	if err := chromedp.Do(bctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(func() {
		_ = chromedp.Cancel(bctx)
		cancel()
		cancelAlloc()
	})
	return bctx
}

// watchConsole collects what the browser reports as wrong with the
// pages: a Content-Security-Policy violation (an inline script or style
// the policy refused, which would be a feature silently not working),
// an uncaught JavaScript exception, any console error. The returned
// function lists them so far.
func watchConsole(t *testing.T, b context.Context) func() []string {
	var mu sync.Mutex
	var seen []string
	add := func(s string) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	err := chromedp.Listen(b, func(ev any) {
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError || strings.Contains(e.Entry.Text, "Content Security Policy") {
				add(fmt.Sprintf("%s %s: %s (%s)", e.Entry.Level, e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *runtime.EventExceptionThrown:
			add(fmt.Sprintf("exception: %s at %s:%d", e.ExceptionDetails.Text, e.ExceptionDetails.URL, e.ExceptionDetails.LineNumber))
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError {
				add(fmt.Sprintf("console.error with %d arguments", len(e.Args)))
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, enable := range []cdp.Command[cdp.Empty, cdp.Empty]{cdplog.Enable, runtime.Enable} {
		if _, err := chromedp.Call(b, enable, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
}

// shoot writes a PNG of the whole page.
func shoot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("screenshot %s is not a PNG", name)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func artifacts(t *testing.T) string {
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("page PNGs in %s", dir)
	return dir
}

// evalInt evaluates a JavaScript expression giving a number.
func evalInt(ctx context.Context, expr string) (int, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[int](expr))
}

// waitFor polls the page until cond holds, for at most d.
func waitFor(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
			t.Fatalf("waiting for %s: %v (last error %v)\n%s", what, ok, err, clipText(html, 3000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The dashboard in a real browser, over the real TLS identity path,
// against a fleet of 20 minions.
func TestBrowser(t *testing.T) {
	chromium(t)
	e := newEnv(t, envOptions{minions: 20, subnet: "127.0.20", events: true})
	dir := artifacts(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	b := browser(t, ctx)
	problems := watchConsole(t, b)
	defer func() {
		for _, p := range problems() {
			t.Errorf("the browser reported: %s", p)
		}
	}()
	viewer := e.proxy(t, e.users[gofunc.RoleViewer])
	operator := e.proxy(t, e.users[gofunc.RoleOperator])
	admin := e.proxy(t, e.users[gofunc.RoleAdmin])

	t.Run("fleet", func(t *testing.T) {
		if err := chromedp.Do(b, chromedp.Navigate(viewer+"/fleet")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, time.Minute, "20 minions", `document.querySelectorAll("table.fleet tr.minion").length == 20`)
		expiring, err := evalInt(b, `[...document.querySelectorAll("table.fleet tr.minion td.expiry")].filter(td => /expires \d{4}-\d\d-\d\dT/.test(td.textContent)).length`)
		if err != nil || expiring != 20 {
			t.Errorf("rows with an expiry: %d, %v; want 20", expiring, err)
		}
		up, _ := evalInt(b, `document.querySelectorAll("table.fleet tr.status-up").length`)
		if up != 20 {
			t.Errorf("%d minions up, want 20", up)
		}
		shoot(t, b, dir, "fleet")
		if err := chromedp.Do(b, chromedp.Navigate(viewer+"/fleet/m7.test")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, 30*time.Second, "the minion's modules", `document.querySelectorAll("table.modules tr").length > 5`)
		shoot(t, b, dir, "minion")
	})

	t.Run("enrollment", func(t *testing.T) {
		addr := e.certmaster()
		enrolled := make(chan error, 1)
		ectx, ecancel := context.WithTimeout(ctx, 2*time.Minute)
		defer ecancel()
		go func() {
			_, err := identity.Enroll(ectx, identity.EnrollRequest{Certmaster: addr, CAFingerprint: e.fleet.CA.Fingerprint(),
				Name: "new1.test", Dir: t.TempDir(), MinPoll: 100 * time.Millisecond, MaxPoll: 200 * time.Millisecond})
			enrolled <- err
		}()
		var fp string
		for fp == "" && ectx.Err() == nil {
			pending, err := e.fleet.CA.Pending() // what `certmaster list` prints
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pending {
				if p.Name == "new1.test" {
					fp = p.KeyFingerprint
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := chromedp.Do(b, chromedp.Navigate(admin+"/enrollment")); err != nil {
			t.Fatal(err)
		}
		shown, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`tr.request[data-name="new1.test"] code.fingerprint`)))
		if err != nil {
			t.Fatal(err)
		}
		if shown != fp {
			t.Errorf("Enrollment shows %q, certmaster list %q", shown, fp)
		}
		shoot(t, b, dir, "enrollment")
		if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`tr.request[data-name="new1.test"] a.button`)),
			chromedp.WaitVisible(chromedp.CSS(`#confirm`))); err != nil {
			t.Fatal(err)
		}
		if shown, err = chromedp.Run(b, chromedp.Text(chromedp.CSS(`.confirm code.fingerprint`))); err != nil {
			t.Fatal(err)
		}
		if shown != fp {
			t.Errorf("the confirmation repeats %q, want %q", shown, fp)
		}
		shoot(t, b, dir, "confirm")
		if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`p.notice`))); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-enrolled:
			if err != nil {
				t.Fatalf("the minion's enrollment: %v", err)
			}
		case <-ectx.Done():
			t.Fatal("the minion was never enrolled after Sign")
		}
		if c := e.certOf(t, "new1.test"); c == nil || c.KeyFingerprint != fp {
			t.Errorf("certificate of new1.test: %+v, want key %s", c, fp)
		}
	})

	t.Run("live job", func(t *testing.T) {
		for i, m := range e.fleet.Minions() {
			m.SetFault(fleettest.Fault{Delay: time.Duration(i+1) * 100 * time.Millisecond, Methods: []string{"test.ping"}})
		}
		defer func() {
			for _, m := range e.fleet.Minions() {
				m.SetFault(fleettest.Fault{})
			}
		}()
		// A loaded machine may show the page only after the job: then
		// the run proves nothing either way, and is made again.
		for try := 1; ; try++ {
			partial, err := liveJob(t, b, operator, dir)
			if err != nil {
				t.Fatal(err)
			}
			if partial {
				break
			}
			if try == 3 {
				t.Fatal("in 3 runs the page never showed a host's result before the job's end")
			}
			t.Logf("try %d: the page loaded after the job ended; again", try)
		}
	})

	t.Run("events", func(t *testing.T) {
		for _, m := range e.fleet.Minions() {
			emit(t, e, m.Name, "1.0.0")
		}
		if err := chromedp.Do(b, chromedp.Navigate(viewer+"/events?since=1h&type="+testEvent)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, time.Minute, "20 events", `document.querySelectorAll("table.events tr.event").length == 20`)
		emit(t, e, "m3.test", "2.0.0-live")
		waitFor(t, b, time.Minute, "the live event", `[...document.querySelectorAll("table.events tr.event")].some(tr => tr.textContent.includes("2.0.0-live"))`)
		shoot(t, b, dir, "events")
		// A minion's page has its events, and the calls made on it.
		if err := chromedp.Do(b, chromedp.Navigate(viewer+"/fleet/m3.test")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, 30*time.Second, "m3's events", `[...document.querySelectorAll("table.events tr.event")].some(tr => tr.textContent.includes("2.0.0-live"))`)
		waitFor(t, b, 30*time.Second, "m3's calls", `[...document.querySelectorAll("table.calls tr.call code")].some(c => c.textContent == "test.ping")`)
		shoot(t, b, dir, "minion")
		// The Jobs page: the run above, and the calls in the audit log.
		if err := chromedp.Do(b, chromedp.Navigate(operator+"/jobs")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, b, 30*time.Second, "the run's call", `[...document.querySelectorAll("table.calls tr.call")].some(tr => tr.textContent.includes("operator-user@operator"))`)
		shoot(t, b, dir, "jobs")
	})

	t.Run("audit", func(t *testing.T) {
		const k = 3
		data, err := os.ReadFile(e.auditPath)
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		if len(lines) < k+1 {
			t.Fatalf("the audit log has %d lines", len(lines))
		}
		edited := bytes.Replace(lines[k-1], []byte(`"caller":"funcweb"`), []byte(`"caller":"someone"`), 1)
		if bytes.Equal(edited, lines[k-1]) {
			t.Fatalf("line %d has no caller to edit: %s", k, lines[k-1])
		}
		lines[k-1] = edited
		if err := os.WriteFile(e.auditPath, bytes.Join(lines, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b, chromedp.Navigate(admin+"/audit")); err != nil {
			t.Fatal(err)
		}
		status, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`tr.chain[data-log="overlord"] .badge`)))
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("broken at seq %d", k); status != want {
			t.Errorf("chain status %q, want %q", status, want)
		}
		shoot(t, b, dir, "audit")
		if err := chromedp.Do(b, chromedp.Navigate(admin+"/")); err != nil {
			t.Fatal(err)
		}
		items, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(`ul.attention`)))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(items, fmt.Sprintf("broken at seq %d", k)) {
			t.Errorf("Attention does not list the broken chain:\n%s", items)
		}
		shoot(t, b, dir, "attention")
	})
}

// liveJob runs test.ping on every minion from the Run page (dry run,
// then run) and watches the job page: it reports whether rows turned
// green while the page still said the job was running.
func liveJob(t *testing.T, b context.Context, base, dir string) (partial bool, err error) {
	err = chromedp.Do(b, chromedp.Navigate(base+"/run?spec=*&module=test&method=ping"),
		chromedp.WaitVisible(chromedp.CSS(`form.args button`)))
	if err != nil {
		return false, err
	}
	shoot(t, b, dir, "run")
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`form.args button`)), chromedp.WaitVisible(chromedp.CSS(`#run`))); err != nil {
		return false, err
	}
	shoot(t, b, dir, "dryrun")
	if err := chromedp.Do(b, chromedp.Click(chromedp.CSS(`#run`)), chromedp.WaitVisible(chromedp.CSS(`table.hosts`))); err != nil {
		return false, err
	}
	start := time.Now()
	sawRunning := false
	for {
		type state struct {
			OK, Rows int
			Done     string
			Color    string
		}
		st, err := chromedp.Run(b, chromedp.Evaluate[state](`(() => {
			const ok = document.querySelectorAll("table.hosts tr.host.ok");
			const sum = document.querySelector(".summary");
			return {OK: ok.length, Rows: document.querySelectorAll("table.hosts tr.host").length,
				Done: sum ? sum.dataset.done : "",
				Color: ok.length ? getComputedStyle(ok[0].querySelector("td")).backgroundColor : ""};
		})()`))
		if err != nil {
			return false, err
		}
		if st.Done == "false" && st.OK > 0 && st.OK < st.Rows {
			if !sawRunning {
				shoot(t, b, dir, "job-running")
				if st.Color != "rgb(218, 251, 225)" {
					t.Errorf("an answered row's background is %q, want green", st.Color)
				}
			}
			sawRunning = true
		}
		if st.Done == "true" {
			// htmx settles a swapped row's attributes a moment after
			// the swap: the last row may still be turning green.
			waitFor(t, b, 10*time.Second, "20 green rows after the end",
				`document.querySelectorAll("table.hosts tr.host.ok").length == 20`)
			shoot(t, b, dir, "job")
			return sawRunning, nil
		}
		if time.Since(start) > 2*time.Minute {
			return false, errors.New("the job page never said the job was done")
		}
		time.Sleep(30 * time.Millisecond)
	}
}
