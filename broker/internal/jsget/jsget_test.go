package jsget

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsServer starts a nats-server on loopback with JetStream (its store
// in a temporary directory) and a stream "S" on "s.>" that allows direct
// gets and drops duplicates within a minute; it returns a connection.
func natsServer(t *testing.T) *nats.Conn {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.AddStream(&nats.StreamConfig{Name: "S", Subjects: []string{"s.>"}, AllowDirect: true, Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	return nc
}

// responder answers requests on subject with answer(n, msg) for the
// n-th request (from 1); a nil answer drops the request. It returns how
// many requests came, with their Nats-Msg-Id headers.
func responder(t *testing.T, nc *nats.Conn, subject string, answer func(n int) []byte) (ids func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		mu.Lock()
		seen = append(seen, m.Header.Get("Nats-Msg-Id"))
		n := len(seen)
		mu.Unlock()
		if a := answer(n); a != nil {
			_ = m.Respond(a)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() []string {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// shortAttempts makes request's attempts short for the test.
func shortAttempts(t *testing.T, first, most time.Duration) {
	old1, old2 := firstAttempt, maxAttempt
	firstAttempt, maxAttempt = first, most
	t.Cleanup(func() { firstAttempt, maxAttempt = old1, old2 })
}

func TestPublishAndNext(t *testing.T) {
	nc := natsServer(t)
	ctx := t.Context()
	seq, err := Publish(ctx, nc, &nats.Msg{Subject: "s.a", Data: []byte("one")}, "id-1")
	if err != nil || seq != 1 {
		t.Fatalf("publish: seq %d, %v", seq, err)
	}
	// The same id again is stored once: the acknowledgement names the
	// first message's sequence, so a resent publish is harmless.
	if again, err := Publish(ctx, nc, &nats.Msg{Subject: "s.a", Data: []byte("one")}, "id-1"); err != nil || again != 1 {
		t.Fatalf("publish again: seq %d, %v", again, err)
	}
	if seq, err := Publish(ctx, nc, &nats.Msg{Subject: "s.b", Data: []byte("two")}, "id-2"); err != nil || seq != 2 {
		t.Fatalf("second publish: seq %d, %v", seq, err)
	}
	m, err := Next(ctx, nc, "S", "s.b", 0)
	if err != nil || m.Seq != 2 || m.Subject != "s.b" || string(m.Data) != "two" || m.Header.Get("Nats-Msg-Id") != "id-2" {
		t.Fatalf("next: %+v, %v", m, err)
	}
	if _, err := Next(ctx, nc, "S", "s.a", 2); !errors.Is(err, ErrNoMessage) {
		t.Errorf("past the last message on s.a: %v", err)
	}
	if _, err := Next(ctx, nc, "NONE", "s.a", 1); !errors.Is(err, ErrNoStream) {
		t.Errorf("a stream that does not exist: %v", err)
	}
}

// Nothing stores the subject: the publish fails at once, typed, and is
// not retried until the deadline.
func TestPublishWithNoStream(t *testing.T) {
	nc := natsServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := Publish(ctx, nc, &nats.Msg{Subject: "elsewhere"}, "id"); !errors.Is(err, ErrNoStream) {
		t.Fatalf("publish: %v", err)
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("no responders took %s", waited)
	}
}

// A request lost on its way (here: a responder that ignores the first
// one, as a broker that restarted would) is sent again, with the same
// Nats-Msg-Id, instead of waiting for the caller's whole deadline.
func TestPublishResendsALostRequest(t *testing.T) {
	shortAttempts(t, 50*time.Millisecond, 100*time.Millisecond)
	nc := natsServer(t)
	ids := responder(t, nc, "lossy", func(n int) []byte {
		if n < 3 {
			return nil // lost
		}
		return []byte(`{"stream":"S","seq":7}`)
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	seq, err := Publish(ctx, nc, &nats.Msg{Subject: "lossy", Data: []byte("x")}, "id-9")
	if err != nil || seq != 7 {
		t.Fatalf("publish: seq %d, %v", seq, err)
	}
	if got := ids(); len(got) != 3 || got[0] != "id-9" || got[1] != "id-9" || got[2] != "id-9" {
		t.Errorf("requests seen: %q", got)
	}
}

// When nothing ever answers, the caller's deadline ends the retries and
// its error says so.
func TestPublishGivesUpAtTheDeadline(t *testing.T) {
	shortAttempts(t, 20*time.Millisecond, 40*time.Millisecond)
	nc := natsServer(t)
	ids := responder(t, nc, "silent", func(int) []byte { return nil })
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if _, err := Publish(ctx, nc, &nats.Msg{Subject: "silent"}, "id"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish: %v", err)
	}
	if n := len(ids()); n < 2 {
		t.Errorf("%d attempts in 500 ms of 20–40 ms each", n)
	}
}
