package overlord

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/gofunc/gofunc"
	ixmlrpc "github.com/gofunc/gofunc/internal/xmlrpc"
)

// How the overlord learns which arguments of a call are secret, so that
// its own audit record redacts what the minion's does:
//
//   - a method of gofunc's own modules (package modules) is redacted by
//     builtinArgDocs, a table checked against the modules' own docs by a
//     test; nothing a minion says can weaken it, and it costs no round
//     trip;
//   - any other method is redacted by what the targets themselves answer
//     to MODULE.get_method_args, fetched before the call and cached per
//     minion and module for argDocsTTL. The answers of all targets are
//     merged, each argument taking the strongest redaction any target
//     asks for, so a minion that lies about its docs cannot make the
//     overlord log in clear what an honest target says is secret;
//   - when no target answers (unreachable, denied, malformed), or none
//     documents the method, every argument is redacted.
//
// The record's Details["arg_docs"] says which of these applied.

// argDocsTTL is how long a minion's get_method_args answer is reused.
const argDocsTTL = 10 * time.Minute

// argDocsFailedTTL is how long a minion that gave no usable answer (a
// fault: the caller may not ask, the module does not document itself;
// unreachable; a malformed answer) is not asked again. Without it every
// call to such a module paid a round trip more per host, and an
// unreachable host its timeout twice. Remembering the failure can only
// redact more (every argument, while no target answers), never less.
const argDocsFailedTTL = time.Minute

// Bounds on one get_method_args answer kept in the cache: a minion
// cannot make the overlord hold more than this per module.
const (
	maxDocMethods = 1024
	maxDocArgs    = 64
	maxDocFields  = 64
)

// Values of the overlord.call record's Details["arg_docs"].
const (
	argDocsBuiltin = "builtin"
	argDocsUnknown = "unknown: every argument redacted"
)

// introspectionMethods take no arguments on every module.
var introspectionMethods = []string{"list_methods", "module_description", "module_version", "get_method_args"}

// redact summarizes req's arguments for the audit log with the docs
// argDocs finds for it, and returns how they were found.
func (c *Client) redact(ctx context.Context, hosts []string, req *request) string {
	docs, how := c.argDocs(ctx, hosts, req.wire, len(req.args))
	req.summarize(docs)
	return how
}

// argDocs returns the argument docs to redact a call of wire with nargs
// arguments to hosts by, and how they were found (see the top of this
// file).
func (c *Client) argDocs(ctx context.Context, hosts []string, wire string, nargs int) ([]gofunc.ArgDoc, string) {
	if nargs == 0 {
		return nil, argDocsBuiltin
	}
	module, method, _ := strings.Cut(strings.TrimPrefix(wire, "async."), ".")
	table, inTable := builtinArgDocs[module+"."+method]
	if inTable && nargs <= len(table) {
		return table, argDocsBuiltin
	}
	known, sets := c.fetchArgDocs(ctx, hosts, module, method)
	if len(sets) == 0 {
		return padSecret(nil, nargs), argDocsUnknown
	}
	if inTable {
		sets = append(sets, table) // a floor no minion's answer lowers
	}
	return padSecret(mergeArgDocs(sets...), nargs), fmt.Sprintf("get_method_args of %d of %d hosts", known, len(hosts))
}

// padSecret extends docs to n arguments, the added ones secret: an
// argument no one documented may be anything.
func padSecret(docs []gofunc.ArgDoc, n int) []gofunc.ArgDoc {
	for len(docs) < n {
		docs = append(docs, gofunc.ArgDoc{Secret: true})
	}
	return docs
}

// mergeArgDocs combines several minions' docs of one method: each
// argument gets the strongest redaction any of them asks for (Secret
// over Content over SecretFields, whose names are united).
func mergeArgDocs(sets ...[]gofunc.ArgDoc) []gofunc.ArgDoc {
	var out []gofunc.ArgDoc
	for _, docs := range sets {
		for i, d := range docs {
			if i == len(out) {
				out = append(out, gofunc.ArgDoc{Name: d.Name})
			}
			m := &out[i]
			m.Secret = m.Secret || d.Secret
			m.Content = m.Content || d.Content
			for _, f := range d.SecretFields {
				if !slices.Contains(m.SecretFields, f) {
					m.SecretFields = append(m.SecretFields, f)
				}
			}
		}
	}
	for i := range out {
		if out[i].Secret || out[i].Content {
			out[i].SecretFields = nil
		}
		if out[i].Secret {
			out[i].Content = false
		}
	}
	return out
}

