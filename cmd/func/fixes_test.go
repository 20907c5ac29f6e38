package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/ca"
	"github.com/gofunc/gofunc/overlord"
)

// No audit log, no call: exit 1 and nothing reaches the minion.
func TestUnauditedCallIsNotMade(t *testing.T) {
	f, dir := fleetDir(t, 1)
	if err := os.Mkdir(filepath.Join(dir, "audit.log"), 0o700); err != nil { // cannot be opened as a log
		t.Fatal(err)
	}
	o := runFunc(t, "", "--dir", dir, "*", "call", "test", "add", "1", "2").want(t, exitFailed)
	if !strings.Contains(o.stderr, "nothing was called") {
		t.Errorf("stderr: %q", o.stderr)
	}
	b, _ := os.ReadFile(f.Minions()[0].AuditPath)
	if strings.Contains(string(b), "test.add") {
		t.Error("the minion ran an unaudited call")
	}
}

// Several func processes at once all record their calls in one chain.
func TestConcurrentRunsAllAudit(t *testing.T) {
	_, dir := fleetDir(t, 2)
	const runs = 4
	codes := make([]outcome, runs)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() { codes[i] = runFunc(t, "", "--dir", dir, "*", "ping") })
	}
	wg.Wait()
	for i, o := range codes {
		if o.code != exitOK {
			t.Errorf("run %d: exit %d\n%s", i, o.code, o.stderr)
		}
	}
	log := filepath.Join(dir, "audit.log")
	if _, err := audit.Verify(log); err != nil {
		t.Fatalf("verify: %v", err)
	}
	starts := 0
	if err := audit.Query([]string{log}, audit.Filter{Kind: audit.KindOverlordCall}, func(audit.Record) error {
		starts++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if starts != runs {
		t.Errorf("%d calls recorded, want %d", starts, runs)
	}
}

func TestUsageErrorsAndPositionalArgs(t *testing.T) {
	_, dir := fleetDir(t, 1)
	runFunc(t, "", "--dir", dir, "--forks", "0", "*", "ping").want(t, exitUsage)
	runFunc(t, "", "--dir", dir, "--timeout", "0s", "*", "ping").want(t, exitUsage)
	runFunc(t, "", "--dir", dir, "--max-failures", "-2", "*", "ping").want(t, exitUsage)
	runFunc(t, "", "--dir", dir, ";;", "ping").want(t, exitUsage)
	runFunc(t, "", "--dir", dir, " ; ", "ping").want(t, exitUsage)
	for args, want := range map[string]string{
		"add -1 2":          "\n1\n",
		"add 2 -5":          "\n-3\n",
		"add -1 -2":         "\n-3\n",
		"echo --strings -1": "\n-1\n",
		"echo -- --strings": "\n--strings\n",
		"echo -x":           "\n-x\n",
	} {
		o := runFunc(t, "", append([]string{"--dir", dir, "*", "call", "test"}, strings.Fields(args)...)...).want(t, exitOK)
		if !strings.Contains(o.stdout, want) {
			t.Errorf("call test %s:\n%s", args, o.stdout)
		}
	}
	runFunc(t, "", "--dir", dir, "--bogus", "*", "call", "test", "add", "1", "2").want(t, exitUsage)
}

func TestJSONErrorIsNullOnSuccess(t *testing.T) {
	_, dir := fleetDir(t, 1)
	o := runFunc(t, "", "--dir", dir, "--json", "*", "ping").want(t, exitOK)
	if !strings.Contains(o.stdout, `"error": null`) || !strings.Contains(o.stdout, `"ok": true`) {
		t.Errorf("--json:\n%s", o.stdout)
	}
}

// Without --dir, func reads gofunc.toml from its default directory.
func TestDefaultDirConfigIsRead(t *testing.T) {
	_, dir := fleetDir(t, 1)
	home := t.TempDir()
	if err := os.Rename(dir, filepath.Join(home, ".gofunc")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".gofunc", "gofunc.toml"), []byte("json = true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv("GOFUNC_DIR", "")
	o := runFunc(t, "", "*", "ping").want(t, exitOK)
	if !strings.Contains(o.stdout, `"ok": true`) {
		t.Errorf("gofunc.toml in ~/.gofunc not applied:\n%s", o.stdout)
	}
}

// Host names can never make writeInventory delete or write outside
// one directory per host in the repository.
func TestWriteInventoryHostileNames(t *testing.T) {
	root := t.TempDir()
	repo := filepath.Join(root, "inventory")
	keep := filepath.Join(repo, "keep", "system.json")
	if err := os.MkdirAll(filepath.Dir(keep), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keep, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o700); err != nil {
		t.Fatal(err)
	}
	res := overlord.Results{}
	for _, h := range []string{"..", ".", "", ".git", "../outside", "a/../../b", `..\x`, "ok.test"} {
		res[h] = overlord.Result{Host: h, Value: map[string]any{"system": map[string]any{"os": "linux"}, "../m": 1}}
	}
	if err := writeInventory(repo, res); err != nil {
		t.Fatalf("writeInventory: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("another host's snapshot was removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, ".git")); err != nil {
		t.Errorf(".git was removed: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Errorf("written outside the repository: %v", entries)
	}
	for _, name := range []string{"..", ".", "", ".git"} {
		if s := safeName(name); s == "" || strings.HasPrefix(s, ".") || strings.ContainsAny(s, `/\`) {
			t.Errorf("safeName(%q) = %q", name, s)
		}
	}
}

// `certmaster revoke` then `func --certmaster ... ping`: the revoked
// minion is refused, and still is by later runs from the cached list.
func TestCertmasterRevocationReachesFunc(t *testing.T) {
	f, dir := fleetDir(t, 2)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	svc := &ca.Service{Authority: f.CA}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln) }()
	defer func() {
		_ = svc.Close()
		<-done
	}()
	addr := ln.Addr().String()
	if _, err := f.CA.Revoke("m2.test", ca.ReasonUnspecified); err != nil {
		t.Fatal(err)
	}
	// The cached list still names m2; the certmaster's CRL refuses it.
	o := runFunc(t, "", "--dir", dir, "--certmaster", addr, "m1*", "ping").want(t, exitOK)
	if _, err := os.Stat(filepath.Join(dir, "crl.pem")); err != nil {
		t.Fatalf("crl.pem not saved: %v\n%s", err, o.stderr)
	}
	if err := writeMinions(filepath.Join(dir, overlord.CacheFile), []overlord.Minion{
		{Name: f.Minions()[0].Name, Addr: f.Minions()[0].Addr}, {Name: f.Minions()[1].Name, Addr: f.Minions()[1].Addr},
	}); err != nil {
		t.Fatal(err)
	}
	o = runFunc(t, "", "--dir", dir, "--json", "m2*", "ping").want(t, exitFailed)
	if !strings.Contains(o.stdout, `"kind": "untrusted"`) {
		t.Errorf("revoked m2 from the cache:\n%s", o.stdout)
	}
	// With the certmaster gone, the cached list is used with a warning.
	_ = svc.Close()
	o = runFunc(t, "", "--dir", dir, "--certmaster", addr, "m1*", "ping").want(t, exitOK)
	if !strings.Contains(o.stderr, "did not answer (connection refused); using the minion list cached in") {
		t.Errorf("no warning: %q", o.stderr)
	}
}

// getfile leaves no partial files behind.
func TestGetfileWritesNoPartialFiles(t *testing.T) {
	_, dir := fleetDir(t, 1)
	src := filepath.Join(t.TempDir(), "f.txt")
	if err := os.WriteFile(src, []byte(strings.Repeat("y", 5<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o := runFunc(t, "", "--dir", dir, "--json", "*", "getfile", src, out).want(t, exitOK)
	if !strings.Contains(o.stdout, filepath.Join(out, "m1.test", "f.txt")) {
		t.Errorf("path not reported:\n%s", o.stdout)
	}
	entries, _ := os.ReadDir(filepath.Join(out, "m1.test"))
	if len(entries) != 1 || entries[0].Name() != "f.txt" {
		t.Errorf("files: %v", entries)
	}
	if fi, err := os.Stat(filepath.Join(out, "m1.test", "f.txt")); err != nil || fi.Size() != 5<<20 || fi.Mode().Perm() != 0o600 {
		t.Errorf("fetched file: %v %v", fi, err)
	}
}
