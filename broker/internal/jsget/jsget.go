// Package jsget reads and writes JetStream streams with plain NATS
// requests, for clients whose permissions name exactly the API subjects
// they use: a direct get ("the next message on a subject from a
// sequence", no consumer) and a publish that waits for the stream's
// acknowledgement. The jetstream package would ask for stream info
// first, which gofunc's minions are not allowed.
package jsget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/broker"
)

// Errors, for errors.Is.
var (
	// ErrNoMessage: the stream holds no message on the subject at or
	// after the sequence asked.
	ErrNoMessage = errors.New("jetstream: no message")
	// ErrNoStream: nothing answered for the stream (JetStream off, or
	// the broker has no such stream).
	ErrNoStream = errors.New("jetstream: stream not available")
	// ErrNotStored: the stream refused to store a message.
	ErrNotStored = errors.New("jetstream: message not stored")
)

// Msg is a message read from a stream.
type Msg struct {
	Subject string
	Seq     uint64
	Header  nats.Header // the message's own headers (Nats-* included)
	Data    []byte
}

// Next returns the first message of stream on subject (wildcards
// allowed) whose sequence is at least seq (seq 0 counts as 1).
func Next(ctx context.Context, nc *nats.Conn, stream, subject string, seq uint64) (*Msg, error) {
	if seq == 0 {
		seq = 1
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
	}{seq, subject})
	if err != nil {
		return nil, err
	}
	rep, err := request(ctx, nc, &nats.Msg{Subject: broker.DirectGetPrefix + stream, Data: req})
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, fmt.Errorf("%w: %s", ErrNoStream, stream)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream: direct get from %s: %w", stream, err)
	}
	switch st := rep.Header.Get("Status"); st {
	case "":
	case "404":
		return nil, ErrNoMessage
	default:
		return nil, fmt.Errorf("jetstream: direct get from %s: status %s %s", stream, st, rep.Header.Get("Description"))
	}
	n, err := strconv.ParseUint(rep.Header.Get("Nats-Sequence"), 10, 64)
	subj := rep.Header.Get("Nats-Subject")
	if err != nil || subj == "" {
		return nil, fmt.Errorf("jetstream: direct get from %s: answer without subject or sequence", stream)
	}
	return &Msg{Subject: subj, Seq: n, Header: rep.Header, Data: rep.Data}, nil
}

// Publish stores m in the stream that takes its subject, with msgID as
// its Nats-Msg-Id (the stream stores one message per id within its
// duplicate window), and returns the stream's sequence once the broker
// acknowledged it (PubAck).
func Publish(ctx context.Context, nc *nats.Conn, m *nats.Msg, msgID string) (uint64, error) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header.Set("Nats-Msg-Id", msgID)
	ctx, cancel := bounded(ctx)
	defer cancel()
	rep, err := request(ctx, nc, m)
	if errors.Is(err, nats.ErrNoResponders) {
		return 0, fmt.Errorf("%w: nothing stores %s", ErrNoStream, m.Subject)
	}
	if err != nil {
		return 0, fmt.Errorf("jetstream: publish %s: %w", m.Subject, err)
	}
	var ack struct {
		Stream string `json:"stream"`
		Seq    uint64 `json:"seq"`
		Error  *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rep.Data, &ack); err != nil {
		return 0, fmt.Errorf("%w: %s: unreadable acknowledgement", ErrNotStored, m.Subject)
	}
	if ack.Error != nil || ack.Stream == "" {
		desc := "no stream named"
		if ack.Error != nil {
			desc = ack.Error.Description
		}
		return 0, fmt.Errorf("%w: %s: %s", ErrNotStored, m.Subject, desc)
	}
	return ack.Seq, nil
}

// DefaultTimeout bounds a request whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// How long one attempt of a request waits for its answer before the
// same request is sent again, doubling up to the maximum. Both requests
// here may be sent twice: a direct get only reads, and the stream
// stores one message per Nats-Msg-Id, so a resent publish is
// acknowledged with the first one's sequence. A request lost on its way
// (written to a connection the broker had just closed, or a broker that
// restarted before answering) then costs one attempt, not the caller's
// whole deadline.
var (
	firstAttempt = 2 * time.Second
	maxAttempt   = 8 * time.Second
)

// request sends m and waits for its answer, sending it again each time
// an attempt passes without one, until ctx ends. Any other error (no
// responders, a closed connection) ends it at once.
func request(ctx context.Context, nc *nats.Conn, m *nats.Msg) (*nats.Msg, error) {
	for wait := firstAttempt; ; wait = min(2*wait, maxAttempt) {
		actx, cancel := context.WithTimeout(ctx, wait)
		rep, err := nc.RequestMsgWithContext(actx, m)
		cancel()
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			return rep, err
		}
	}
}

// bounded gives ctx a deadline (nats requests need one).
func bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultTimeout)
}
