// Package sysctl is the gofunc "sysctl" module: it reads and writes kernel
// parameters through /proc/sys, the way sysctl(8) does, without running
// it.
//
//	srv.Register("sysctl", &sysctl.Module{})
//
// Keys are named as sysctl(8) names them: "net.ipv4.ip_forward", or in
// path form "net/ipv4/ip_forward". In the dotted form a '/' stands for a
// '.' inside one path component ("net.ipv4.conf.eth0/100.forwarding" is
// /proc/sys/net/ipv4/conf/eth0.100/forwarding). sysctl.set is Dangerous.
package sysctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"

	"github.com/gofunc/gofunc"
)

// Defaults of Module's fields.
const (
	DefaultProcSys     = "/proc/sys"
	DefaultMaxValueLen = 4096
)

// maxKeyLen bounds a key's name.
const maxKeyLen = 256

// maxReadLen bounds what is read of one key: real values are far shorter.
const maxReadLen = 64 << 10

// Module is the sysctl module. Its exported fields are its configuration;
// the zero Module is ready to use. It is safe for concurrent use.
type Module struct {
	// ProcSys is the directory the keys live in; "" means DefaultProcSys
	// ("/proc/sys"). Tests point it at a temporary tree.
	ProcSys string
	// MaxValueLen bounds the value set accepts; 0 means
	// DefaultMaxValueLen (4096 bytes).
	MaxValueLen int
	// InventoryExclude are more keys for Inventory to leave out, beyond
	// VolatileKeys: patterns of dotted key names in which a "*" component
	// matches any one component ("net.ipv4.conf.*.forwarding"), for the
	// values a site's own software retunes. Empty means none. An invalid
	// pattern makes Inventory fail with CodeUnavailable.
	InventoryExclude []string
}

// Change is what set did.
type Change struct {
	Name string `xmlrpc:"name"`
	Old  string `xmlrpc:"old"` // the value before; "" if the key is not readable
	New  string `xmlrpc:"new"` // the value read back after writing; the written value if not readable
}

// List returns every readable key and its value. Keys that cannot be read
// (write-only, or refused by the kernel) are left out.
func (m *Module) List(ctx context.Context) (map[string]string, error) {
	root, err := m.open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	values := map[string]string{}
	n := 0
	err = fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // unreadable directories are skipped like unreadable keys
		}
		if n++; n%64 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if info, err := d.Info(); err != nil || info.Mode().Perm()&0o444 == 0 {
			return nil // write-only, such as vm.drop_caches
		}
		if v, err := readKey(root, path); err == nil {
			values[nameOf(path)] = v
		}
		return nil
	})
	if err != nil {
		return nil, contextFault(err)
	}
	return values, nil
}

// volatileKeys are the keys Inventory leaves out, as patterns in which a
// "*" component matches any one component of a key's dotted name. They
// are not configuration, and would make every inventory differ from the
// last one:
//   - counters and current state that move as the host runs: open files,
//     dentries and inodes, asynchronous I/O requests, quota statistics,
//     the last PID handed out, ptys in use, tracked connections, entropy,
//     hung-task counters, the taint flags, and (before Linux 5.13) the
//     scheduler's newidle balance cost;
//   - values the kernel retunes by itself: perf_event_max_sample_rate,
//     lowered when perf interrupts run long;
//   - random values made at each boot or read: kernel.random.uuid (new at
//     every read) and boot_id, and the keys that are secrets besides
//     (TCP Fast Open key, RSS hash key, IPv6 stable_secret), which must
//     not end up in a git repository of inventories;
//   - vm.stat_refresh, whose reading is an action (it folds the per-CPU
//     VM statistics), not a value.
var volatileKeys = []string{
	"fs.aio-nr", "fs.dentry-state", "fs.file-nr", "fs.inode-nr", "fs.inode-state",
	"fs.quota.allocated_dquots", "fs.quota.cache_hits", "fs.quota.drops", "fs.quota.free_dquots",
	"fs.quota.lookups", "fs.quota.reads", "fs.quota.syncs", "fs.quota.writes",
	"kernel.hung_task_detect_count", "kernel.hung_task_warnings", "kernel.ns_last_pid",
	"kernel.perf_event_max_sample_rate", "kernel.pty.nr",
	"kernel.random.boot_id", "kernel.random.entropy_avail", "kernel.random.uuid",
	"kernel.sched_domain.*.*.max_newidle_lb_cost", "kernel.tainted",
	"net.core.netdev_rss_key", "net.ipv4.tcp_fastopen_key", "net.ipv6.conf.*.stable_secret",
	"net.netfilter.nf_conntrack_count",
	"vm.stat_refresh",
}

