package overlord

import (
	"context"
	"time"

	"github.com/hashicorp/go-hclog"
)

// SetJobTiming shortens the job liveness timings of one client, for a
// test.
func SetJobTiming(c *Client, heartbeat, stale time.Duration) {
	c.timing.heartbeat, c.timing.stale = heartbeat, stale
}

// ClaimJob marks a queued job running without running it, as a runner
// that then crashed would leave it.
func ClaimJob(ctx context.Context, c *Client, id string) error {
	return c.claim(ctx, id)
}

// FinishJob moves a job to state without running it, as a runner whose
// results could not be stored would leave it.
func FinishJob(ctx context.Context, c *Client, id string, state JobState) {
	c.finish(ctx, id, state, "")
}

// ResultWriter is a job's result writer, for tests of its handling of a
// failing store.
type ResultWriter struct{ w *resultWriter }

// NewResultWriter returns a writer for job id in st that is not flushed
// in the background: the test calls Flush.
func NewResultWriter(st JobStore, id string, log hclog.Logger) ResultWriter {
	return ResultWriter{&resultWriter{st: st, id: id, log: log, timing: defaultJobTiming}}
}

// Add queues a result.
func (w ResultWriter) Add(r Result) { w.w.add(r) }

// Flush writes what is queued.
func (w ResultWriter) Flush(beat bool) error { return w.w.flush(beat) }

// Pending counts the results not written yet.
func (w ResultWriter) Pending() int {
	w.w.mu.Lock()
	defer w.w.mu.Unlock()
	return len(w.w.pending)
}

// BuiltinArgDocs is the overlord's table of the built-in modules' argument docs.
var BuiltinArgDocs = builtinArgDocs

// MethodArgsAnswer is how the overlord reads get_method_args.
type MethodArgsAnswer = methodArgsAnswer

// SetChunkSize sets the size of one copyfile.append or getfile.read for
// one client, so a test can move many chunks of little data.
func SetChunkSize(c *Client, n int) { c.chunk = n }
