package sysctl

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/internal/modtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestDoc(t *testing.T) { modtest.CheckDoc(t, &Module{}) }

func TestKeyPath(t *testing.T) {
	tests := map[string]string{
		"net.ipv4.ip_forward":               "net/ipv4/ip_forward",
		"net/ipv4/ip_forward":               "net/ipv4/ip_forward",
		"kernel.ostype":                     "kernel/ostype",
		"net.ipv4.conf.eth0/100.forwarding": "net/ipv4/conf/eth0.100/forwarding",
		"net/ipv4/conf/eth0.100/forwarding": "net/ipv4/conf/eth0.100/forwarding",
		"fs.inotify.max_user_watches":       "fs/inotify/max_user_watches",
		"kernel":                            "kernel",
	}
	for name, want := range tests {
		got, err := keyPath(name)
		if err != nil || got != want {
			t.Errorf("keyPath(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestHostileNames(t *testing.T) {
	m := &Module{} // the real /proc/sys: nothing below may reach it
	for _, name := range []string{"", "../../etc/shadow", "kernel/../../etc/shadow", "kernel..ostype",
		".kernel.ostype", "kernel.ostype.", "/kernel/ostype", "kernel.ostype; reboot", "kernel.ostype\x00",
		"kernel ostype", "kernel.ostype\n", strings.Repeat("a.", 200)} {
		if _, err := m.Get(t.Context(), name); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("Get(%q) = %v, want CodeBadArgs", name, err)
		}
		if _, err := m.Set(t.Context(), name, "1"); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("Set(%q) = %v, want CodeBadArgs", name, err)
		}
	}
}

func TestGetReal(t *testing.T) {
	m := &Module{}
	for _, name := range []string{"kernel.ostype", "kernel/ostype"} {
		if v, err := m.Get(t.Context(), name); err != nil || v != "Linux" {
			t.Errorf("Get(%s) = %q, %v; want Linux", name, v, err)
		}
	}
	if _, err := m.Get(t.Context(), "kernel.no_such_key"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Get(missing key) = %v, want CodeNotFound", err)
	}
	if _, err := m.Get(t.Context(), "kernel"); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Get(directory) = %v, want CodeBadArgs", err)
	}
}

func TestListReal(t *testing.T) {
	values, err := (&Module{}).List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(values) < 100 || values["kernel.ostype"] != "Linux" {
		t.Errorf("List() = %d keys, kernel.ostype %q", len(values), values["kernel.ostype"])
	}
	if _, ok := values["vm.drop_caches"]; ok {
		t.Error("List() read the write-only vm.drop_caches")
	}
	// Every listed name must be accepted by Get and give the same path back.
	for name := range values {
		if _, err := keyPath(name); err != nil && keyRE.MatchString(name) {
			t.Errorf("listed name %q refused: %v", name, err)
		}
	}
}

