package overlord

import (
	"context"
	"time"
)

// SetJobTiming shortens the job liveness timings for a test and returns
// a function restoring them.
func SetJobTiming(heartbeat, stale time.Duration) (restore func()) {
	oldBeat, oldStale := heartbeatEvery, staleAfter
	heartbeatEvery, staleAfter = heartbeat, stale
	return func() { heartbeatEvery, staleAfter = oldBeat, oldStale }
}

// ClaimJob marks a queued job running without running it, as a runner
// that then crashed would leave it.
func ClaimJob(ctx context.Context, c *Client, id string) error {
	return c.jobStore().claim(ctx, id)
}

// FinishJob moves a job to state without running it, as a runner whose
// results could not be stored would leave it.
func FinishJob(ctx context.Context, c *Client, id string, state JobState) {
	c.jobStore().finish(ctx, id, state, "")
}

// BuiltinArgDocs is the overlord's table of the built-in modules' argument docs.
var BuiltinArgDocs = builtinArgDocs

// MethodArgsAnswer is how the overlord reads get_method_args.
type MethodArgsAnswer = methodArgsAnswer
