package main

import (
	"context"
	"errors"
	"path/filepath"
	"time"

	"github.com/gofunc/gofunc/audit"
	"github.com/gofunc/gofunc/broker/door"
	"github.com/gofunc/gofunc/minion"
)

// listenNone is --listen none: no HTTPS door, no open port; calls come
// through the broker only.
const listenNone = "none"

// errListenNoneNeedsBroker: a minion with no door at all.
var errListenNoneNeedsBroker = errors.New("--listen none needs --broker: the minion would take no call at all")

// openBroker opens the broker door when --broker is set: the minion
// dials out to the broker (keeping at it while the broker is down) and
// takes the calls addressed to it from there.
func (d *daemon) openBroker(ctx context.Context, srv *minion.Server, trail *audit.Log) (*door.Door, error) {
	if len(d.Broker) == 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	dr, err := door.Dial(ctx, d.Broker, door.Config{Server: srv, AuditPath: trail.Path(), Logger: d.log.Named("broker")})
	if err != nil {
		return nil, err
	}
	// Jobs wait in the broker (when it keeps them: funcbroker
	// --jetstream) until the minion takes them; their results wait in
	// the spool until the broker has them.
	if _, err := dr.OpenJobs(door.JobsConfig{Dir: d.brokerJobsDir()}); err != nil {
		_ = dr.Close()
		return nil, err
	}
	d.log.Info("taking calls and jobs through the broker", "broker", d.Broker, "jobs_dir", d.brokerJobsDir())
	return dr, nil
}

// brokerJobsDir keeps the broker jobs' state: the last job taken and
// the results the broker has not acknowledged yet.
func (d *daemon) brokerJobsDir() string { return filepath.Join(d.Dir, "broker-jobs") }

// publishEvents pushes the journal's new events through the broker
// door's connection (nothing without --broker).
func (d *daemon) publishEvents(dr *door.Door, rep *reporting, name string) (*door.Events, error) {
	if dr == nil {
		return nil, nil
	}
	return door.PublishEvents(door.EventsConfig{Journal: rep.journal, Conn: dr.Conn(), Name: name, Logger: d.log.Named("broker")})
}
