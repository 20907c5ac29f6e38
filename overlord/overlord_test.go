package overlord_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestCallEveryHost(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 3})
	res, err := f.Overlord().Targets("*").Call(t.Context(), "test", "add", 2, 3)
	if err != nil {
		t.Fatalf("Call: %v", err)
	}
	if got := strings.Join(res.Hosts(), ","); got != "m1.test,m2.test,m3.test" {
		t.Fatalf("hosts = %s", got)
	}
	for h, r := range res {
		if r.Value != int64(5) {
			t.Errorf("%s: %#v, want 5", h, r.Value)
		}
	}
}

func TestTargetGrammar(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 4, Name: func(i int) string {
		return []string{"web1.test", "web2.test", "db1.test", "cache1.test"}[i-1]
	}})
	c := f.Client(overlord.WithGroups(map[string]string{"front": "web*;cache*", "all": "@front;db*"}))
	cases := []struct {
		spec    string
		exclude string
		want    string
	}{
		{"*", "", "cache1.test,db1.test,web1.test,web2.test"},
		{"WEB*", "", "web1.test,web2.test"},
		{"web1.test;db*", "", "db1.test,web1.test"},
		{"web[!1]*", "", "web2.test"},
		{"@front", "", "cache1.test,web1.test,web2.test"},
		{"@front:web*", "", "web1.test,web2.test"},
		{"@all", "web2*", "cache1.test,db1.test,web1.test"},
	}
	for _, tc := range cases {
		sel := c.Targets(tc.spec)
		if tc.exclude != "" {
			sel = sel.Exclude(tc.exclude)
		}
		hosts, err := sel.Hosts(t.Context())
		if err != nil {
			t.Errorf("%q: %v", tc.spec, err)
			continue
		}
		if got := strings.Join(hosts, ","); got != tc.want {
			t.Errorf("%q excluding %q = %s, want %s", tc.spec, tc.exclude, got, tc.want)
		}
	}
	for spec, want := range map[string]error{
		"nothing*": overlord.ErrNoMatch,
		"@nogroup": overlord.ErrUnknownGroup,
		"web 1":    overlord.ErrBadSpec,
		"":         overlord.ErrBadSpec,
		"web[1":    overlord.ErrBadSpec,
	} {
		_, err := c.Targets(spec).Call(t.Context(), "test", "ping")
		if !errors.Is(err, want) {
			t.Errorf("spec %q: %v, want %v", spec, err, want)
		}
	}
}

func TestBadOptionSurfacesInCall(t *testing.T) {
	t.Parallel()
	c := overlord.New(overlord.WithForks(0))
	defer c.Close()
	if c.Err() == nil {
		t.Fatal("Err() = nil after WithForks(0)")
	}
	if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); err == nil || !strings.Contains(err.Error(), "forks") {
		t.Fatalf("Call = %v, want the option's error", err)
	}
}

// One host down, one slow, one failing, one impersonating: each gets its
// own typed error and the healthy host's result is complete.
func TestPerHostFailuresAreTyped(t *testing.T) {
	t.Parallel()
	// The host timeout leaves the healthy hosts seconds to answer on a
	// loaded machine; the slow host would outlast it tenfold.
	f := fleettest.Start(t, fleettest.Config{Minions: 5, HostTimeout: 15 * time.Second})
	ms := f.Minions()
	ms[1].Down()
	ms[2].SetFault(fleettest.Fault{Delay: 150 * time.Second})
	ms[3].SetFault(fleettest.Fault{Err: gofunc.Errorf(gofunc.CodeDenied, "not today")})
	if err := ms[4].Impersonate("evil.test"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := f.Overlord().Targets("*").Call(t.Context(), "test", "ping")
	if elapsed := time.Since(start); elapsed > 100*time.Second {
		t.Errorf("Call took %v: the slow host held up the rest", elapsed)
	}
	var ce *overlord.CallError
	if !errors.As(err, &ce) || ce.Failed != 4 || ce.Total != 5 {
		t.Fatalf("Call error = %v, want a CallError with 4 of 5 failed", err)
	}
	if r := res["m1.test"]; r.Err != nil || r.Value != true {
		t.Errorf("healthy host: %+v", r)
	}
	want := map[string]error{
		"m2.test": overlord.ErrUnreachable,
		"m3.test": overlord.ErrTimeout,
		"m4.test": gofunc.ErrDenied,
		"m5.test": overlord.ErrImpersonation,
	}
	for h, w := range want {
		var he *overlord.HostError
		if !errors.As(res[h].Err, &he) || he.Host != h {
			t.Errorf("%s: %v is not a *HostError for the host", h, res[h].Err)
		}
		if !errors.Is(res[h].Err, w) {
			t.Errorf("%s: %v, want %v", h, res[h].Err, w)
		}
	}
	if !errors.Is(err, gofunc.ErrDenied) {
		t.Errorf("errors.Is(callErr, ErrDenied) = false; CallError must unwrap to host errors")
	}
}

func TestConnectionsAreReused(t *testing.T) {
	t.Parallel()
	f := fleettest.Start(t, fleettest.Config{Minions: 2})
	c := f.Overlord()
	for i := range 20 {
		if _, err := c.Targets("*").Call(t.Context(), "test", "ping"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// The minion sees one remote port per connection in its audit log.
	for _, m := range f.Minions() {
		ports := remotePorts(t, m.AuditPath)
		if len(ports) > 2 {
			t.Errorf("%s saw %d connections for 20 calls: %v", m.Name, len(ports), ports)
		}
	}
}

func ExampleSelection_Call() {
	f, err := fleettest.New(fleettest.Config{Minions: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()
	res, err := f.Overlord().Targets("*").Call(t0(), "test", "add", 2, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, h := range res.Hosts() {
		fmt.Println(h, res[h].Value)
	}
	// Output:
	// m1.test 5
	// m2.test 5
}