// fixture builds a fake /proc/sys and, beside it, a secret file that a
// symbolic link inside the tree points at.
func fixture(t *testing.T) (m *Module, secret string) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "sys")
	write := func(rel, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("kernel/hostname", "old\n", 0o644)
	write("kernel/ostype", "Linux\n", 0o444)
	write("net/ipv4/tcp_rmem", "4096\t131072\t6291456\n", 0o644)
	write("net/ipv4/conf/eth0.100/forwarding", "0\n", 0o644)
	write("vm/drop_caches", "0\n", 0o200)
	secret = filepath.Join(base, "outside", "secret")
	if err := os.MkdirAll(filepath.Dir(secret), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("TOPSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(secret), filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	return &Module{ProcSys: root}, secret
}

func TestListFixture(t *testing.T) {
	m, _ := fixture(t)
	got, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kernel.hostname":                   "old",
		"kernel.ostype":                     "Linux",
		"net.ipv4.tcp_rmem":                 "4096\t131072\t6291456",
		"net.ipv4.conf.eth0/100.forwarding": "0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	inv, err := m.Inventory(t.Context())
	if err != nil || !cmp.Equal(inv, got) {
		t.Errorf("Inventory() = %v, %v; want List's result", inv, err)
	}
}

func TestSetFixture(t *testing.T) {
	m, secret := fixture(t)
	ch, err := m.Set(t.Context(), "kernel.hostname", "new-name")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Change{Name: "kernel.hostname", Old: "old", New: "new-name"}); ch != want {
		t.Errorf("Set = %+v, want %+v", ch, want)
	}
	if b, _ := os.ReadFile(filepath.Join(m.ProcSys, "kernel/hostname")); string(b) != "new-name\n" {
		t.Errorf("file holds %q", b)
	}
	if _, err := m.Set(t.Context(), "net.ipv4.conf.eth0/100.forwarding", "1"); err != nil {
		t.Fatal(err)
	}
	if v, err := m.Get(t.Context(), "net/ipv4/conf/eth0.100/forwarding"); err != nil || v != "1" {
		t.Errorf("after Set, Get = %q, %v", v, err)
	}
	if _, err := m.Set(t.Context(), "kernel.no_such_key", "1"); !errors.Is(err, gofunc.ErrNotFound) {
		t.Errorf("Set(missing key) = %v, want CodeNotFound", err)
	}
	if _, err := os.Stat(filepath.Join(m.ProcSys, "kernel/no_such_key")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Set created a key")
	}
	if _, err := m.Set(t.Context(), "kernel", "1"); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Set(directory) = %v, want CodeBadArgs", err)
	}
	// The symbolic link leads out of the root: neither read nor written.
	if v, err := m.Get(t.Context(), "escape.secret"); err == nil || strings.Contains(v, "TOPSECRET") {
		t.Errorf("Get through an escaping symlink = %q, %v", v, err)
	}
	if _, err := m.Set(t.Context(), "escape.secret", "pwned"); err == nil {
		t.Error("Set through an escaping symlink succeeded")
	}
	if b, _ := os.ReadFile(secret); string(b) != "TOPSECRET\n" {
		t.Errorf("secret file changed to %q", b)
	}
}

func TestHostileValues(t *testing.T) {
	m, _ := fixture(t)
	for _, value := range []string{"", "1\n2", "x\x00", "\x1b[2J", "caf\xc3\xa9", strings.Repeat("9", DefaultMaxValueLen+1)} {
		if _, err := m.Set(t.Context(), "kernel.hostname", value); !errors.Is(err, gofunc.ErrBadArgs) {
			t.Errorf("Set(%.20q) = %v, want CodeBadArgs", value, err)
		}
	}
	if v, _ := m.Get(t.Context(), "kernel.hostname"); v != "old" {
		t.Errorf("a refused Set changed the key to %q", v)
	}
	small := &Module{ProcSys: m.ProcSys, MaxValueLen: 3}
	if _, err := small.Set(t.Context(), "kernel.hostname", "abcd"); !errors.Is(err, gofunc.ErrBadArgs) {
		t.Errorf("Set above MaxValueLen = %v, want CodeBadArgs", err)
	}
}

func TestCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	m, _ := fixture(t)
	if _, err := m.Get(ctx, "kernel.ostype"); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Get(canceled) = %v", err)
	}
	if _, err := m.Set(ctx, "kernel.hostname", "x"); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("Set(canceled) = %v", err)
	}
	if _, err := (&Module{}).List(ctx); !errors.Is(err, gofunc.ErrCanceled) {
		t.Errorf("List(canceled) = %v", err)
	}
}

func TestMissingRoot(t *testing.T) {
	m := &Module{ProcSys: filepath.Join(t.TempDir(), "nope")}
	if _, err := m.List(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
		t.Errorf("List(no root) = %v, want CodeUnavailable", err)
	}
}

func FuzzKeyPath(f *testing.F) {
	for _, s := range []string{"net.ipv4.ip_forward", "net/ipv4/ip_forward", "net.ipv4.conf.eth0/100.forwarding",
		"../../etc/shadow", "a./b", "a/.b", "...", "/", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		path, err := keyPath(name)
		if err != nil {
			if !errors.Is(err, gofunc.ErrBadArgs) {
				t.Fatalf("keyPath(%q) error %v is not CodeBadArgs", name, err)
			}
			return
		}
		if filepath.IsAbs(path) || !filepath.IsLocal(path) || filepath.Clean(path) != path {
			t.Fatalf("keyPath(%q) = %q, not a clean local path", name, path)
		}
		// The dotted name List would give for path leads back to path.
		if again, err := keyPath(nameOf(path)); err != nil || again != path {
			t.Fatalf("keyPath(nameOf(%q)) = %q, %v", path, again, err)
		}
	})
}

