package main

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

// A benchTransport is one way the overlord reaches the bench's minions
// (-transport NAME). Another transport registers itself in transports
// from a file of its own (an init function), and the rest of the bench
// (fleet, floor, phases, report) stays as it is. The floor is always
// bare HTTPS: it is what the machine can do, whatever gofunc's
// transport.
type benchTransport interface {
	// start runs in the parent before any minion starts, for a service
	// the fleet shares (a broker); stop is called once the size is
	// measured. dir is the size's work directory (CA in dir/ca, the
	// overlord's identity in dir/admin).
	start(ctx context.Context, dir string) (stop func() error, err error)
	// serve starts minion srv (identity id, fleet index i, loopback
	// address ip) in the minions' process and returns how the overlord
	// names and finds it.
	serve(ctx context.Context, dir string, i int, ip net.IP, id *identity.Identity, srv *minion.Server) (overlord.Minion, error)
	// clientOptions are the overlord options that route its calls
	// through the transport (none for the Client's own direct HTTPS),
	// and how to close what they opened once the Client is closed.
	clientOptions(ctx context.Context, dir string, id *identity.Identity) ([]overlord.Option, func() error, error)
}

// A connector is a benchTransport whose minions connect to a shared
// service (a broker): serve only prepares each minion, and connectAll,
// called once every minion of the process is prepared, connects them
// all at once and returns when each is connected and subscribed. The
// bench times it alone ("connected in").
type connector interface {
	connectAll(ctx context.Context) error
}

// A restarter is a benchTransport whose shared service can be
// restarted under the fleet: the bench times how long until every
// minion answers again.
type restarter interface {
	// restartShared stops the service and starts it again where it was;
	// it returns once the new one takes connections.
	restartShared(ctx context.Context) error
}

// transports are the -transport choices by name.
var transports = map[string]benchTransport{"direct": directBench{}}

func transportNames() string {
	var names []string
	for name := range transports {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func lookupTransport(name string) (benchTransport, error) {
	t, ok := transports[name]
	if !ok {
		return nil, fmt.Errorf("-transport: %q is not one of %s", name, transportNames())
	}
	return t, nil
}

// directBench is the Client's own transport: HTTPS to each minion's
// own loopback address, mutual TLS.
type directBench struct{}

func (directBench) start(context.Context, string) (func() error, error) {
	return func() error { return nil }, nil
}

func (directBench) serve(_ context.Context, _ string, i int, ip net.IP, _ *identity.Identity, srv *minion.Server) (overlord.Minion, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return overlord.Minion{}, fmt.Errorf("minion %d: %w", i, err)
	}
	go func() { _ = srv.Serve(ln) }()
	return overlord.Minion{Name: minionName(i), Addr: ln.Addr().String()}, nil
}

func (directBench) clientOptions(context.Context, string, *identity.Identity) ([]overlord.Option, func() error, error) {
	return nil, func() error { return nil }, nil
}
