package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gofunc/gofunc/broker/jobs"
	"github.com/gofunc/gofunc/overlord"
)

// A broker job's target that never answered by its start-by reads as
// an unreachable host of a call (its class, kind and exit status); one
// whose frames do not make its signed answer as an untrusted one.
func TestBrokerJobTargetStates(t *testing.T) {
	job := &jobs.Job{ID: strings.Repeat("ab", 16), Method: "test.ping"}
	present := callPresenter(explainer{}, humanValue)
	for _, c := range []struct {
		r           jobs.Result
		class, kind string
		text        string
	}{
		{jobs.Result{Minion: "web1", State: jobs.StateExpired, Err: jobs.ErrExpired, Reason: fmt.Sprintf("%v (2026-12-07T22:00:00Z, and 10m0s after it)", jobs.ErrExpired)},
			"unreachable", "unreachable", "no result by the job's start-by"},
		{jobs.Result{Minion: "web2", State: jobs.StateIncomplete, Err: jobs.ErrIncomplete, Reason: fmt.Sprintf("%v: frame 2 of 3 is not stored", jobs.ErrIncomplete)},
			"untrusted", "untrusted", "frame 2 of 3 is not stored"},
	} {
		err := hostErr(job, c.r)
		o := present(overlord.Result{Host: c.r.Minion, Err: err})
		if o.class != c.class || overlord.ErrorKind(err) != c.kind || o.exit != exitFailed || !strings.Contains(o.body, c.text) {
			t.Errorf("%s: class %q kind %q exit %d: %s", c.r.State, o.class, overlord.ErrorKind(err), o.exit, o.body)
		}
	}
	if err := hostErr(job, jobs.Result{Minion: "web3", State: jobs.StateOK, Value: true}); err != nil {
		t.Errorf("ok: %v", err)
	}
}
