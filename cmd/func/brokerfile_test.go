package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker/brokertest"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/overlord"
)

// func remembers the broker it reached, like its certmaster: later
// runs go through it without --broker; gofunc.toml names it as any
// flag; --broker none calls the minions' ports again and forgets it.
// The minion list has no addresses, so a direct call cannot succeed:
// every success went through the broker.
func TestFuncRemembersItsBroker(t *testing.T) {
	t.Parallel()
	f := brokertest.Start(t, fleettest.Config{Minions: 2, Subnet: "127.0.46", HostTimeout: 10 * time.Second})
	dir := t.TempDir()
	if err := f.Admin().Save(dir); err != nil {
		t.Fatal(err)
	}
	var list []overlord.Minion
	for _, m := range f.Minions() {
		list = append(list, overlord.Minion{Name: m.Name, Addr: "127.0.0.1:1"}) // nothing listens there
	}
	if err := writeMinions(filepath.Join(dir, overlord.CacheFile), list); err != nil {
		t.Fatal(err)
	}
	remembered := filepath.Join(dir, brokerFile)

	runFunc(t, "", "--dir", dir, "--broker", f.URL, "*", "ping").want(t, exitOK)
	if b, err := os.ReadFile(remembered); err != nil || !strings.Contains(string(b), f.URL) || !strings.Contains(string(b), f.Admin().CAFingerprint()) {
		t.Fatalf("%s: %v %s", brokerFile, err, b)
	}
	runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)
	o := runFunc(t, "", "--dir", dir, "discover").want(t, exitOK)
	if !strings.Contains(o.stderr, "discovered 2") {
		t.Errorf("discover with the remembered broker: %q", o.stderr)
	}
	// The broadcast is in the overlord's audit log, before and after.
	recs, err := brokertest.AuditRecords(filepath.Join(dir, "audit.log"), audit.Filter{Method: "test.ping"})
	if err != nil {
		t.Fatal(err)
	}
	var start, end bool
	for _, r := range recs {
		start = start || r.Kind == audit.KindOverlordCall && slices.Equal(r.Targets, []string{"*"})
		end = end || r.Kind == audit.KindOverlordCallEnd && r.Details["discovered"] == "2"
	}
	if !start || !end {
		t.Errorf("discover's audit records: %+v", recs)
	}

	// Direct again: unreachable, and forgotten.
	runFunc(t, "", "--dir", dir, "--broker", "none", "*", "ping").want(t, exitFailed)
	if _, err := os.Stat(remembered); !os.IsNotExist(err) {
		t.Errorf("%s after --broker none: %v", brokerFile, err)
	}
	runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitFailed)

	// gofunc.toml names the broker like any flag.
	if err := os.WriteFile(filepath.Join(dir, "gofunc.toml"), []byte("broker = [\""+f.URL+"\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitOK)

	// A remembered broker of another CA is ignored, with a warning.
	if err := os.Remove(filepath.Join(dir, "gofunc.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(remembered, []byte(`{"brokers": ["`+f.URL+`"], "ca_fingerprint": "sha256:00"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	o = runFunc(t, "", "--dir", dir, "*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stderr, "another CA") {
		t.Errorf("a broker of another CA: %q", o.stderr)
	}
}

// loadBroker never panics, and what it accepts names brokers.
func FuzzLoadBroker(f *testing.F) {
	f.Add([]byte(`{"brokers": ["nats://127.0.0.1:4222"], "ca_fingerprint": "sha256:00"}`))
	f.Add([]byte(`{"brokers": []}`))
	f.Add([]byte(`{"brokers": [""]}`))
	f.Add([]byte(`[`))
	path := filepath.Join(f.TempDir(), brokerFile)
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := loadBroker(path)
		if err == nil && (len(r.Brokers) == 0 || slices.Contains(r.Brokers, "")) {
			t.Errorf("accepted %q as %+v", data, r)
		}
	})
}
