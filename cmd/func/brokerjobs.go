package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/identity"
	"github.com/gofunc/gofunc/overlord"
)

// Jobs over the broker (--broker with --async, and jobs status|wait of
// their ids): the job waits in the broker for minions that are offline,
// and any overlord collects the results. Their ids are 32 hex digits;
// the direct path's (DIR/jobs.db) have a dash.

// isBrokerJob tells a broker job's id from a jobs.db one.
func isBrokerJob(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// errBrokerJobNeedsBroker: a broker job's id without --broker.
var errBrokerJobNeedsBroker = errors.New("a job kept by a broker (32 hex digits) needs --broker")

// jobsClient dials the broker for jobs with the overlord's identity.
func (e *env) jobsClient() (*jobs.Client, error) {
	if len(e.cli.Broker) == 0 {
		return nil, errBrokerJobNeedsBroker
	}
	id, err := identity.Load(e.dir())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	c, err := jobs.Dial(ctx, e.cli.Broker, id, jobs.Options{Logger: e.log.Named("broker")})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", overlord.ErrUnreachable, err)
	}
	e.rememberBroker(id)
	return c, nil
}

// submitBroker stores the call as a job in the broker, one signed
// envelope per host the selection names, and prints the job's id. A
// broker that keeps no jobs (no JetStream) gets the direct path's
// async job instead (DIR/jobs.db, its runner calling through the
// broker), said on stderr.
func (e *env) submitBroker(c *overlord.Client, sel *overlord.Selection, module, method string, args []any) int {
	hosts, err := sel.Hosts(e.ctx)
	e.cm.reportDropped(e.cli.Spec.Spec)
	if err != nil {
		return e.failure(err)
	}
	jc, err := e.jobsClient()
	if err != nil {
		return e.failure(err)
	}
	defer jc.Close()
	job, err := jc.Submit(e.ctx, jobs.Spec{Method: module + "." + method, Args: args, Targets: hosts, StartBy: time.Now().Add(e.cli.StartBy)})
	if errors.Is(err, jobs.ErrNoJetStream) {
		fmt.Fprintln(e.stderr, "func: the broker keeps no jobs (funcbroker --jetstream); queued in DIR/jobs.db, run from here through the broker")
		return e.submit(c, sel, module, method, args)
	}
	if err != nil {
		if job != nil {
			fmt.Fprintf(e.stderr, "func: job %s stored for %d of %d hosts\n", job.ID, len(job.Targets), len(hosts))
		}
		return e.failure(err)
	}
	e.print(map[string]any{"job": job.ID, "hosts": job.Targets, "start_by": job.StartBy}, func() {
		fmt.Fprintln(e.stdout, job.ID)
	})
	return exitOK
}

// brokerJob is jobs status (wait false) or jobs wait of a broker job.
func (e *env) brokerJob(id string, wait bool) int {
	jc, err := e.jobsClient()
	if err != nil {
		return e.usage(err)
	}
	defer jc.Close()
	var job *jobs.Job
	var res []jobs.Result
	if wait {
		job, res, err = jc.Wait(e.ctx, id, time.Second)
	} else {
		job, res, err = jc.Status(e.ctx, id)
	}
	if err != nil {
		return e.failure(err)
	}
	pending, failed, expired := 0, 0, 0
	results := overlord.Results{}
	for _, r := range res {
		switch r.State {
		case jobs.StatePending:
			pending++
			continue
		case jobs.StateExpired:
			expired++
			failed++
		case jobs.StateFault, jobs.StateIncomplete:
			failed++
		}
		results[r.Minion] = overlord.Result{Host: r.Minion, Value: r.Value, CallID: r.CallID, Err: hostErr(job, r)}
	}
	caller := job.Caller
	if job.CallerRevoked {
		caller += " (revoked since)"
	}
	e.print(map[string]any{"job": job.ID, "method": job.Method, "caller": job.Caller, "caller_revoked": job.CallerRevoked, "issued": job.Issued,
		"start_by": job.StartBy, "pending": pending, "failed": failed, "expired": expired, "results": res}, func() {
		fmt.Fprintf(e.stdout, "job %s: %s on %d hosts by %s, %d answered, %d failed (%d expired), %d pending (start by %s)\n", job.ID, job.Method,
			len(job.Targets), caller, len(res)-pending-expired, failed, expired, pending, job.StartBy.Local().Format(time.DateTime))
		if len(results) > 0 {
			present := callPresenter(e.explainer(nil), humanValue)
			var outcomes []hostOutcome
			for _, h := range results.Hosts() {
				outcomes = append(outcomes, present(results[h]))
			}
			writeGrouped(e.stdout, outcomes)
		}
		for _, r := range res {
			if r.State == jobs.StatePending {
				fmt.Fprintf(e.stdout, "%s: pending\n", r.Minion)
			}
		}
	})
	if pending > 0 || failed > 0 {
		return exitFailed
	}
	return exitOK
}

// hostErr is a target's outcome as the sync path would say it: a
// target that never answered by the job's start-by is unreachable (exit
// status and summary as for a call), a result whose frames do not make
// the answer its minion signed is untrusted.
// brokerJobs are the jobs the broker keeps (jobs list --broker), newest
// first, each with its targets' states as jobs status reads them. A
// broker that keeps no jobs has none.
func (e *env) brokerJobs() ([]jobJSON, error) {
	jc, err := e.jobsClient()
	if err != nil {
		return nil, err
	}
	defer jc.Close()
	list, err := jc.List(e.ctx, time.Time{})
	if errors.Is(err, jobs.ErrNoJetStream) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]jobJSON, 0, len(list))
	for _, job := range slices.Backward(list) {
		_, res, err := jc.Status(e.ctx, job.ID)
		if err != nil {
			return nil, err
		}
		j := jobJSON{ID: job.ID, State: "done", Method: job.Method, Spec: hostList(job.Targets, 3), Hosts: len(job.Targets),
			Created: job.Issued, Broker: true, Caller: job.Caller, StartBy: &job.StartBy}
		for _, r := range res {
			switch r.State {
			case jobs.StatePending:
				j.State = "waiting"
			case jobs.StateExpired:
				j.Expired++
				j.Failed++
			case jobs.StateOK:
				j.Answered++
			default:
				j.Answered++
				j.Failed++
			}
		}
		out = append(out, j)
	}
	return out, nil
}

func hostErr(job *jobs.Job, r jobs.Result) error {
	var err error
	switch {
	case r.State == jobs.StateExpired:
		err = fmt.Errorf("%w: %w", overlord.ErrUnreachable, errors.New(r.Reason))
	case r.State == jobs.StateIncomplete:
		err = fmt.Errorf("%w: %w", overlord.ErrUntrusted, errors.New(r.Reason))
	case r.Fault != nil:
		err = r.Fault
	default:
		return nil
	}
	return &overlord.HostError{Host: r.Minion, Op: strings.TrimSpace(job.Method), Err: err}
}
