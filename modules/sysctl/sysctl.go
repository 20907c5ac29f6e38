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
	"io"
	"io/fs"
	"os"
	"regexp"
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

// Inventory returns the same as List: every readable key.
func (m *Module) Inventory(ctx context.Context) (map[string]string, error) { return m.List(ctx) }

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
			"List":      {Description: "Every readable key: {name: value}."},
			"Inventory": {Description: "Every readable key, as list()."},
			"Get":       {Description: "One key's value.", Args: []gofunc.ArgDoc{name}},
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
