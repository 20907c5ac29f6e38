package natsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
)

// Refusals are told from network failures, logged once per reason
// until a connection succeeds, and space the retries out up to a cap.
func TestRefusals(t *testing.T) {
	refused := []error{
		nats.ErrAuthorization,
		fmt.Errorf("nats: %w", errors.New("Authorization Violation")),
		&net.OpError{Op: "remote error", Err: errors.New("tls: bad certificate")},
		fmt.Errorf("%w: connection closed by remote after TLS handshake: %w", nats.ErrTLS, io.EOF),
	}
	for _, err := range refused {
		if reason, ok := Refusal(err); !ok || reason == "" {
			t.Errorf("%v: not taken for a refusal", err)
		}
	}
	for _, err := range []error{nil, io.EOF, nats.ErrNoServers, &net.OpError{Op: "dial", Err: errors.New("connection refused")}} {
		if _, ok := Refusal(err); ok {
			t.Errorf("%v: taken for a refusal", err)
		}
	}

	var buf bytes.Buffer
	r := &refusals{log: hclog.New(&hclog.LoggerOptions{Output: &buf})}
	if d := r.delay(0); d < DefaultRetry || d >= DefaultRetry+RetryJitter {
		t.Errorf("first delay %v", d)
	}
	for range 20 {
		r.note(nats.ErrAuthorization)
	}
	r.note(refused[2])
	if n := strings.Count(buf.String(), "broker connection refused"); n != 2 {
		t.Errorf("%d lines for two reasons:\n%s", n, buf.String())
	}
	if d := r.delay(0); d < MaxRefusedRetry || d >= MaxRefusedRetry+RetryJitter {
		t.Errorf("delay after 21 refusals %v, want the cap", d)
	}
	r.reset()
	r.note(nats.ErrAuthorization)
	if n := strings.Count(buf.String(), "broker connection refused"); n != 3 {
		t.Errorf("a refusal after a connection is not logged again:\n%s", buf.String())
	}
	if r.note(io.EOF) {
		t.Error("EOF noted as a refusal")
	}
}