// VolatileKeys returns the patterns of the keys Inventory always leaves
// out (see Inventory), a copy the caller may keep.
func VolatileKeys() []string { return slices.Clone(volatileKeys) }

// Inventory returns every readable key, as List does, but for the
// volatile ones (VolatileKeys: counters, per-boot random values and
// secrets, such as fs.dentry-state, fs.file-nr, kernel.ns_last_pid,
// kernel.random.uuid) and those matching InventoryExclude: what remains
// is the kernel's configuration, equal from one inventory to the next
// unless someone changed it.
func (m *Module) Inventory(ctx context.Context) (map[string]string, error) {
	for _, p := range m.InventoryExclude {
		if err := checkPattern(p); err != nil {
			return nil, gofunc.Errorf(gofunc.CodeUnavailable, "sysctl is misconfigured: InventoryExclude: %v", err)
		}
	}
	values, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	maps.DeleteFunc(values, func(name, _ string) bool {
		return matchAny(volatileKeys, name) || matchAny(m.InventoryExclude, name)
	})
	return values, nil
}

// patternComponentRE is one component of an InventoryExclude pattern:
// "*" or a component of a dotted key name.
var patternComponentRE = regexp.MustCompile(`^(\*|[A-Za-z0-9_/-]+)$`)

// checkPattern accepts a dotted key name whose components may be "*".
func checkPattern(p string) error {
	if p == "" || len(p) > maxKeyLen {
		return fmt.Errorf("pattern %q must be 1 to %d bytes", p, maxKeyLen)
	}
	for c := range strings.SplitSeq(p, ".") {
		if !patternComponentRE.MatchString(c) {
			return fmt.Errorf("pattern %q: component %q is neither \"*\" nor made of [A-Za-z0-9_/-]", p, c)
		}
	}
	return nil
}

// matchAny reports whether the dotted key name matches one of patterns.
func matchAny(patterns []string, name string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return matchKey(p, name) })
}

// matchKey reports whether the dotted key name matches pattern, whose
// "*" components match any one component (an interface "eth0/100"
// included: in the dotted form its dot is a slash).
func matchKey(pattern, name string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == name
	}
	pc, nc := strings.Split(pattern, "."), strings.Split(name, ".")
	if len(pc) != len(nc) {
		return false
	}
	for i := range pc {
		if pc[i] != "*" && pc[i] != nc[i] {
			return false
		}
	}
	return true
}

// Get returns the value of the key called name, without its trailing
// newline. Multi-valued keys keep their tabs ("4096\t131072\t6291456").
func (m *Module) Get(ctx context.Context, name string) (string, error) {
	path, err := keyPath(name)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", contextFault(err)
	}
	root, err := m.open()
	if err != nil {
		return "", err
	}
	defer root.Close()
	v, err := readKey(root, path)
	if err != nil {
		return "", keyFault(name, err)
	}
	return v, nil
}

// Set writes value to the existing key called name and returns the value
// before and after.
func (m *Module) Set(ctx context.Context, name, value string) (Change, error) {
	path, err := keyPath(name)
	if err != nil {
		return Change{}, err
	}
	if err := m.checkValue(value); err != nil {
		return Change{}, err
	}
	if err := ctx.Err(); err != nil {
		return Change{}, contextFault(err)
	}
	root, err := m.open()
	if err != nil {
		return Change{}, err
	}
	defer root.Close()
	info, err := root.Lstat(path)
	if err != nil {
		return Change{}, keyFault(name, err)
	}
	if !info.Mode().IsRegular() {
		return Change{}, gofunc.Errorf(gofunc.CodeBadArgs, "name %q is not a key but a directory or special file", name)
	}
	old, _ := readKey(root, path)
	// No O_CREATE: set changes keys, it never invents them.
	f, err := root.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return Change{}, keyFault(name, err)
	}
	_, werr := f.Write([]byte(value + "\n"))
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Change{}, keyFault(name, werr)
	}
	now, err := readKey(root, path)
	if err != nil {
		now = value
	}
	return Change{Name: name, Old: old, New: now}, nil
}

