package caller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/internal/xmlrpc"
	"github.com/gofunc/gofunc/overlord"
)

// Defaults of Discover.
const (
	// DefaultDiscoverWindow is how long Discover waits for one more
	// answer before it stops.
	DefaultDiscoverWindow = 2 * time.Second
	// DiscoverMethod is what a discovery broadcast calls: the only
	// method a broadcast may call (broker.BroadcastMethod).
	DiscoverMethod = "test.ping"
)

// Found is a minion that answered a discovery broadcast.
type Found struct {
	// Name is the minion's name, from the certificate that signed its
	// answer.
	Name string
	// Err is the fault it answered with (its ACL denies the caller
	// test.ping, it is busy); nil when it answered the ping.
	Err error
	// CallID and AuditHead are the call's id and the audit head in the
	// minion's log, as for any call.
	CallID    string
	AuditHead string
}

// Discover broadcasts a signed test.ping to every minion connected to
// the broker (broker.BroadcastAll) and returns those that answered,
// sorted by name. Each answer is verified like any other (signed by a
// minion certificate of the CA, not revoked, bound to this broadcast,
// naming the minion whose certificate signed it); one that does not
// verify is not counted. The minions check the broadcast like any call
// (signature, times, replay, ACL, audit).
//
// The answer set is whoever answers: collection stops when window (zero
// means DefaultDiscoverWindow) passes without a new answer, or when ctx
// ends; a silent minion is simply not found, never a failure. The error
// is for the broadcast itself (not published, transport closed).
func (t *Transport) Discover(ctx context.Context, window time.Duration) ([]Found, error) {
	if window <= 0 {
		window = DefaultDiscoverWindow
	}
	var body bytes.Buffer
	if err := xmlrpc.EncodeCall(&body, DiscoverMethod); err != nil {
		return nil, err
	}
	now := time.Now()
	deadline := now.Add(DefaultDeadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	env := &broker.Call{ID: broker.NewID(), Issued: now, Deadline: deadline, Method: DiscoverMethod,
		Audience: []string{broker.AudienceAll}}
	env.ReplyTo = t.inbox + "." + env.ID
	h, err := broker.SignCall(t.id.Certificate(), env, body.Bytes())
	if err != nil {
		return nil, err
	}
	request := (&broker.SignedCall{Call: *env}).RequestSum()
	p, err := t.register(env.ID)
	if err != nil {
		return nil, err
	}
	defer t.unregister(env.ID)
	if err := t.auditDiscover(env.ID, nil, now); err != nil {
		return nil, err
	}
	if err := t.nc.PublishMsg(&nats.Msg{Subject: broker.BroadcastAll, Reply: env.ReplyTo, Header: nats.Header(h), Data: body.Bytes()}); err != nil {
		return nil, fmt.Errorf("broker: publish the discovery broadcast: %w", err)
	}
	found, err := t.collect(ctx, p, env.ID, request, window)
	_ = t.auditDiscover(env.ID, found, now) // best effort: the broadcast is out
	return found, err
}

// maxAuditDetail bounds the minions an end record names, to stay under
// audit.MaxRecordBytes at any fleet size (as the overlord's own).
const maxAuditDetail = 512 << 10

// auditDiscover writes Options.Audit's record of broadcast id: the
// start (found nil) or the end, with each minion found and its outcome.
func (t *Transport) auditDiscover(id string, found []Found, start time.Time) error {
	if t.opts.Audit == nil {
		return nil
	}
	rec := audit.Record{Kind: audit.KindOverlordCall, CallID: id, Caller: t.id.Name(), Role: string(t.id.Role()),
		Serial: fmt.Sprintf("%x", t.id.Leaf().SerialNumber), Method: DiscoverMethod, Targets: []string{broker.AudienceAll},
		Details: map[string]string{"via": "nats", "broadcast": broker.BroadcastAll}}
	if found != nil {
		rec = audit.Record{Kind: audit.KindOverlordCallEnd, CallID: id, Caller: rec.Caller, Role: rec.Role, Method: DiscoverMethod,
			Outcome: audit.OutcomeOK, Duration: time.Since(start), Details: map[string]string{"discovered": fmt.Sprint(len(found))}}
		size := 0
		for _, f := range found {
			text := "ok"
			if f.Err != nil {
				text = clip(f.Err.Error())
			}
			if size += len(f.Name) + len(text) + 8; size > maxAuditDetail {
				rec.Details["..."] = "further minions left out: record size limit"
				break
			}
			rec.Details[f.Name] = text
		}
	}
	if _, err := t.opts.Audit.Append(rec); err != nil {
		return fmt.Errorf("%w: overlord audit log: %v", gofunc.ErrAuditFailed, err)
	}
	return nil
}

// collect gathers the verified answers to broadcast id until window
// passes without a new one or ctx ends.
func (t *Transport) collect(ctx context.Context, p *pending, id string, request [32]byte, window time.Duration) ([]Found, error) {
	found := map[string]Found{}
	quiet := time.NewTimer(window)
	defer quiet.Stop()
	for {
		select {
		case <-ctx.Done():
			return sortFound(found), nil
		case <-quiet.C:
			return sortFound(found), nil
		case <-p.notify:
			frames, err := p.take()
			if errors.Is(err, ErrClosed) {
				return sortFound(found), err
			}
			for _, m := range frames {
				if m.Header.Get("Status") == "503" {
					return sortFound(found), nil // no minion subscribed at all
				}
				f, ok := t.verifyFound(m, id, request)
				if !ok || found[strings.ToLower(f.Name)].Name != "" {
					continue
				}
				found[strings.ToLower(f.Name)] = f
				if !quiet.Stop() {
					select {
					case <-quiet.C:
					default:
					}
				}
				quiet.Reset(window)
			}
		}
	}
}

// verifyFound checks one answer to a discovery broadcast: a final frame
// of this broadcast that verifies as the answer of the minion it names
// (a ping's answer is one frame).
func (t *Transport) verifyFound(m *nats.Msg, id string, request [32]byte) (Found, bool) {
	var f Found
	if m.Header.Get(broker.HeaderID) != id || m.Header.Get(broker.HeaderFinal) != "1" || m.Header.Get(broker.HeaderSeq) != "1" {
		return f, false
	}
	name := m.Header.Get(broker.HeaderMinion)
	ans, err := t.verify(overlord.Minion{Name: name}, m, m.Data, request)
	if err != nil {
		return f, false
	}
	defer ans.Body.Close()
	f.Name, f.CallID, f.AuditHead = name, ans.CallID, ans.AuditHead
	if _, err := xmlrpc.DecodeResponse(ans.Body, xmlrpc.Limits{MaxBytes: int64(len(m.Data)) + 1}); err != nil {
		f.Err = err
	}
	return f, true
}

func sortFound(m map[string]Found) []Found {
	out := make([]Found, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Found) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// register files the frames whose reply subject ends in key (see
// receive) from now on.
func (t *Transport) register(key string) (*pending, error) {
	p := &pending{notify: make(chan struct{}, 1), max: t.opts.MaxAnswerBytes}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrClosed
	}
	t.pending[key] = p
	return p, nil
}

func (t *Transport) unregister(key string) {
	t.mu.Lock()
	delete(t.pending, key)
	t.mu.Unlock()
}
