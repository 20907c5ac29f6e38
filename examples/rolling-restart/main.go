// Rolling-restart restarts a service on a group of hosts a batch at a
// time and stops when failures pass a threshold, so a bad release or a
// broken config takes down one batch, not the fleet.
//
//	go run ./examples/rolling-restart --dir ~/.gofunc --size 5 --max-failures 1 "@web" nginx
//	go run ./examples/rolling-restart --demo     # six minions, two of which fail to restart
//
// It exits 0 when every host restarted, 1 otherwise, 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gofunc/gofunc"
	"github.com/gofunc/gofunc/fleettest"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/overlord"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(code)
}

type options struct {
	dir         string
	demo        bool
	batch       overlord.Batch
	spec, unit  string
	hostTimeout time.Duration
}

func parse(args []string, out io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("rolling-restart", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dir, "dir", "", "overlord identity directory (default ~/.gofunc)")
	fs.BoolVar(&o.demo, "demo", false, "run against a throwaway fleet where two hosts fail")
	fs.IntVar(&o.batch.Size, "size", 2, "hosts per batch")
	fs.IntVar(&o.batch.Percent, "percent", 0, "batch size as a percentage of the hosts (instead of --size)")
	fs.IntVar(&o.batch.MaxFailures, "max-failures", 0, "failed hosts tolerated before stopping")
	fs.DurationVar(&o.batch.Pause, "pause", 0, "wait between batches")
	fs.DurationVar(&o.hostTimeout, "timeout", 2*time.Minute, "per-host timeout for one restart")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.batch.Percent > 0 {
		o.batch.Size = 0
	}
	if o.demo {
		o.spec, o.unit = "*", "nginx.service"
		return o, nil
	}
	if fs.NArg() != 2 {
		return o, errors.New("want SPEC SERVICE, e.g. \"@web\" nginx")
	}
	o.spec, o.unit = fs.Arg(0), fs.Arg(1)
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) int {
	o, err := parse(args, out)
	if err != nil {
		fmt.Fprintln(out, "rolling-restart:", err)
		return 2
	}
	var client *overlord.Client
	if o.demo {
		f, err := demoFleet()
		if err != nil {
			fmt.Fprintln(out, "rolling-restart:", err)
			return 1
		}
		defer f.Close()
		client = f.Client(overlord.WithHostTimeout(o.hostTimeout))
	} else {
		opts := []overlord.Option{overlord.WithHostTimeout(o.hostTimeout)}
		if o.dir != "" {
			opts = append(opts, overlord.WithIdentityDir(o.dir))
		}
		client = overlord.New(opts...)
		defer client.Close()
	}
	res, err := client.Targets(o.spec).Batch(o.batch).Call(ctx, "service", "restart", o.unit)
	if res == nil {
		fmt.Fprintln(out, "rolling-restart:", err)
		if errors.Is(err, overlord.ErrBadBatch) || errors.Is(err, overlord.ErrBadSpec) {
			return 2
		}
		return 1
	}
	report(out, res, o.unit)
	if err != nil {
		return 1
	}
	return 0
}

func report(out io.Writer, res overlord.Results, unit string) {
	var ok, failed, skipped int
	for _, h := range res.Hosts() {
		r := res[h]
		switch {
		case r.Err == nil:
			ok++
			fmt.Fprintf(out, "%-12s restarted %s\n", h, unit)
		case errors.Is(r.Err, overlord.ErrSkipped):
			skipped++
			fmt.Fprintf(out, "%-12s skipped: too many failures before its batch\n", h)
		default:
			failed++
			fmt.Fprintf(out, "%-12s FAILED: %v\n", h, r.Err)
		}
	}
	fmt.Fprintf(out, "%d restarted, %d failed, %d skipped\n", ok, failed, skipped)
}

// fakeService stands in for the service module in the demo, where no
// systemd runs; restart fails on the hosts named in broken.
type fakeService struct {
	host   string
	broken map[string]bool
}

// Restart pretends to restart unit.
func (s *fakeService) Restart(ctx context.Context, unit string) (bool, error) {
	if s.broken[s.host] {
		return false, gofunc.Errorf(gofunc.CodeModule, "%s failed to start: config test failed", unit)
	}
	return true, nil
}

func demoFleet() (*fleettest.Fleet, error) {
	broken := map[string]bool{"m3.test": true, "m4.test": true}
	return fleettest.New(fleettest.Config{Minions: 6, NoBuiltins: true,
		Modules: func(name string, srv *minion.Server) error {
			return srv.Register("service", &fakeService{host: name, broken: broken})
		}})
}
