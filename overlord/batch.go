package overlord

import (
	"errors"
	"fmt"
	"time"
)

// ErrSkipped: a batched call stopped before reaching this host because
// too many hosts failed in earlier batches.
var ErrSkipped = errors.New("skipped")

// Batch makes a call go to its hosts a batch at a time, for rolling
// changes: the next batch starts when every host of the previous one
// has answered, and none starts once more than MaxFailures hosts have
// failed; the hosts never called get an ErrSkipped error.
//
// The zero Batch calls every host at once (bounded only by Forks).
type Batch struct {
	// Size is the number of hosts per batch; zero means Percent decides.
	Size int
	// Percent is the batch size as a percentage of the targets (1 to
	// 100), rounded up; used when Size is zero.
	Percent int
	// MaxFailures is how many failed hosts are tolerated before the
	// remaining batches are skipped: 0 stops after the first batch with
	// a failure, a negative value never stops.
	MaxFailures int
	// Pause waits between batches; zero means none.
	Pause time.Duration
}

// ErrBadBatch: a Batch's fields are out of range.
var ErrBadBatch = errors.New("overlord: bad batch")

func (b Batch) validate() error {
	switch {
	case b.Size < 0:
		return fmt.Errorf("%w: size %d is negative", ErrBadBatch, b.Size)
	case b.Percent < 0 || b.Percent > 100:
		return fmt.Errorf("%w: percent %d is not within 0..100", ErrBadBatch, b.Percent)
	case b.Size > 0 && b.Percent > 0:
		return fmt.Errorf("%w: set size or percent, not both", ErrBadBatch)
	case b.Pause < 0:
		return fmt.Errorf("%w: pause %v is negative", ErrBadBatch, b.Pause)
	}
	return nil
}

// Batch returns a selection whose calls go batch by batch (see Batch).
// Invalid settings are kept and returned by Call.
func (s *Selection) Batch(b Batch) *Selection {
	return s.with(func(n *Selection) {
		n.batch = b
		if err := b.validate(); err != nil && n.err == nil {
			n.err = err
		}
	})
}

// plan splits hosts into batches.
func (b Batch) plan(hosts []string) [][]string {
	size := b.Size
	if size == 0 && b.Percent > 0 {
		size = (len(hosts)*b.Percent + 99) / 100
	}
	if size <= 0 || size >= len(hosts) {
		return [][]string{hosts}
	}
	var out [][]string
	for len(hosts) > 0 {
		n := min(size, len(hosts))
		out = append(out, hosts[:n])
		hosts = hosts[n:]
	}
	return out
}

// tooMany reports whether failed hosts stop the remaining batches.
func (b Batch) tooMany(failed int) bool {
	return b.MaxFailures >= 0 && failed > b.MaxFailures
}