// argDocCache holds minions' get_method_args answers.
type argDocCache struct {
	mu sync.Mutex
	m  map[argDocKey]argDocEntry
}

type argDocKey struct{ host, module string }

type argDocEntry struct {
	at time.Time
	// failed: the host gave no usable answer at at (methods is nil).
	failed bool
	// methods maps each documented method to what of its arguments
	// matters to the audit log.
	methods map[string][]gofunc.ArgDoc
}

func (dc *argDocCache) get(k argDocKey, now time.Time) (argDocEntry, bool) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	e, ok := dc.m[k]
	ttl := argDocsTTL
	if e.failed {
		ttl = argDocsFailedTTL
	}
	if !ok || now.Sub(e.at) > ttl {
		return argDocEntry{}, false
	}
	return e, true
}

func (dc *argDocCache) put(k argDocKey, e argDocEntry) {
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.m == nil {
		dc.m = make(map[argDocKey]argDocEntry)
	}
	dc.m[k] = e
}

// fetchArgDocs returns the docs of module.method each host gives (from
// the cache, or asked now, Forks at a time, each bounded by
// HostTimeout), and how many hosts answered. Hosts that do not answer
// are left out.
func (c *Client) fetchArgDocs(ctx context.Context, hosts []string, module, method string) (answered int, sets [][]gofunc.ArgDoc) {
	if slices.Contains(introspectionMethods, method) {
		return len(hosts), [][]gofunc.ArgDoc{{}}
	}
	req, err := newRequest(module, "get_method_args", nil)
	if err != nil {
		return 0, nil
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(c.cfg.Forks)
	for _, h := range hosts {
		g.Go(func() error {
			e, ok := c.docs.get(argDocKey{h, module}, time.Now())
			if !ok {
				e, ok = c.askArgDocs(ctx, h, req)
				if !ok && ctx.Err() != nil {
					return nil // cut short by the caller, not the host's failure
				}
				if !ok {
					e = argDocEntry{at: time.Now(), failed: true}
				}
				c.docs.put(argDocKey{h, module}, e)
			}
			if e.failed {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			answered++
			if docs, found := e.methods[method]; found {
				sets = append(sets, docs)
			}
			return nil
		})
	}
	_ = g.Wait()
	return answered, sets
}

// methodArgsAnswer is what get_method_args answers, as far as the audit
// log cares: each method's arguments and how they are redacted.
type methodArgsAnswer map[string]struct {
	Args []struct {
		Name         string   `xmlrpc:"name"`
		Secret       bool     `xmlrpc:"secret"`
		SecretFields []string `xmlrpc:"secret_fields"`
		Content      bool     `xmlrpc:"content"`
	} `xmlrpc:"args"`
}

// askArgDocs calls MODULE.get_method_args on host and keeps what the
// audit log needs. An answer that is not get_method_args' shape, or
// larger than the bounds, counts as no answer.
func (c *Client) askArgDocs(ctx context.Context, host string, req *request) (argDocEntry, bool) {
	r := c.callHost(ctx, host, req)
	if r.Err != nil {
		c.cfg.Logger.Debug("argument docs not fetched", "host", host, "method", req.wire, "error", r.Err)
		return argDocEntry{}, false
	}
	var got methodArgsAnswer
	if err := ixmlrpc.Unmarshal(r.Value, &got); err != nil || len(got) > maxDocMethods {
		c.cfg.Logger.Warn("argument docs unusable", "host", host, "method", req.wire, "error", err, "methods", len(got))
		return argDocEntry{}, false
	}
	e := argDocEntry{at: time.Now(), methods: make(map[string][]gofunc.ArgDoc, len(got))}
	for name, m := range got {
		if len(m.Args) > maxDocArgs {
			return argDocEntry{}, false
		}
		docs := make([]gofunc.ArgDoc, len(m.Args))
		for i, a := range m.Args {
			if len(a.SecretFields) > maxDocFields {
				return argDocEntry{}, false
			}
			docs[i] = gofunc.ArgDoc{Name: clipText(a.Name), Secret: a.Secret, SecretFields: a.SecretFields, Content: a.Content}
		}
		e.methods[name] = docs
	}
	return e, true
}
