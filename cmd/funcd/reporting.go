package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/gofunc/gofunc/events"
	"github.com/gofunc/gofunc/events/watch"
	"github.com/gofunc/gofunc/internal/cliconf"
	"github.com/gofunc/gofunc/metrics"
	"github.com/gofunc/gofunc/minion"
	"github.com/gofunc/gofunc/minion/minionmetrics"
)

// reporting is what the minion tells about itself: its event journal
// (read with events.since), the watchers writing to it, and its
// metrics.
type reporting struct {
	journal  *events.Journal
	activity *events.Activity
	watchers *watch.Runner // nil until startWatchers; replaced on reload
	stop     func()        // stops the plain metrics listener, if any
}

func (d *daemon) eventsDir() string {
	if d.EventsDir != "" {
		return d.EventsDir
	}
	return filepath.Join(d.Dir, "events")
}

// openReporting opens the event journal.
func (d *daemon) openReporting() (*reporting, error) {
	j, err := events.Open(d.eventsDir(), events.Config{MaxEvents: d.EventsMax, Logger: d.log.Named("events")})
	if err != nil {
		return nil, fmt.Errorf("event journal: %w", err)
	}
	return &reporting{journal: j, activity: &events.Activity{}, stop: func() {}}, nil
}

// attach gives srv the journal (events.since, lifecycle events), the
// activity watchers pause for, and its metrics: served on the TLS port
// to monitor and overlord certificates, and on --metrics-listen.
func (d *daemon) attach(r *reporting, srv *minion.Server) error {
	srv.Events, srv.Activity = r.journal, r.activity
	m := minionmetrics.New(srv)
	srv.Audit = m.Audit(srv.Audit)
	srv.Observe = m.Observe
	reg := metrics.NewRegistry()
	if err := reg.Register(m); err != nil {
		return err
	}
	srv.Metrics = metrics.Handler(reg)
	if d.MetricsListen != "" {
		ln, err := metrics.Listen(d.MetricsListen)
		if err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
		r.stop = metrics.Serve(ln, srv.Metrics, d.log.Named("metrics"))
	}
	return nil
}

// close stops the watchers, then the metrics listener and the journal.
func (r *reporting) close() {
	if r.watchers != nil {
		r.watchers.Close()
	}
	r.stop()
	r.journal.Close()
}

// watchConfig reads the [[watch]] tables of DIR/gofunc.toml, or of the
// system-wide funcd.toml when DIR/gofunc.toml has none (or does not
// exist).
func (d *daemon) watchConfig() ([]watch.Watch, error) {
	for _, path := range []string{filepath.Join(d.Dir, cliconf.FileName), cliconf.SystemFile("funcd")} {
		b, err := cliconf.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ws, err := watch.Parse(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(ws) > 0 {
			return ws, nil
		}
	}
	return nil, nil
}

// startWatchers starts watchers ws, replacing those running. Watchers
// that do not start leave the running ones as they are (and the error
// says why).
func (d *daemon) startWatchers(r *reporting, ws []watch.Watch) error {
	next, err := watch.Start(watch.Options{Sink: r.journal, Activity: r.activity,
		StateDir: filepath.Join(d.Dir, "watch-state"), Logger: d.log.Named("watch")}, ws)
	if err != nil {
		return err
	}
	if r.watchers != nil {
		r.watchers.Close()
	}
	r.watchers = next
	d.log.Info("watchers started", "count", len(ws))
	return nil
}

// reloadWatchers reads the [[watch]] tables again (SIGHUP) and restarts
// the watchers; a configuration that does not load keeps those running.
func (d *daemon) reloadWatchers(r *reporting) {
	ws, err := d.watchConfig()
	if err == nil {
		err = d.startWatchers(r, ws)
	}
	if err != nil {
		d.log.Error("reload watchers failed; keeping those running", "error", err)
	}
}
