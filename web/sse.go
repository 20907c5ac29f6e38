package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// sse writes server-sent events. Each write gets a deadline, so a client
// that stopped reading is dropped instead of holding the stream.
type sse struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	deadline time.Duration
	failed   bool
}

func newSSE(w http.ResponseWriter, keepAlive time.Duration) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s := &sse{w: w, rc: http.NewResponseController(w), deadline: max(2*keepAlive, 30*time.Second)}
	s.extend()
	w.WriteHeader(http.StatusOK)
	s.flush()
	return s
}

func (s *sse) extend() {
	// Not every ResponseWriter supports deadlines (a test recorder);
	// those streams end with their request's context instead.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.deadline))
}

// event writes one event; id may be empty (the browser keeps the last
// id it saw). data may hold newlines: each line becomes a data line.
func (s *sse) event(id, name, data string) bool {
	if s.failed {
		return false
	}
	var b strings.Builder
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + strings.TrimSuffix(line, "\r") + "\n")
	}
	b.WriteString("\n")
	return s.write(b.String())
}

// comment writes a comment line (a keepalive) and flushes it.
func (s *sse) comment(text string) bool {
	return s.write(": "+text+"\n\n") && s.flush()
}

func (s *sse) write(text string) bool {
	if s.failed {
		return false
	}
	s.extend()
	if _, err := s.w.Write([]byte(text)); err != nil {
		s.failed = true
	}
	return !s.failed
}

func (s *sse) flush() bool {
	if s.failed {
		return false
	}
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.failed = true
	}
	return !s.failed
}

// streamCursor is where a stream resumes: after the Last-Event-ID a
// browser's EventSource sends when it reconnects by itself, else after
// ?after=N, which the page puts in the stream's URL and which htmx's
// reconnection (a new EventSource, without Last-Event-ID) keeps.
func streamCursor(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("after")
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad stream cursor %q: want a result number", v)
	}
	return n, nil
}