// Doc describes the module for introspection and the ACLs.
func (m *Module) Doc() gofunc.ModuleDoc {
	name := gofunc.ArgDoc{Name: "name", Type: "string",
		Description: "key, such as net.ipv4.ip_forward or net/ipv4/ip_forward"}
	return gofunc.ModuleDoc{
		Description: "Read and write kernel parameters (/proc/sys), like sysctl(8).",
		Version:     "1.0.0",
		Methods: map[string]gofunc.MethodDoc{
			"List": {Description: "Every readable key: {name: value}."},
			"Inventory": {Description: "Every readable key, as list(), but for the volatile ones (counters such as " +
				"fs.dentry-state, fs.file-nr, kernel.ns_last_pid; per-boot random values and secrets): {name: value}."},
			"Get": {Description: "One key's value.", Args: []gofunc.ArgDoc{name}},
			"Set": {
				Description: "Write a key; returns {name, old, new}.",
				Dangerous:   true,
				Args: []gofunc.ArgDoc{name, {Name: "value", Type: "string",
					Description: "printable ASCII (tabs allowed), at most 4096 bytes by default"}},
			},
		},
	}
}

func (m *Module) open() (*os.Root, error) {
	root, err := os.OpenRoot(cmp.Or(m.ProcSys, DefaultProcSys))
	if err != nil {
		return nil, gofunc.Errorf(gofunc.CodeUnavailable, "sysctl: %v", err)
	}
	return root, nil
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)

// keyPath maps a key name to its path below /proc/sys, following
// sysctl(8): if the first separator is a '.', dots separate components
// and slashes stand for dots; otherwise the name is already a path. No
// component may be empty, "." or "..", so the path cannot leave the root
// (which os.Root enforces again, symbolic links included).
func keyPath(name string) (string, error) {
	if name == "" || len(name) > maxKeyLen || !keyRE.MatchString(name) {
		return "", gofunc.Errorf(gofunc.CodeBadArgs, "name %q must be 1 to %d of [A-Za-z0-9_./-]", name, maxKeyLen)
	}
	path := name
	if i := strings.IndexAny(name, "./"); i >= 0 && name[i] == '.' {
		path = swapDotsAndSlashes(name)
	}
	for c := range strings.SplitSeq(path, "/") {
		if c == "" || c == "." || c == ".." {
			return "", gofunc.Errorf(gofunc.CodeBadArgs, "name %q has an empty, \".\" or \"..\" component", name)
		}
	}
	return path, nil
}

// nameOf is the inverse of keyPath for the dotted form.
func nameOf(path string) string { return swapDotsAndSlashes(path) }

// swapDotsAndSlashes turns the dotted form of a key into its path and
// back: a dot in a path component ("eth0.100") is a slash in the name.
func swapDotsAndSlashes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, s)
}

func readKey(root *os.Root, path string) (string, error) {
	f, err := root.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxReadLen))
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.ToValidUTF8(string(b), "?"), "\n"), nil
}

func (m *Module) checkValue(value string) error {
	limit := m.MaxValueLen
	if limit <= 0 {
		limit = DefaultMaxValueLen
	}
	if value == "" || len(value) > limit {
		return gofunc.Errorf(gofunc.CodeBadArgs, "value must be 1 to %d bytes, got %d", limit, len(value))
	}
	for _, c := range []byte(value) {
		if (c < ' ' && c != '\t') || c >= 0x7f {
			return gofunc.Errorf(gofunc.CodeBadArgs, "value contains a control or non-ASCII byte (%#x)", c)
		}
	}
	return nil
}

// keyFault gives a failed read or write the code the caller should see.
func keyFault(name string, err error) *gofunc.Fault {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return gofunc.Errorf(gofunc.CodeNotFound, "no key %q", name)
	case errors.Is(err, syscall.EINVAL):
		return gofunc.Errorf(gofunc.CodeBadArgs, "key %q: the kernel refused the value: %v", name, err)
	case errors.Is(err, syscall.EISDIR):
		return gofunc.Errorf(gofunc.CodeBadArgs, "name %q is a directory of keys", name)
	}
	return gofunc.Errorf(gofunc.CodeModule, "key %q: %v", name, err)
}

func contextFault(err error) *gofunc.Fault {
	if errors.Is(err, context.DeadlineExceeded) {
		return gofunc.Errorf(gofunc.CodeTimeout, "sysctl: deadline exceeded")
	}
	return gofunc.Errorf(gofunc.CodeCanceled, "sysctl: %v", err)
}
