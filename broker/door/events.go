package door

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"

	"github.com/gofunc/gofunc/broker"
	"github.com/gofunc/gofunc/events"
)

// EventSuffix follows broker.EventSubject(name) in the subject a
// minion publishes its journal's events on: gf.v1.evt.<token>.event.
const EventSuffix = ".event"

// EventsConfig describes a minion's event publisher.
type EventsConfig struct {
	// Journal is the minion's event journal. Required.
	Journal *events.Journal
	// Conn is the connection to the broker, made with the minion's
	// certificate (the broker lets it publish under its own event
	// subject only). Required. The publisher does not close it.
	Conn *nats.Conn
	// Name is the minion's certificate name. Required.
	Name string
	// Logger receives failures; nil discards them.
	Logger hclog.Logger
}

// Events publishes every event the journal takes after it opens, each
// journal line verbatim as one message on EventSubject(Name)+".event".
// It is a push of what events.since serves: a subscriber takes the
// minion's name from the subject (which only that minion may publish
// on) and checks each line with events.Receive or a Tracker, which
// report what a broker outage lost as a gap, to be read back with
// events.since.
type Events struct {
	cfg     EventsConfig
	subject string
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// PublishEvents starts publishing; Close stops it.
func PublishEvents(cfg EventsConfig) (*Events, error) {
	if cfg.Journal == nil || cfg.Conn == nil {
		return nil, fmt.Errorf("%w: Journal and Conn are required", ErrConfig)
	}
	subject, err := broker.EventSubject(cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	e := &Events{cfg: cfg, subject: subject + EventSuffix}
	var ctx context.Context
	ctx, e.cancel = context.WithCancel(context.Background())
	e.wg.Add(1)
	go e.run(ctx, cfg.Journal.HeadCursor())
	return e, nil
}

// Close stops publishing and waits for the publisher to end.
func (e *Events) Close() error {
	e.cancel()
	e.wg.Wait()
	return nil
}

// run long-polls the journal after cur and publishes what comes, until
// ctx ends or the journal closes.
func (e *Events) run(ctx context.Context, cur events.Cursor) {
	defer e.wg.Done()
	for {
		b, err := e.cfg.Journal.Poll(ctx, cur.Request(events.MaxLimit, events.MaxWait))
		switch {
		case ctx.Err() != nil, errors.Is(err, events.ErrClosed):
			return
		case err != nil:
			e.cfg.Logger.Error("reading the event journal", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if len(b.Lines) == 0 {
			continue
		}
		evs, err := events.Receive(e.cfg.Name, b.Lines)
		if err != nil || len(evs) == 0 {
			// Not the journal's own lines: skip to its head.
			e.cfg.Logger.Error("event journal lines not published", "error", err)
			cur = e.cfg.Journal.HeadCursor()
			continue
		}
		for _, line := range b.Lines {
			if err := e.cfg.Conn.Publish(e.subject, []byte(line)); err != nil {
				e.cfg.Logger.Warn("event not published", "error", err)
			}
		}
		last := evs[len(evs)-1]
		cur = events.Cursor{Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash}
	}
}

// EventOrigin returns the name of the minion that published on subject
// (one of gf.v1.evt.<token>.…): the name a subscriber stamps on the
// events it receives there.
func EventOrigin(subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, broker.EventPrefix)
	if !ok {
		return "", fmt.Errorf("door: %q is not an event subject", subject)
	}
	token, _, _ := strings.Cut(rest, ".")
	return broker.NameOfToken(token)
}
