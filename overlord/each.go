package overlord

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
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
	return s.each(ctx, eachSpec{op: op, hostTimeout: true}, fn)
}

// eachSpec says how a conversation is bounded and audited.
type eachSpec struct {
	op string
	// hostTimeout bounds the whole conversation with one host by
	// HostTimeout; false bounds each call instead (a transfer of many
	// chunks may take longer than one call may).
	hostTimeout bool
	// details are added to the overlord.call record (path, size,
	// sha256, options).
	details map[string]string
	// note, if set, describes a host's successful Value in the end
	// record ("ok size=... sha256=...").
	note func(v any) string
	// behalf is the person the calls are made for (Selection.OnBehalfOf).
	behalf string
}

func (s *Selection) each(ctx context.Context, spec eachSpec, fn func(ctx context.Context, host string, call Caller) (any, error)) (Results, error) {
	targets, err := s.resolve(ctx)
	if err != nil {
		return nil, err
	}
	spec.behalf = s.behalf
	if s.behalf != "" {
		spec.details = maps.Clone(spec.details)
		if spec.details == nil {
			spec.details = map[string]string{}
		}
		spec.details["on_behalf_of"] = s.behalf
	}
	r := &run{c: s.c, id: newID(), hosts: sortedKeys(targets), req: &request{wire: spec.op}, spec: s.describe(),
		start: time.Now(), details: spec.details}
	if err := s.c.auditStart(r); err != nil {
		return nil, err
	}
	res := make(Results, len(r.hosts))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(s.c.cfg.Forks)
	for _, h := range r.hosts {
		g.Go(func() error {
			out := s.c.eachHost(ctx, h, spec, fn)
			mu.Lock()
			res[h] = out
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	outcomes := make(map[string]error, len(res))
	heads := make(map[string]audit.Checkpoint, len(res))
	var notes map[string]string
	for h, x := range res {
		outcomes[h] = x.Err
		if x.AuditHead.Seq != 0 {
			heads[h] = x.AuditHead
		}
		if x.Err == nil && spec.note != nil {
			if notes == nil {
				notes = make(map[string]string, len(res))
			}
			notes[h] = spec.note(x.Value)
		}
	}
	s.c.auditEnd(r, outcomes, notes)
	s.c.auditHeads(r, heads)
	return res, newCallError(spec.op, res)
}

func (c *Client) eachHost(ctx context.Context, host string, spec eachSpec, fn func(context.Context, string, Caller) (any, error)) Result {
	start := time.Now()
	if spec.hostTimeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.HostTimeout)
		defer cancel()
	}
	var mu sync.Mutex
	var head audit.Checkpoint // the newest the minion sent
	call := func(ctx context.Context, module, method string, args ...any) (any, error) {
		req, err := newRequest(module, method, args)
		if err != nil {
			return nil, &HostError{Host: host, Op: module + "." + method, Err: err}
		}
		req.behalf = spec.behalf
		r := c.callHost(ctx, host, req) // each call bounded by HostTimeout
		mu.Lock()
		if r.AuditHead.Seq > head.Seq {
			head = r.AuditHead
		}
		mu.Unlock()
		return r.Value, r.Err
	}
	if err := ctx.Err(); err != nil {
		return Result{Host: host, Err: &HostError{Host: host, Op: spec.op, Err: err}}
	}
	v, err := fn(ctx, host, call)
	mu.Lock()
	r := Result{Host: host, Value: v, Duration: time.Since(start), AuditHead: head}
	mu.Unlock()
	if err != nil {
		var he *HostError
		if !errors.As(err, &he) {
			err = &HostError{Host: host, Op: spec.op, Err: err}
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
// call (one per 4 MiB chunk) is bounded by HostTimeout, not the whole
// transfer. Each host's Value is the module's answer: {changed,
// backup_path, sha256, size}. The audit record names the path, size,
// SHA-256 and options.
func (s *Selection) CopyFile(ctx context.Context, path string, data []byte, opt CopyOptions) (Results, error) {
	sum := sha256.Sum256(data)
	whole := hex.EncodeToString(sum[:])
	options := map[string]any{"size": int64(len(data)), "sha256": whole, "backup": opt.Backup}
	details := map[string]string{"path": path, "size": strconv.Itoa(len(data)), "sha256": whole,
		"backup": strconv.FormatBool(opt.Backup)}
	for k, v := range map[string]string{"mode": opt.Mode, "owner": opt.Owner, "group": opt.Group} {
		if v != "" {
			options[k] = v
			details[k] = v
		}
	}
	spec := eachSpec{op: "copyfile.copyfile", details: details}
	return s.each(ctx, spec, func(ctx context.Context, host string, call Caller) (any, error) {
		chunkSize := s.c.chunk
		if len(data) <= chunkSize {
			return call(ctx, "copyfile", "copyfile", path, data, options)
		}
		id, err := call(ctx, "copyfile", "open", path, options)
		if err != nil {
			return nil, err
		}
		for off := 0; off < len(data); off += chunkSize {
			chunk := data[off:min(off+chunkSize, len(data))]
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
// memory once per host: the bound is the client's MaxResultBytes, and
// never more than this. GetFileTo's bound is its sink's.
const MaxGetFileBytes = 1 << 30

// ErrChecksum: a fetched file's SHA-256 is not the one the minion
// reported for it (it changed while being read, or was corrupted), or
// the minion sent more or less than the size it stated.
var ErrChecksum = errors.New("overlord: checksum mismatch")

// GetFile fetches path from every selected minion with the getfile
// module, in chunks, and checks the whole against the SHA-256 the
// minion reports. Each host's Value is the file's content, []byte,
// held in memory until the fan-out ends: a host whose file is larger
// than MaxResultBytes (or MaxGetFileBytes) fails with a *FileSizeError
// before any of it is fetched. For large files or many hosts, use
// GetFileTo.
func (s *Selection) GetFile(ctx context.Context, path string) (Results, error) {
	limit := min(s.c.cfg.MaxResultBytes, MaxGetFileBytes)
	var mu sync.Mutex
	bufs := map[string]*memSink{}
	res, err := s.GetFileTo(ctx, path, func(host string, size int64) (FileSink, error) {
		if size > limit {
			return nil, tooLarge(size, limit)
		}
		b := &memSink{}
		mu.Lock()
		bufs[host] = b
		mu.Unlock()
		return b, nil
	})
	for h, r := range res {
		if r.Err == nil {
			r.Value = bufs[h].Bytes()
			res[h] = r
		}
	}
	return res, err
}

// FileSink receives one host's copy of a file from GetFileTo, chunk by
// chunk as it arrives.
type FileSink interface {
	io.Writer
	// Close is called once, at the end: with nil when the whole file
	// arrived and its SHA-256 matched the minion's (keep it: a file
	// sink renames its temporary file into place), otherwise with the
	// error that stopped the transfer (discard what was written). An
	// error from Close fails the host.
	Close(err error) error
}

// GetFileTo fetches path from every selected minion like GetFile, but
// hands each host's chunks to the sink open returns for that host, so
// nothing is held in memory; Files.Open stores them on disk. open is
// called once per host, concurrently, when the host has said the file
// exists and how large it is: it may refuse the size (Files refuses a
// file over its MaxBytes or the free space with a *FileSizeError). The
// host is then held to that size: its sink never receives more, and a
// host that sends more or less fails with ErrChecksum. Each call (one
// per 4 MiB chunk) is bounded by HostTimeout, not the whole transfer.
// Each host's Value is map[string]any{"size": int64, "sha256": string}.
func (s *Selection) GetFileTo(ctx context.Context, path string, open func(host string, size int64) (FileSink, error)) (Results, error) {
	spec := eachSpec{op: "getfile.read", details: map[string]string{"path": path}, note: fileNote}
	return s.each(ctx, spec, func(ctx context.Context, host string, call Caller) (any, error) {
		st, err := call(ctx, "getfile", "stat", path)
		if err != nil {
			return nil, err
		}
		var stat struct {
			Type   string
			Size   int64
			SHA256 string `xmlrpc:"sha256"`
		}
		if err := ixmlrpc.Unmarshal(st, &stat); err != nil {
			return nil, fmt.Errorf("%w: getfile.stat: %v", ErrProtocol, err)
		}
		if stat.Type != "file" {
			return nil, gofunc.Errorf(gofunc.CodeBadArgs, "%s is a %s, not a file", path, stat.Type)
		}
		if stat.Size < 0 {
			return nil, fmt.Errorf("%w: getfile.stat: size %d", ErrProtocol, stat.Size)
		}
		sink, err := open(host, stat.Size)
		if err != nil {
			return nil, err
		}
		err = readChunks(ctx, call, path, stat.Size, int64(s.c.chunk), stat.SHA256, sink)
		if cerr := sink.Close(err); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		return map[string]any{"size": stat.Size, "sha256": stat.SHA256}, nil
	})
}

// readChunks copies the file's size bytes into w in chunks of at most
// chunkSize, checking each chunk's and then the whole's SHA-256. It
// never asks for, or accepts, a byte past size: a minion cannot make w
// take more than it stated (a file that grew fails the whole's
// checksum anyway).
func readChunks(ctx context.Context, call Caller, path string, size, chunkSize int64, want string, w io.Writer) error {
	whole := sha256.New()
	for off := int64(0); off < size; {
		n := min(size-off, chunkSize)
		v, err := call(ctx, "getfile", "read", path, off, n)
		if err != nil {
			return err
		}
		var chunk struct {
			Data   []byte
			SHA256 string `xmlrpc:"sha256"`
			EOF    bool
		}
		if err := ixmlrpc.Unmarshal(v, &chunk); err != nil {
			return fmt.Errorf("%w: getfile.read: %v", ErrProtocol, err)
		}
		switch {
		case int64(len(chunk.Data)) > n:
			return fmt.Errorf("%w: %s: %d bytes sent at %d where %d were asked for (stated size %d)",
				ErrChecksum, path, len(chunk.Data), off, n, size)
		case len(chunk.Data) == 0:
			return fmt.Errorf("%w: %s ended at %d bytes, not the %d stated: it changed while it was read", ErrChecksum, path, off, size)
		}
		if cs := sha256.Sum256(chunk.Data); hex.EncodeToString(cs[:]) != chunk.SHA256 {
			return fmt.Errorf("%w: chunk at %d", ErrChecksum, off)
		}
		if _, err := w.Write(chunk.Data); err != nil {
			return err
		}
		whole.Write(chunk.Data)
		off += int64(len(chunk.Data))
	}
	if hex.EncodeToString(whole.Sum(nil)) != want {
		return fmt.Errorf("%w: %s changed while it was read", ErrChecksum, path)
	}
	return nil
}

// fileNote describes a fetched file for the audit end record.
func fileNote(v any) string {
	m, _ := v.(map[string]any)
	return fmt.Sprintf("ok size=%v sha256=%v", m["size"], m["sha256"])
}

// memSink is GetFile's in-memory FileSink.
type memSink struct{ bytes.Buffer }

// Close keeps the buffer.
func (*memSink) Close(error) error { return nil }

// Inventory collects Func's inventory from every selected minion: it
// lists the minion's methods (system.list_methods) and calls every
// "X.inventory" method there is. Each host's Value is a
// map[string]any from module name to that module's inventory; a
// module whose inventory fails is left out and named under the key
// "_errors" (module -> error text).
func (s *Selection) Inventory(ctx context.Context) (Results, error) {
	spec := eachSpec{op: "inventory", hostTimeout: true, note: inventoryNote}
	return s.each(ctx, spec, func(ctx context.Context, host string, call Caller) (any, error) {
		v, err := call(ctx, "system", "list_methods")
		if err != nil {
			return nil, err
		}
		var methods []string
		if err := ixmlrpc.Unmarshal(v, &methods); err != nil {
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

// inventoryNote names the modules a host's inventory holds, and those
// that failed, for the audit end record.
func inventoryNote(v any) string {
	m, _ := v.(map[string]any)
	mods := make([]string, 0, len(m))
	for k := range m {
		if k != "_errors" {
			mods = append(mods, k)
		}
	}
	slices.Sort(mods)
	note := "ok modules=" + strings.Join(mods, ",")
	if failed, ok := m["_errors"].(map[string]any); ok {
		note += fmt.Sprintf(" failed=%s", strings.Join(slices.Sorted(maps.Keys(failed)), ","))
	}
	return clipOutcome(note)
}
