package audit

import (
	"errors"
	mrand "math/rand/v2"
	"sync"
	"time"
)

// Appender is what records are written to: a *Log, or a *Shared for a
// log file several processes write. Append must be durable when it
// returns.
type Appender interface {
	Append(rec Record) (Record, error)
}

// Shared appends to the log file at Path from several processes: the
// certmaster daemon and the admin's certmaster commands, or concurrent
// func runs, all recording into one hash chain. An open Log locks its
// file (a second Open gets ErrLocked), so Shared opens the log for each
// record and closes it after, waiting (up to Wait) while another process
// holds it. Safe for concurrent use.
type Shared struct {
	Path   string
	Config Config
	// Wait bounds how long Append waits for another process's lock;
	// zero means 10 s.
	Wait time.Duration

	mu sync.Mutex
}

// BatchAppender is an Appender that can also write several records
// with one write and one fsync (*Log and *Shared are). The certmaster
// uses it to record a batch of signatures at the cost of one.
type BatchAppender interface {
	Appender
	AppendBatch(recs []Record) ([]Record, error)
}

// Append opens the log, appends rec durably, and closes the log.
func (s *Shared) Append(rec Record) (Record, error) {
	out, err := s.AppendBatch([]Record{rec})
	if err != nil {
		return Record{}, err
	}
	return out[0], nil
}

// AppendBatch opens the log, appends recs durably with one write and one
// fsync (see Log.AppendBatch), and closes the log.
func (s *Shared) AppendBatch(recs []Record) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wait := s.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		l, err := Open(s.Path, s.Config)
		if errors.Is(err, ErrLocked) && time.Now().Before(deadline) {
			time.Sleep(pause + mrand.N(pause))
			pause = min(2*pause, 50*time.Millisecond)
			continue
		}
		if err != nil {
			return nil, err
		}
		out, err := l.AppendBatch(recs)
		if cerr := l.Close(); err == nil && cerr != nil {
			err = cerr
		}
		return out, err
	}
}
