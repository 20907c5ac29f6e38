package overlord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc"
)

// Caller makes one call to one host; see Selection.Each.
type Caller func(ctx context.Context, module, method string, args ...any) (any, error)

// Each runs fn once per selected minion, at most Forks at a time, for
// conversations a single fan-out cannot express (a chunked upload, a
// call whose arguments depend on an earlier answer). fn gets the host
// and a Caller bound to it; what fn returns is that host's Result. The
// whole of fn is bounded by HostTimeout, and recorded in the audit log
// as one call named op. Errors from the Caller are *HostError values;
// fn's other errors are wrapped in one.
func (s *Selection) Each(ctx context.Context, op string, fn func(ctx context.Context, host string, call Caller) (any, error)) (Results, error) {
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	r := &run{c: s.c, id: newID(), hosts: sortedKeys(targets), req: &request{wire: op}, spec: s.describe(), start: time.Now()}
	if err := s.c.auditStart(r); err != nil {
		return nil, err
	}
	res := make(Results, len(r.hosts))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(s.c.cfg.Forks)
	for _, h := range r.hosts {
		g.Go(func() error {
			out := s.c.eachHost(ctx, h, op, fn)
			mu.Lock()
			res[h] = out
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	outcomes := make(map[string]error, len(res))
	for h, x := range res {
		outcomes[h] = x.Err
	}
	s.c.auditEnd(r, outcomes)
	return res, newCallError(op, res)
}

func (c *Client) eachHost(ctx context.Context, host, op string, fn func(context.Context, string, Caller) (any, error)) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HostTimeout)
	defer cancel()
	call := func(ctx context.Context, module, method string, args ...any) (any, error) {
		req, err := newRequest(module, method, args)
		if err != nil {
			return nil, &HostError{Host: host, Op: module + "." + method, Err: err}
		}
		r := c.callHost(ctx, host, req)
		return r.Value, r.Err
	}
	if err := ctx.Err(); err != nil {
		return Result{Host: host, Err: &HostError{Host: host, Op: op, Err: err}}
	}
	v, err := fn(ctx, host, call)
	r := Result{Host: host, Value: v, Duration: time.Since(start)}
	if err != nil {
		var he *HostError
		if !errors.As(err, &he) {
			err = &HostError{Host: host, Op: op, Err: err}
		}
		r.Value, r.Err = nil, err
	}
	return r
}

// CopyOptions are the copyfile module's options (see modules/copyfile).
type CopyOptions struct {
	Mode   string // octal permission bits, "0644"; empty keeps the file's, or 0644
	Owner  string // user name or uid; empty keeps the file's
	Group  string // group name or gid; empty keeps the file's
	Backup bool   // keep the replaced file as path.<time>.bak
}

// copyChunk is the size of one copyfile.append or getfile.read; the
// modules' default cap.
const copyChunk = 4 << 20

// CopyFile writes data to path on every selected minion with the
// copyfile module: atomically (the old file or the new, never a mix),
// each chunk checked by SHA-256, the whole by size and SHA-256. Each
// host's Value is the module's answer: {changed, backup_path, sha256,
// size}.
func (s *Selection) CopyFile(ctx context.Context, path string, data []byte, opt CopyOptions) (Results, error) {
	sum := sha256.Sum256(data)
	whole := hex.EncodeToString(sum[:])
	options := map[string]any{"size": int64(len(data)), "sha256": whole, "backup": opt.Backup}
	for k, v := range map[string]string{"mode": opt.Mode, "owner": opt.Owner, "group": opt.Group} {
		if v != "" {
			options[k] = v
		}
	}
	return s.Each(ctx, "copyfile.copyfile", func(ctx context.Context, host string, call Caller) (any, error) {
		if len(data) <= copyChunk {
			return call(ctx, "copyfile", "copyfile", path, data, options)
		}
		id, err := call(ctx, "copyfile", "open", path, options)
		if err != nil {
			return nil, err
		}
		for off := 0; off < len(data); off += copyChunk {
			chunk := data[off:min(off+copyChunk, len(data))]
			cs := sha256.Sum256(chunk)
			if _, err := call(ctx, "copyfile", "append", id, int64(off), chunk, hex.EncodeToString(cs[:])); err != nil {
				_, _ = call(context.WithoutCancel(ctx), "copyfile", "abort", id)
				return nil, err
			}
		}
		return call(ctx, "copyfile", "commit", id)
	})
}

// MaxGetFileBytes bounds a file GetFile fetches, since it is held in
// memory once per host.
const MaxGetFileBytes = 1 << 30

// ErrChecksum: a fetched file's SHA-256 is not the one the minion
// reported for it (it changed while being read, or was corrupted).
var ErrChecksum = errors.New("overlord: checksum mismatch")

// GetFile fetches path from every selected minion with the getfile
// module, in chunks, and checks the whole against the SHA-256 the
// minion reports. Each host's Value is the file's content, []byte.
func (s *Selection) GetFile(ctx context.Context, path string) (Results, error) {
	return s.Each(ctx, "getfile.read", func(ctx context.Context, host string, call Caller) (any, error) {
		st, err := call(ctx, "getfile", "stat", path)
		if err != nil {
			return nil, err
		}
		var stat struct {
			Type   string
			Size   int64
			SHA256 string `xmlrpc:"sha256"`
		}
		if err := decodeInto(st, &stat); err != nil {
			return nil, fmt.Errorf("%w: getfile.stat: %v", ErrProtocol, err)
		}
		if stat.Type != "file" {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s is a %s, not a file", path, stat.Type)
		}
		if stat.Size > MaxGetFileBytes {
			return nil, gofunc.Errorf(gofunc.CodeTooLarge, "%s is %d bytes, over %d", path, stat.Size, MaxGetFileBytes)
		}
		var buf bytes.Buffer
		for {
			v, err := call(ctx, "getfile", "read", path, int64(buf.Len()), int64(copyChunk))
			if err != nil {
				return nil, err
			}
			var chunk struct {
				Data   []byte
				SHA256 string `xmlrpc:"sha256"`
				EOF    bool
			}
			if err := decodeInto(v, &chunk); err != nil {
				return nil, fmt.Errorf("%w: getfile.read: %v", ErrProtocol, err)
			}
			if cs := sha256.Sum256(chunk.Data); hex.EncodeToString(cs[:]) != chunk.SHA256 {
				return nil, fmt.Errorf("%w: chunk at %d", ErrChecksum, buf.Len())
			}
			buf.Write(chunk.Data)
			if buf.Len() > MaxGetFileBytes {
				return nil, gofunc.Errorf(gofunc.CodeTooLarge, "%s grew over %d bytes", path, MaxGetFileBytes)
			}
			if chunk.EOF || len(chunk.Data) == 0 {
				break
			}
		}
		if sum := sha256.Sum256(buf.Bytes()); hex.EncodeToString(sum[:]) != stat.SHA256 {
			return nil, fmt.Errorf("%w: %s changed while it was read", ErrChecksum, path)
		}
		return buf.Bytes(), nil
	})
}

// Inventory collects Func's inventory from every selected minion: it
// lists the minion's methods (system.list_methods) and calls every
// "X.inventory" method there is. Each host's Value is a
// map[string]any from module name to that module's inventory; a
// module whose inventory fails is left out and named under the key
// "_errors" (module -> error text).
func (s *Selection) Inventory(ctx context.Context) (Results, error) {
	return s.Each(ctx, "inventory", func(ctx context.Context, host string, call Caller) (any, error) {
		v, err := call(ctx, "system", "list_methods")
		if err != nil {
			return nil, err
		}
		var methods []string
		if err := decodeInto(v, &methods); err != nil {
			return nil, fmt.Errorf("%w: system.list_methods: %v", ErrProtocol, err)
		}
		slices.Sort(methods)
		out := map[string]any{}
		failed := map[string]any{}
		for _, m := range methods {
			module, ok := strings.CutSuffix(m, ".inventory")
			if !ok || strings.Contains(module, ".") {
				continue
			}
			inv, err := call(ctx, module, "inventory")
			if err != nil {
				failed[module] = err.Error()
				continue
			}
			out[module] = inv
		}
		if len(failed) > 0 {
			out["_errors"] = failed
		}
		return out, nil
	})
}
