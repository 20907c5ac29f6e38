package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// discoverJSON is one minion in `func --json discover`, keyed by name.
type discoverJSON struct {
	OK     bool           `json:"ok"`
	CallID string         `json:"call_id,omitempty"`
	Error  map[string]any `json:"error,omitempty"`
}

// discover is `func --broker URL discover`: a signed ping broadcast
// through the broker, and the minions whose answers verified. The exit
// status is 0 however many answer: silence is not a failure.
func (e *env) discover() int {
	if len(e.cli.Broker) == 0 {
		return e.usage(errors.New("discover needs --broker URL: it asks the broker's minions who is there"))
	}
	c := e.client()
	defer e.close(c)
	if err := c.Err(); err != nil || e.broker == nil {
		if err == nil { // no identity: the client has not tried it yet
			_, err = identity.Load(e.dir())
		}
		return e.failure(err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, e.cli.Timeout)
	defer cancel()
	found, err := e.broker.Discover(ctx, e.cli.Discover.Window)
	if err != nil {
		return e.failure(err)
	}
	out := make(map[string]discoverJSON, len(found))
	for _, f := range found {
		j := discoverJSON{OK: f.Err == nil, CallID: f.CallID}
		if f.Err != nil {
			j.Error = map[string]any{"kind": overlord.ErrorKind(f.Err), "message": f.Err.Error()}
		}
		out[f.Name] = j
	}
	e.print(out, func() {
		for _, f := range found {
			if f.Err != nil {
				fmt.Fprintf(e.stdout, "%s\t(answered: %v)\n", f.Name, f.Err)
				continue
			}
			fmt.Fprintln(e.stdout, f.Name)
		}
	})
	if !e.cli.Quiet {
		fmt.Fprintf(e.stderr, "discovered %d\n", len(found))
	}
	return exitOK
}