func BenchmarkListReal(b *testing.B) {
	m := &Module{}
	for b.Loop() {
		if _, err := m.List(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// The reviewer's case: fs.dentry-state, fs.file-nr, kernel.ns_last_pid,
// kernel.random.uuid and company move while nothing is configured; the
// inventory must not.
func TestInventoryStable(t *testing.T) {
	m := &Module{}
	inv := modtest.CheckStable(t, m.Inventory)
	if len(inv) < 100 || inv["kernel.ostype"] != "Linux" {
		t.Errorf("Inventory() = %d keys, kernel.ostype %q", len(inv), inv["kernel.ostype"])
	}
	for _, name := range []string{"fs.dentry-state", "fs.file-nr", "fs.inode-nr", "kernel.ns_last_pid", "kernel.random.uuid"} {
		if _, ok := inv[name]; ok {
			t.Errorf("Inventory() lists the volatile %s", name)
		}
	}
	all, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for name := range all {
		if _, ok := inv[name]; !ok && !matchAny(volatileKeys, name) {
			t.Errorf("Inventory() left out %s, which is not volatile", name)
		}
	}
}

func TestInventoryExclude(t *testing.T) {
	m, _ := fixture(t)
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(m.ProcSys, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("fs/file-nr", "436\t0\t2466177\n")
	write("net/ipv6/conf/eth0.100/stable_secret", "fe80::1\n")
	write("net/ipv6/conf/eth0.100/forwarding", "0\n")
	write("kernel/random/uuid", "79b6659c-82c6-4d60-8cd6-5b0284f09202\n")
	write("kernel/random/poolsize", "256\n")
	m.InventoryExclude = []string{"net.ipv4.conf.*.forwarding", "kernel.hostname"}
	got, err := m.Inventory(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kernel.ostype":                     "Linux",
		"kernel.random.poolsize":            "256",
		"net.ipv4.tcp_rmem":                 "4096\t131072\t6291456",
		"net.ipv6.conf.eth0/100.forwarding": "0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Inventory (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "net..x", "net.ipv4.conf.eth*.forwarding", "kernel.ostype; reboot", "a.b\x00", strings.Repeat("a", 300)} {
		m.InventoryExclude = []string{bad}
		if _, err := m.Inventory(t.Context()); !errors.Is(err, gofunc.ErrUnavailable) {
			t.Errorf("Inventory with InventoryExclude %q = %v, want CodeUnavailable", bad, err)
		}
	}
}

func TestVolatileKeysValid(t *testing.T) {
	keys := VolatileKeys()
	if len(keys) == 0 || !slices.IsSorted(keys) {
		t.Errorf("VolatileKeys() = %q, want a sorted list", keys)
	}
	for _, p := range keys {
		if err := checkPattern(p); err != nil {
			t.Error(err)
		}
	}
	keys[0] = "changed"
	if VolatileKeys()[0] == "changed" {
		t.Error("VolatileKeys() returned the list itself, not a copy")
	}
}

func TestMatchKey(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"fs.file-nr", "fs.file-nr", true},
		{"fs.file-nr", "fs.file-max", false},
		{"net.ipv6.conf.*.stable_secret", "net.ipv6.conf.eth0.stable_secret", true},
		{"net.ipv6.conf.*.stable_secret", "net.ipv6.conf.eth0/100.stable_secret", true},
		{"net.ipv6.conf.*.stable_secret", "net.ipv6.conf.stable_secret", false},
		{"net.ipv6.conf.*.stable_secret", "net.ipv6.conf.a.b.stable_secret", false},
		{"kernel.sched_domain.*.*.max_newidle_lb_cost", "kernel.sched_domain.cpu0.domain1.max_newidle_lb_cost", true},
	}
	for _, tt := range tests {
		if got := matchKey(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchKey(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}
